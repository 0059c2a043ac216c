"""`supportgw` command line: argument parsing and dispatch only.

Each capability registers its sub-commands from its own module in this package, so
adding one touches this file by a single line in COMMAND_MODULES.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from gateway import CommandError  # noqa: F401  (the command modules raise it as gateway.cli.CommandError)
from gateway.config import ConfigError, find_config_path, load_config
from storage.db import StorageUnavailable
from storage.migrate import SchemaTooNew

COMMAND_MODULES = [
    "gateway.cli.core",
    "gateway.cli.admin",
    "gateway.cli.report",
    "gateway.cli.imap",
    "gateway.cli.importing",
    "gateway.cli.suspended",
    "gateway.cli.oauth",
    "gateway.cli.ops",
]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="supportgw", description="Email-driven technical-support gateway")
    p.add_argument("--config", help="configuration file (default: $SUPPORTGW_CONFIG or ./supportgw.toml)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return p


def open_app(args, *, migrate: bool = True, clock=None, needs_rules: bool = True, stores_mail: bool = False):
    """The app for one command. `needs_rules=False` for a command that routes nothing and
    names no engineer it must get right: it runs beside a broken rules file, and says so once
    (the running gateway keeps its old rules meanwhile; the rest of the CLI should not stop).
    `stores_mail`: a command that stores or sends mail first checks that its data_dir and key
    are those of the other gateways on the database (gateway/runtime/installation.py)."""
    from gateway.app import build_app

    cfg = load_config(find_config_path(args.config))
    app = build_app(cfg, migrate=migrate, clock=clock, rules_optional=not needs_rules)
    if stores_mail:
        from gateway.runtime.installation import verify

        verify(app)
    if app.rules_error:
        print(f"supportgw: warning: {app.rules_error}", file=sys.stderr)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not args.verbose:
        # migrations run at every start; their step-by-step INFO lines are noise for a person
        logging.getLogger("alembic").setLevel(logging.WARNING)
        # aiosmtpd logs every SMTP command line at INFO: a line per command per message, which
        # cost the listener a third of its throughput; our own log says what was accepted
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        # apscheduler says "Running job ..." / "executed successfully" for every job every minute
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
    try:
        return int(args.func(args) or 0)
    except (ConfigError, CommandError, SchemaTooNew) as exc:
        print(f"supportgw: {exc}", file=sys.stderr)
        return 2
    except StorageUnavailable as exc:
        print(f"supportgw: the database is unavailable ({exc}); check [database] url and that the server runs",
              file=sys.stderr)
        return 3
    except BrokenPipeError:
        return 0

