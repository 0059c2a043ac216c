"""Inspection and operations: tickets, outbox, quarantine, rules."""

from __future__ import annotations

import json
from pathlib import Path

from gateway.desk import holding
from gateway.cli import CommandError, open_app
from storage.models import Message, OutboxRow, SpoolEntry, Ticket
from storage.queries import events, messages, outbox as outbox_rows, spool as spool_rows, tickets
from gateway.cli.rows import print_rows


def register(sub) -> None:
    p = sub.add_parser("tickets", help="list or show tickets")
    tsub = p.add_subparsers(dest="tickets_command", required=True)
    from gateway.cli import attachments as cli_attachments  # `tickets attachments|attachment`, in their own module

    cli_attachments.register(tsub)
    q = tsub.add_parser("list")
    q.add_argument("--json", action="store_true")
    q.add_argument("--status")
    q.add_argument("--limit", type=int, default=100)
    q.set_defaults(func=cmd_tickets_list)
    q = tsub.add_parser("show")
    q.add_argument("ref")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_tickets_show)
    q = tsub.add_parser("release", help="release a held ticket: its requester gets the acknowledgement")
    q.add_argument("ref")
    q.set_defaults(func=cmd_tickets_release)
    q = tsub.add_parser("merge", help="merge ticket A into ticket B (as #merge B in a reply on A)")
    q.add_argument("ref")
    q.add_argument("into")
    q.set_defaults(func=cmd_tickets_merge)
    q = tsub.add_parser("split", help="a customer message of a ticket becomes a new linked ticket (as #split)")
    q.add_argument("ref")
    q.add_argument("message", type=int, help="the message's number, as 'tickets show' prints it (#N)")
    q.set_defaults(func=cmd_tickets_split)

    p = sub.add_parser("outbox", help="outgoing mail")
    osub = p.add_subparsers(dest="outbox_command", required=True)
    q = osub.add_parser("list")
    q.add_argument("--json", action="store_true")
    q.add_argument("--status")
    q.add_argument("--limit", type=int, default=100)
    q.set_defaults(func=cmd_outbox_list)
    q = osub.add_parser("send", help="send what is due now and exit")
    q.set_defaults(func=cmd_outbox_send)
    q = osub.add_parser("show", help="one outgoing mail, readable: its headers decoded and its text")
    q.add_argument("id", type=int)
    q.add_argument("--raw", action="store_true", help="print the RFC 5322 bytes as sent instead")
    q.set_defaults(func=cmd_outbox_show)

    p = sub.add_parser("quarantine", help="messages that could not be processed")
    qsub = p.add_subparsers(dest="quarantine_command", required=True)
    q = qsub.add_parser("list")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_quarantine_list)
    for name, fn in (("show", cmd_quarantine_show), ("retry", cmd_quarantine_retry), ("drop", cmd_quarantine_drop)):
        q = qsub.add_parser(name)
        q.add_argument("ids", nargs="+", help="spool ids, or 'all' (retry only)")
        q.set_defaults(func=fn)

    p = sub.add_parser("rules", help="routing rules")
    rsub = p.add_subparsers(dest="rules_command", required=True)
    q = rsub.add_parser("check", help="validate a rules file")
    q.add_argument("file", nargs="?")
    q.set_defaults(func=cmd_rules_check)
    q = rsub.add_parser("explain", help="show how one email would be routed")
    q.add_argument("file")
    q.add_argument("--to", action="append", default=[], help="envelope recipient (default: first support address)")
    q.set_defaults(func=cmd_rules_explain)


def _ticket_json(s, t: Ticket) -> dict:
    n = messages.count_on(s, t.id)
    return {
        "ref": t.ref, "subject": t.subject, "status": t.status, "priority": t.priority,
        "category": t.category, "team": t.team, "owner": t.owner, "handler": t.handler,
        "requester": t.requester_email, "organisation": t.organisation, "messages": n,
        "created_at": t.created_at.isoformat(), "updated_at": t.updated_at.isoformat(),
        "first_response_due": t.first_response_due.isoformat() if t.first_response_due else None,
        "resolution_due": t.resolution_due.isoformat() if t.resolution_due else None,
        "tags": t.tags, "held": t.held,
        "merged_into": s.get(Ticket, t.merged_into_id).ref if t.merged_into_id else None,
    }


def cmd_tickets_list(args) -> int:
    app = open_app(args, needs_rules=False)
    with app.db.session() as s:
        rows = [_ticket_json(s, t) for t in tickets.newest(s, args.limit, status=args.status)]
    print_rows(rows, args.json, "no tickets yet", lambda r: (
        f"{r['ref']}  {r['status']:<8} {r['priority']}  {r['requester']:<30} {r['messages']:>3} msg  {r['subject'][:60]}"))
    return 0


def cmd_tickets_show(args) -> int:
    app = open_app(args, needs_rules=False)
    with app.db.session() as s:
        t = tickets.by_ref(s, args.ref)
        if t is None:
            raise CommandError(f"no ticket {args.ref}; 'supportgw tickets list' shows the references")
        data = _ticket_json(s, t)
        data["participants"] = [{"email": p.email, "role": p.role, "active": p.active} for p in t.participants]
        data["held_by"] = [h.as_dict() for h in holding.holds(s, t)]
        data["history"] = [
            {"at": e.at.isoformat(), "kind": e.kind, "actor": e.actor, "detail": e.detail}
            for e in events.of_ticket(s, t.id)
        ]
        data["thread"] = [
            {"id": m.id, "at": m.created_at.isoformat(), "direction": m.direction, "kind": m.kind,
             "from": m.sender_email,
             "internal": m.internal, "text": m.reply_text or m.text}
            for m in t.messages
        ]
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return 0
    print(f"{data['ref']}  {data['subject']}")
    if data["merged_into"]:
        print(f"merged into {data['merged_into']}: its messages and history are there")
    print(f"status {data['status']}{' (held)' if data['held'] else ''}  priority {data['priority']}  category {data['category']}  team {data['team']}")
    print(f"requester {data['requester']}  owner {data['owner'] or '-'}  handler {data['handler'] or '-'}")
    print(f"first response due {data['first_response_due']}  resolution due {data['resolution_due']}")
    print("\nWho held it (from → until, handler, owner if another; step (by whom): why):")
    for h in data["held_by"]:
        until = h["until"][:19] if h["until"] else "now" + " " * 16
        owner = f" (owner {h['owner']})" if h["owner"] and h["owner"] != h["handler"] else ""
        print(f"  {h['from'][:19]} → {until}  {h['handler'] or 'the team queue'}{owner}")
        print(f"  {'':>44}{h['label']} ({h['by']}): {h['why']}")
    print("\nHistory:")
    for e in data["history"]:
        detail = e["detail"].replace("\n", "\n" + " " * 40)  # multi-line entries stay in their column
        print(f"  {e['at'][:19]}  {e['kind']:<16} {detail}")
    print("\nMessages:")
    for m in data["thread"]:
        tag = " (internal)" if m["internal"] else ""
        print(f"--- #{m['id']} {m['at'][:19]} {m['direction']} {m['kind']} {m['from']}{tag}")
        print(m["text"].strip())
    print()
    return 0


def cmd_tickets_release(args) -> int:
    from gateway.desk import hold

    app = open_app(args)
    with app.db.session() as s:
        t = tickets.by_ref(s, args.ref)
        if t is None:
            raise CommandError(f"no ticket {args.ref}; 'supportgw tickets list' shows the references")
        if not t.held:
            raise CommandError(f"{t.ref} is not held; nothing to release")
        why = hold.release(app, s, t, actor="cli", via="supportgw tickets release")
        ref, rcpt = t.ref, t.requester_email
    print(f"{ref} released; " + (f"no acknowledgement: {why}" if why else f"acknowledgement to {rcpt} queued"))
    return 0


def _ticket_or_error(s, ref: str) -> Ticket:
    t = tickets.by_ref(s, ref)
    if t is None:
        raise CommandError(f"no ticket {ref}; 'supportgw tickets list' shows the references")
    return t


def cmd_tickets_merge(args) -> int:
    from gateway.desk import merge_split

    app = open_app(args)
    with app.db.session() as s:
        source, target = _ticket_or_error(s, args.ref), _ticket_or_error(s, args.into)
        why = merge_split.merge_problem(s, source, target, target.ref)
        if why:
            raise CommandError(why.replace("#merge", "tickets merge", 1).replace("this ticket", source.ref))
        survivor = merge_split.merge(app, s, source, target, actor="cli")
        refs = source.ref, survivor.ref
    print(f"{refs[0]} merged into {refs[1]}; its customer is told once")
    return 0


def cmd_tickets_split(args) -> int:
    from gateway.desk import merge_split

    app = open_app(args)
    with app.db.session() as s:
        t = _ticket_or_error(s, args.ref)
        m = s.get(Message, args.message)
        if m is None or m.ticket_id != t.id:
            raise CommandError(f"{t.ref} has no message #{args.message}; 'supportgw tickets show {t.ref}' lists them")
        why = merge_split.split_problem(s, t, m)
        if why:
            raise CommandError(why.replace("#split: ", "tickets split: ", 1))
        new = merge_split.split(app, s, t, m, actor="cli")
        refs = t.ref, new.ref
    print(f"message #{args.message} of {refs[0]} is now {refs[1]}, linked to {refs[0]}")
    return 0


def cmd_outbox_list(args) -> int:
    app = open_app(args, needs_rules=False)
    with app.db.session() as s:
        rows = [{
            "id": r.id, "ticket_id": r.ticket_id, "kind": r.kind, "to": r.to, "cc": r.cc, "subject": r.subject,
            "message_id": r.message_id, "status": r.status, "attempts": r.attempts,
            "next_attempt_at": r.next_attempt_at.isoformat(), "last_error": r.last_error,
            "created_at": r.created_at.isoformat(),
        } for r in outbox_rows.newest(s, args.limit, status=args.status)]
    print_rows(rows, args.json, "outbox is empty", lambda r: (
        f"{r['id']:>6} {r['status']:<8} {r['attempts']}x {r['kind']:<16} {','.join(r['to']):<30} {r['subject'][:50]}"
        + (f"  ({r['last_error'][:60]})" if r["last_error"] else "")))
    return 0


def cmd_outbox_send(args) -> int:
    from gateway.runtime.dispatch import dispatch_due

    app = open_app(args)
    n = dispatch_due(app)
    print(f"sent {n}")
    return 0


_SHOWN_HEADERS = ("From", "To", "Cc", "Reply-To", "Subject", "Date", "Message-ID", "In-Reply-To", "Auto-Submitted")


def cmd_outbox_show(args) -> int:
    import sys
    from email import message_from_bytes, policy

    from gateway.outbox import message_bytes

    app = open_app(args, needs_rules=False)
    with app.db.session() as s:
        row = s.get(OutboxRow, args.id)
        if row is None:
            raise CommandError(f"no outbox row {args.id}; 'supportgw outbox list' shows them")
        raw = message_bytes(row, store=app.attachments)
        status = f"{row.kind}, {row.status} after {row.attempts} attempt(s)"
    if args.raw:
        sys.stdout.buffer.write(raw)
        return 0
    msg = message_from_bytes(raw, policy=policy.default)
    print(f"outbox {args.id}: {status}")
    for name in _SHOWN_HEADERS:
        if msg[name] is not None:
            print(f"{name}: {msg[name]}")
    body = msg.get_body(preferencelist=("plain", "html"))
    print()
    print(body.get_content().rstrip() if body is not None else "(no text part)")
    for part in msg.iter_attachments():
        print(f"[attachment] {part.get_filename() or '(unnamed)'} ({part.get_content_type()})")
    return 0


def cmd_quarantine_list(args) -> int:
    app = open_app(args, needs_rules=False)
    with app.db.session() as s:
        rows = [{"id": e.id, "source": e.source, "received_at": e.received_at.isoformat(), "size": e.size,
                 "message_id": e.message_id, "attempts": e.attempts, "reason": e.error.splitlines()[0] if e.error else ""}
                for e in spool_rows.in_status(s, ("quarantined",))]
    print_rows(rows, args.json, "quarantine is empty",
               lambda r: f"{r['id']:>6} {r['source']:<12} {r['size']:>9} B  {r['reason'][:80]}")
    return 0


def _entries(s, ids):
    for i in ids:
        e = s.get(SpoolEntry, int(i))
        if e is None:
            raise CommandError(f"no spool entry {i}; 'supportgw quarantine list' shows the ids")
        yield e


def cmd_quarantine_show(args) -> int:
    app = open_app(args, needs_rules=False)
    with app.db.session() as s:
        for e in _entries(s, args.ids):
            print(f"spool {e.id} from {e.source} at {e.received_at.isoformat()} status {e.status}")
            print(f"message-id: {e.message_id}\nsize: {e.size}\nreason:\n{e.error}")
    return 0


def cmd_quarantine_retry(args) -> int:
    from gateway.pipeline.process import process_ids

    app = open_app(args)
    with app.db.session() as s:
        if args.ids == ["all"]:
            entries = spool_rows.in_status(s, ("quarantined",))
        else:
            entries = [e for e in _entries(s, args.ids) if e.status == "quarantined"]
        ids = [e.id for e in entries]
        for e in entries:
            e.status = "pending"
    counts = process_ids(app, ids)
    print(", ".join(f"{k}: {v}" for k, v in counts.items()) or "nothing to retry")
    return 0 if not counts.get("quarantined") else 1


def cmd_quarantine_drop(args) -> int:
    app = open_app(args, needs_rules=False)
    with app.db.session() as s:
        for e in _entries(s, args.ids):
            if e.status != "quarantined":
                raise CommandError(f"spool {e.id} is {e.status}, not quarantined")
            e.status = "dropped"  # the raw bytes stay: dropping is a decision, not a deletion
    print(f"dropped {len(args.ids)}")
    return 0


def cmd_rules_check(args) -> int:
    from routing.loader import check_file

    from gateway.config import find_config_path, load_config

    path = Path(args.file) if args.file else None
    if path is None:
        try:
            path = load_config(find_config_path(args.config)).rules_path
        except Exception:
            path = Path(__file__).resolve().parent.parent / "routing" / "sample_rules.toml"
    problems = check_file(path)
    if problems:
        for p in problems:
            print(str(p))
        print(f"{len(problems)} problem(s) in {path}")
        return 1
    print(f"{path}: OK")
    return 0


def cmd_rules_explain(args) -> int:
    from parsers.message import parse_email
    from routing.explain import explain_email

    app = open_app(args)
    raw = Path(args.file).read_bytes()
    email = parse_email(raw, own_addresses=app.own_addresses)
    rcpts = tuple(args.to) or (app.config.support_address,)
    print(explain_email(email, app.rules.current, rcpts, app.now()))
    return 0
