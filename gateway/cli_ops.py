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


def cmd_health(args) -> int:
    from gateway import health

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
