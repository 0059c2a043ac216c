"""Core commands: init, run, ingest, parse, db upgrade."""

from __future__ import annotations

import json
import logging
import mailbox
import os
import sys
from collections import Counter
from pathlib import Path

from gateway.cli import CommandError, open_app
from gateway.config import DEFAULT_CONFIG, find_config_path, load_config
from gateway.tokens import generate_key


def register(sub) -> None:
    p = sub.add_parser("init", help="write a default supportgw.toml and secret key, create the database")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("run", help="run the gateway in the foreground")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("ingest", help="import .eml files, Maildir folders or mbox files")
    p.add_argument("paths", nargs="+")
    p.add_argument("--json", action="store_true")
    p.add_argument("--batch", type=int, default=200)
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("parse", help="parse one email file and print what the gateway sees")
    p.add_argument("file")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_parse)

    p = sub.add_parser("db", help="database maintenance")
    dsub = p.add_subparsers(dest="db_command", required=True)
    q = dsub.add_parser("upgrade", help="apply migrations")
    q.set_defaults(func=cmd_db_upgrade)
    q = dsub.add_parser("adopt", help="make this gateway's data_dir and secret key the ones every gateway on "
                                      "the database must share (after replacing either on purpose)")
    q.set_defaults(func=cmd_db_adopt)


def cmd_init(args) -> int:
    path = find_config_path(args.config)
    if not path.exists():
        path.write_text(DEFAULT_CONFIG, encoding="utf-8")
        print(f"wrote {path}")
    cfg = load_config(path)
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    sk = cfg.gateway.secret_key
    if sk.file and not Path(cfg.path(sk.file)).exists():
        kf = Path(cfg.path(sk.file))
        kf.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(kf, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(generate_key() + "\n")
        print(f"generated secret key in {kf}")
    app = open_app(args, needs_rules=False)
    print(f"database ready: {app.config.database_url}")
    return 0


def cmd_run(args) -> int:
    from gateway.runtime.runner import run_forever

    from gateway.logs import configure
    from gateway.metrics import prepare_multiprocess

    app = open_app(args, stores_mail=True)
    prepare_multiprocess(app.config.data_dir)  # before the workers start: they inherit where to count
    configure(app.config)  # [log] format, secrets redacted
    return run_forever(app)


def _read_all(open_file) -> bytes:
    with open_file() as fh:
        return fh.read()


def iter_sources(paths: list[str], read=_read_all):
    """Yield raw messages from .eml files, Maildir folders and mbox files.

    `read(open_file)` reads one message from a binary file it opens; cmd_ingest
    passes one that streams a large message into the spool blob store instead of memory.
    """
    for p in map(Path, paths):
        if p.is_dir():
            if (p / "cur").is_dir() or (p / "new").is_dir():
                box = mailbox.Maildir(str(p), factory=None, create=False)
                for key in sorted(box.iterkeys(), key=_delivery_order):
                    yield read(lambda key=key: box.get_file(key))
            else:
                for f in sorted(x for x in p.rglob("*") if x.is_file()):
                    yield read(lambda f=f: open(f, "rb"))
        elif p.is_file():
            with open(p, "rb") as fh:
                head = fh.read(5)
            if head.startswith(b"From "):
                for msg in mailbox.mbox(str(p), create=False):
                    yield msg.as_bytes()
            else:
                yield read(lambda p=p: open(p, "rb"))
        else:
            raise CommandError(f"{p}: no such file or folder")


def _delivery_order(key: str) -> tuple:
    """Maildir names start with the delivery time ("1795696714.M828364P13298Q1.host"):
    importing in that order lets every reply find the message it answers."""
    sec, _, rest = key.partition(".")
    micro = rest[1:].split("P", 1)[0] if rest.startswith("M") else ""
    return (int(sec) if sec.isdigit() else 0, int(micro) if micro.isdigit() else 0, key)


def count_sources(paths: list[str]) -> int | None:
    try:
        return sum(1 for p in map(Path, paths) if p.is_file()) + sum(
            sum(1 for x in Path(p).rglob("*") if x.is_file()) for p in paths if Path(p).is_dir())
    except OSError:
        return None


def cmd_ingest(args) -> int:
    app = open_app(args, stores_mail=True)
    quiet = logging.getLogger("supportgw.pipeline")
    level = quiet.level
    if not args.verbose:  # an import of thousands: the summary says it, not a line per message (-v for those)
        quiet.setLevel(logging.WARNING)
    try:
        return _ingest(args, app)
    finally:
        quiet.setLevel(level)  # for the command only: a caller in the same process keeps its log


def _ingest(args, app) -> int:
    from tqdm import tqdm

    from gateway.pipeline.process import Source, ingest
    from gateway.runtime import heap

    heap.settle()

    totals: Counter = Counter()
    batch: list[bytes] = []
    bar = tqdm(total=count_sources(args.paths), unit="msg", disable=args.json or not sys.stderr.isatty(),
               file=sys.stderr)

    def flush():
        c = ingest(app, [(raw, Source("file")) for raw in batch], parse_ahead=True)
        totals.update(c)
        totals["ingested"] += len(batch)
        bar.update(len(batch))
        batch.clear()

    from storage.spool import read_file

    inline_max = app.config.gateway.spool_inline_max
    for raw in iter_sources(args.paths, read=lambda open_file: read_file(app.spool_blobs, open_file, inline_max)):
        batch.append(raw)
        if len(batch) >= args.batch:
            flush()
    if batch:
        flush()
    bar.close()
    from gateway.pipeline.process import summary as outcome_summary

    summary = {"ingested": totals["ingested"], **outcome_summary(totals)}
    if args.json:
        print(json.dumps(summary))
    else:
        print(", ".join(f"{k}: {v}" for k, v in summary.items()))
    return 0


def cmd_parse(args) -> int:
    from parsers.message import parse_email

    path = Path(args.file)
    if not path.is_file():
        raise CommandError(f"{path}: no such file")
    own: tuple[str, ...] = ()
    try:
        cfg = load_config(find_config_path(args.config))
        own = tuple(cfg.all_support_addresses)
    except Exception:
        pass  # parsing needs no configuration
    parsed = parse_email(path.read_bytes(), own_addresses=own)
    if args.json:
        print(json.dumps(parsed.to_json(), ensure_ascii=False, indent=2))
    else:
        d = parsed.to_json()
        for k in ("from", "to", "cc", "subject", "message_id", "in_reply_to", "references", "date", "language",
                  "automatic", "automatic_reason"):
            print(f"{k}: {d[k]}")
        print(f"attachments: {[a['filename'] for a in d['attachments']]}")
        print()
        print(parsed.reply_text or parsed.text)
    return 0


def cmd_db_adopt(args) -> int:
    from gateway.runtime.installation import adopt

    app = open_app(args, needs_rules=False)
    changed = adopt(app)
    names = {"data_dir_id": f"data_dir {app.config.data_dir}", "key_check": "secret key"}
    print("recorded as the installation's: " + ", ".join(names[c] for c in changed) if changed
          else "nothing to record: this gateway's data_dir and secret key are already the installation's")
    return 0


def cmd_db_upgrade(args) -> int:
    from gateway.app import check_database
    from storage.migrate import upgrade

    cfg = load_config(find_config_path(args.config))
    check_database(cfg)
    upgrade(cfg.database_url)
    print(f"database at head: {cfg.database_url}")
    return 0
