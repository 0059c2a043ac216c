"""Operations commands: health, customer data rights (export, erase), retention."""

from __future__ import annotations

import json
import sys

from gateway.cli import CommandError, open_app
from gateway.config import ConfigError


def register(sub) -> None:
    p = sub.add_parser("health", help="is the gateway ready? the /readyz checks; exit 0 ready, 1 not")
    p.add_argument("--json", action="store_true", help="the /readyz JSON body")
    p.set_defaults(func=cmd_health)

    p = sub.add_parser("customer", help="a customer's data rights: export, erase")
    csub = p.add_subparsers(dest="customer_command", required=True)
    q = csub.add_parser("export", help="everything stored about ADDRESS into a zip (layout in its README.txt)")
    q.add_argument("address")
    q.add_argument("-o", "--output", required=True, help="the .zip to write")
    q.add_argument("--force", action="store_true", help="overwrite an existing file")
    q.set_defaults(func=cmd_customer_export)
    q = csub.add_parser("erase", help="remove or anonymise ADDRESS everywhere (asks for --yes)")
    q.add_argument("address")
    q.add_argument("--yes", action="store_true", help="really erase; without it, show what would be erased")
    q.set_defaults(func=cmd_customer_erase)

    p = sub.add_parser("retention", help="apply the [retention] periods now")
    rsub = p.add_subparsers(dest="retention_command", required=True)
    q = rsub.add_parser("run", help="remove what is older than its [retention] period")
    q.add_argument("--dry-run", action="store_true", help="count only")
    q.set_defaults(func=cmd_retention_run)
    q = rsub.add_parser("log", help="what the retention job and erasures removed, newest first")
    q.add_argument("--limit", type=int, default=20)
    q.set_defaults(func=cmd_retention_log)


def cmd_health(args) -> int:
    from gateway.edges import health

    try:
        app = open_app(args, migrate=False)
    except (CommandError, ConfigError):
        raise  # the user's mistake: exit 2 with the one-line error
    except Exception as exc:  # a monitoring probe wants an answer and exit 1, not a traceback
        report = {"ok": False, "problems": [f"database: {type(exc).__name__}: {str(exc)[:300]}"],
                  "warnings": [], "checks": {"database": {"ok": False, "problem": str(exc)[:300]}}}
    else:
        report = health.readiness(app)
    if args.json:
        json.dump(report, sys.stdout, indent=2, default=str)
        print()
    else:
        print(health.render_text(report))
    return 0 if report["ok"] else 1


def _address(text: str) -> str:
    address = text.strip().lower()
    if "@" not in address or address.startswith("@") or address.endswith("@") or " " in address:
        raise CommandError(f"{text!r} is not an email address")
    return address


def _describe(counts: dict) -> str:
    return ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in counts.items())


def cmd_customer_export(args) -> int:
    from pathlib import Path

    from gateway.desk.customer_export import export

    address = _address(args.address)
    out = Path(args.output)
    if out.exists() and not args.force:
        raise CommandError(f"{out} exists; choose another file or add --force")
    if not out.parent.is_dir():
        raise CommandError(f"no such folder: {out.parent}")
    app = open_app(args)
    try:
        counts = export(app, address, out)
    except LookupError:
        print(f"nothing is stored about {address}; no file written")
        return 1
    print(f"wrote {out}: {_describe(counts)}")
    return 0


def cmd_customer_erase(args) -> int:
    from gateway.desk.customer_data import find
    from gateway.desk.customer_erase import erase

    address = _address(args.address)
    app = open_app(args)
    if not args.yes:
        with app.db.session() as s:
            h = find(app, s, address)
            if h.empty:
                print(f"nothing is stored about {address}")
                return 0
            print(f"{address}: {len(h.requested)} ticket(s) opened, {len(h.involved)} other ticket(s) taking part, "
                  f"{len(h.messages)} message(s) sent, {len(h.outbox)} mail(s) to them, "
                  f"{len(h.unfiled)} message(s) with no ticket. Nothing was changed; "
                  "run again with --yes to erase (this cannot be undone).")
        return 1
    try:
        counts = erase(app, address)
    except LookupError:
        print(f"nothing is stored about {address}")
        return 0
    print(f"erased {address}: {_describe(counts)}")
    try:
        in_rules = address in app.config.rules_path.read_text(encoding="utf-8").lower()
    except OSError:
        in_rules = False
    if in_rules:
        print(f"note: the routing rules file {app.config.rules_path} still names {address}; remove it there "
              "and the gateway reloads it")
    return 0


def cmd_retention_run(args) -> int:
    from gateway.jobs.retention import apply_retention

    app = open_app(args)
    counts = apply_retention(app, dry_run=args.dry_run)
    print(("would remove: " if args.dry_run else "removed: ") + _describe(counts))
    return 0


def cmd_retention_log(args) -> int:
    from storage.queries import audit as audit_log

    app = open_app(args)
    with app.db.session() as s:
        rows = audit_log.newest(s, args.limit)
        for r in rows:
            print(f"{r.at:%Y-%m-%d %H:%M} {r.kind}: {_describe(r.data)}")
    if not rows:
        print("nothing recorded yet")
    return 0
