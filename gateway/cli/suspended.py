"""`supportgw suspended list|show|release|drop`: the suspended area (gateway/handlers/suspend.py).

`list` and `show` change nothing. `release` processes a message as it would have
been processed had it not been suspended (a ticket or a follow-up, and then the
acknowledgement a person's mail gets); `drop` marks it dropped, keeps its bytes
until the retention purge and adds an audit line. With a spam engine's controller
configured, a release teaches it "ham" and a drop "spam".
"""

from __future__ import annotations

import getpass
import json
import re
import sys
from datetime import datetime, timedelta, timezone

from gateway.cli import CommandError, open_app
from gateway.handlers.suspend import REASONS, audit
from storage.models import SpoolEntry
from storage.queries import spool as spool_rows


def register(sub) -> None:
    p = sub.add_parser("suspended", help="spam, forged senders and robots: kept, never a ticket, never answered")
    ssub = p.add_subparsers(dest="suspended_command", required=True)
    for name, fn, what in (("list", cmd_list, "the suspended messages"),
                           ("show", cmd_show, "one message: every reason, its headers and text"),
                           ("release", cmd_release, "not spam after all: process it as a person's mail"),
                           ("drop", cmd_drop, "spam indeed: drop it (kept until the retention purge)")):
        q = ssub.add_parser(name, help=what)
        q.add_argument("ids", nargs="*", help="spool ids (see 'supportgw suspended list')")
        q.add_argument("--reason", choices=REASONS, help="only messages suspended for this reason")
        q.add_argument("--since", help="only messages received since: a date (2026-11-30) or an age (12h, 7d)")
        q.add_argument("--json", action="store_true")
        q.set_defaults(func=fn)
    ssub.choices["list"].add_argument("--limit", type=int, default=200)
    ssub.choices["show"].add_argument("--raw", action="store_true", help="print the message's bytes as received")


def _since(value: str | None, now: datetime) -> datetime | None:
    if not value:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*([hdw])\s*", value)
    if m:
        n, unit = int(m.group(1)), m.group(2)
        return now - {"h": timedelta(hours=n), "d": timedelta(days=n), "w": timedelta(weeks=n)}[unit]
    try:
        day = datetime.fromisoformat(value.strip())
    except ValueError:
        raise CommandError(f"--since {value!r}: give a date like 2026-11-30 or an age like 12h, 7d, 2w") from None
    return day if day.tzinfo else day.replace(tzinfo=timezone.utc)


def _select(app, s, args, *, statuses=("suspended",)):
    """The rows named by ids and/or filters; with neither, every suspended row (list only)."""
    ids = None
    if args.ids:
        try:
            ids = [int(i) for i in args.ids]
        except ValueError:
            raise CommandError(f"spool ids are numbers: {' '.join(args.ids)}") from None
        found = {e.id: e for e in spool_rows.entries(s, ids)}
        for i in ids:
            if i not in found:
                raise CommandError(f"no spool entry {i}; 'supportgw suspended list' shows the ids")
            if found[i].status not in statuses:
                raise CommandError(f"spool {i} is {found[i].status}, not suspended")
    return spool_rows.in_status(s, statuses, ids=ids, reason=args.reason, since=_since(args.since, app.now()))


def _row(e: SpoolEntry) -> dict:
    v = e.verdict or {}
    return {"id": e.id, "status": e.status, "reason": e.reason, "received_at": e.received_at.isoformat(),
            "source": e.source, "size": e.size, "from": v.get("from", ""), "subject": v.get("subject", ""),
            "message_id": e.message_id, "reasons": v.get("reasons", []), "spam": v.get("spam"),
            "audit": v.get("audit", [])}


def cmd_list(args) -> int:
    app = open_app(args)
    with app.db.session() as s:
        rows = [_row(e) for e in _select(app, s, args)][: args.limit]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    from gateway.handlers.spam_verdict import health

    print(health(app, probe=True))
    if not rows:
        print("nothing is suspended" + (" for these filters" if args.reason or args.since else ""))
    for r in rows:
        print(f"{r['id']:>6} {r['received_at'][:16]} {r['reason']:<15} {r['from'][:32]:<32} {r['subject'][:50]}")
    return 0


def cmd_show(args) -> int:
    from parsers.message import parse_email
    from storage.spool import raw_bytes

    if not args.ids and not (args.reason or args.since):
        raise CommandError("name the spool ids to show ('supportgw suspended list' shows them)")
    app = open_app(args)
    with app.db.session() as s:
        entries = _select(app, s, args, statuses=("suspended", "dropped"))
        shown = []
        for e in entries:
            raw = raw_bytes(app.spool_blobs, e)
            shown.append((_row(e), raw, parse_email(raw, own_addresses=app.own_addresses)))
    if args.raw:
        for _, raw, _ in shown:
            sys.stdout.buffer.write(raw)
        return 0
    if args.json:
        from parsers.authresults import foreign

        def visible(headers):  # another server's Authentication-Results is nobody's word: not shown
            hidden = set(foreign(headers, app.config.spam.authserv_id)) if app.config.spam.authserv_id else set()
            return [h for h in headers if not (h[0].lower() == "authentication-results" and h[1] in hidden)]

        print(json.dumps([{**row, "text": email.text[:20000], "headers": visible(email.headers)}
                          for row, _, email in shown], ensure_ascii=False, indent=2))
        return 0
    for row, _, email in shown:
        print(f"spool {row['id']}: {row['status']} ({row['reason']}), received {row['received_at'][:19]} "
              f"from {row['source']}, {row['size']} bytes")
        print("why:")
        for reason in row["reasons"]:
            print(f"  - {reason}")
        if row["spam"]:
            sp = row["spam"]
            print(f"spam verdict: {sp.get('source')} action={sp.get('action') or '-'} score={sp.get('score')}")
        for a in row["audit"]:
            print(f"audit: {a['at'][:19]} {a['action']} by {a['by']}{': ' + a['note'] if a.get('note') else ''}")
        for name in ("From", "To", "Cc", "Subject", "Date", "Message-ID", "Return-Path"):
            if email.header(name):
                print(f"{name}: {email.header(name)}")
        print()
        print(email.text.strip()[:4000])
        print()
    return 0


def _acted(args, app, action: str) -> list[SpoolEntry]:
    if not args.ids and not (args.reason or args.since):
        raise CommandError(f"name the spool ids to {action}, or select them with --reason / --since")
    who = getpass.getuser()
    with app.db.session() as s:
        entries = _select(app, s, args)
        for e in entries:
            audit(e, "released" if action == "release" else "dropped", app.now(), who)
            e.status = "pending" if action == "release" else "dropped"
        ids = [(e.id, e.sha256) for e in entries]
    return ids


def cmd_release(args) -> int:
    from gateway.pipeline.process import process_ids, summary

    app = open_app(args)
    picked = _acted(args, app, "release")
    counts = process_ids(app, [i for i, _ in picked])
    _teach(app, picked, "ham")
    result = {"released": len(picked), **{k: v for k, v in summary(counts).items() if v}}
    print(json.dumps(result) if args.json else ", ".join(f"{k}: {v}" for k, v in result.items()))
    return 0 if not counts.get("quarantined") else 1


def cmd_drop(args) -> int:
    import logging

    app = open_app(args)
    picked = _acted(args, app, "drop")
    for i, _ in picked:
        logging.getLogger("supportgw.suspend").info("spool %s dropped from the suspended area by %s",
                                                    i, getpass.getuser())
    _teach(app, picked, "spam")
    print(json.dumps({"dropped": len(picked)}) if args.json else f"dropped {len(picked)}")
    return 0


def _teach(app, picked, kind: str) -> None:
    """Tell the spam engine what a person decided (best effort: the decision itself is already kept)."""
    from gateway.handlers import spam_verdict

    spam_verdict.learn_many(app, [i for i, _ in picked], kind)
