"""`supportgw import`: bring a team's mail history in, without writing to anyone (gateway/edges/importer.py)."""

from __future__ import annotations

import json
import logging
import signal
import sys
from datetime import datetime, timedelta, timezone

from gateway.cli import CommandError, open_app


def register(sub) -> None:
    p = sub.add_parser("import", help="import a mail history (mbox, Maildir, .eml folders, an IMAP folder): "
                                      "dates kept, threads rebuilt, nothing sent")
    p.add_argument("paths", nargs="*", metavar="PATH")
    p.add_argument("--imap", metavar="NAME", help="an [[imap]] mailbox of the configuration, read-only")
    p.add_argument("--folder", action="append", metavar="F",
                   help="IMAP folder (repeatable, e.g. INBOX and Sent; default: the mailbox's folder)")
    p.add_argument("--since", metavar="DATE", help="only mail dated on or after DATE (YYYY-MM-DD)")
    p.add_argument("--until", metavar="DATE", help="only mail dated before DATE (YYYY-MM-DD)")
    p.add_argument("--close-after", type=float, metavar="DAYS",
                   help="close conversations quiet for longer (default: workflow.import_close_after_days)")
    p.add_argument("--batch", type=int, default=250, help="messages per transaction (default 250: on SQLite, live mail waits for one at most)")
    p.add_argument("--json", action="store_true", help="print the counts as JSON at the end")
    p.set_defaults(func=cmd_import)


def register_backfill(isub) -> None:
    q = isub.add_parser("backfill", help="after an outage: take every message since DATE the gateway lacks, "
                                         "as live mail (seen or not)")
    q.add_argument("name", help="the [[imap]] mailbox's name")
    q.add_argument("--since", required=True, metavar="DATE", help="YYYY-MM-DD (IMAP SINCE: whole days)")
    q.add_argument("--folder", help="another folder than the mailbox's own")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_backfill)


def cmd_backfill(args) -> int:
    from gateway.edges.backfill import backfill
    from gateway.edges.imap_conn import ImapProblem

    since = _date(args.since, "--since").date()
    app = open_app(args, stores_mail=True)
    boxes = {m.name: m for m in app.config.imap}
    if args.name not in boxes:
        raise CommandError(f"imap backfill: no [[imap]] mailbox named {args.name!r}; configured: "
                           f"{', '.join(boxes) or 'none'}")
    try:
        report = backfill(app, boxes[args.name], since, folder=args.folder)
    except ImapProblem as exc:
        raise CommandError(str(exc)) from None
    if args.json:
        print(json.dumps(report))
    else:
        for m in report["messages"]:
            print(f"{m['outcome']:12s} {m['ticket'] or '-':10s} {m['message_id']}")
        print(", ".join(f"{k}: {v}" for k, v in report.items() if k != "messages"))
    return 0


def _date(value: str | None, flag: str):
    if not value:
        return None
    try:
        d = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{flag} {value!r}: expected a date like 2019-03-01") from None
    return d if d.tzinfo else d.replace(tzinfo=timezone.utc)


def cmd_import(args) -> int:
    from tqdm import tqdm

    from gateway.edges.import_sources import FileSource, ImapSource, SourceError
    from gateway.edges.importer import Importer

    if not args.paths and not args.imap:
        raise CommandError("import: give one or more PATHs (mbox, Maildir, folder of .eml) or --imap NAME")
    if args.batch < 1:
        raise CommandError("import: --batch must be at least 1")
    since, until = _date(args.since, "--since"), _date(args.until, "--until")
    app = open_app(args, stores_mail=True)
    try:
        sources = [FileSource(p) for p in args.paths]
        if args.imap:
            sources += [ImapSource(app, args.imap, f) for f in (args.folder or [None])]
    except SourceError as exc:
        raise CommandError(str(exc)) from None
    days = args.close_after if args.close_after is not None else app.config.workflow.import_close_after_days
    bar = tqdm(unit="msg", disable=args.json or not sys.stderr.isatty(), file=sys.stderr, desc="reading headers")

    def planned(n: int) -> None:  # the headers are read and the conversations rebuilt: now the writing
        bar.set_description("importing")
        bar.reset(total=n)

    imp = Importer(app, sources, since=since, until=until, close_after=timedelta(days=days), batch=args.batch,
                   progress=bar.update, on_planned=planned, on_scanned=bar.update)
    interrupted: list[int] = []

    def on_interrupt(signum, _frame):
        interrupted.append(signum)
        # The connection the interruption left mid-statement (a COPY, on PostgreSQL) cannot be
        # reset; the pool discards it, and would log that with a traceback under the one line
        # the user gets. Nothing is lost by it: the open batch was not committed.
        logging.getLogger("sqlalchemy.pool").setLevel(logging.CRITICAL)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        counts = imp.run()
    except BaseException as exc:
        # Whatever the interruption turned into on its way up counts as the interruption: psycopg
        # cancels a COPY and the rollback after it may fail with "another command is already in
        # progress" (CI saw exit 1 for a Ctrl-C on PostgreSQL). The open batch was not committed.
        if not (interrupted or isinstance(exc, KeyboardInterrupt)):
            raise
        bar.close()
        print(f"supportgw: interrupted after {imp.counts['imported']} messages; what was written is complete, "
              "run the same command again to import the rest", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, previous)
        for s in sources:
            try:
                s.close()
            except Exception as exc:  # nothing of the import depends on it; never hide the outcome
                print(f"supportgw: could not close {s.label}: {exc}", file=sys.stderr)
    bar.close()
    summary = {k: counts[k] for k in ("scanned", "imported", "tickets_created", "threaded_into_existing",
                                      "outbound", "open", "closed", "conversations",
                                      "joined_by_subject", "duplicates", "already_imported", "outside_dates")}
    summary["outbox_rows_queued"] = 0  # by construction: gateway/edges/importer.py writes no outbox row
    summary["seconds"] = counts["seconds"]
    summary["rate"] = round(counts["imported"] / counts["seconds"], 1) if counts["seconds"] else 0
    if args.json:
        print(json.dumps(summary))
    else:
        print(", ".join(f"{k}: {v}" for k, v in summary.items()))
    return 0
