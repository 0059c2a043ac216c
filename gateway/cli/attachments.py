"""`supportgw tickets attachments REF` and `supportgw tickets attachment REF N [-o FILE]`:
list a ticket's attachments and fetch one, byte for byte.

Every attachment a ticket's mail carried is kept content-addressed under
data_dir/attachments (storage.attachments); a notification names the ones too large to
forward by their sha256, so one is picked by its number in the list or by a prefix of that
hash. The bytes are checked against the hash on the way out.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from gateway.cli import CommandError, open_app
from storage.queries import messages, tickets
from gateway.cli.rows import print_rows

CHUNK = 1024 * 1024


def register(tsub) -> None:
    q = tsub.add_parser("attachments", help="list a ticket's attachments, numbered")
    q.add_argument("ref")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_attachments)
    q = tsub.add_parser("attachment", help="write one attachment's bytes to a file or stdout")
    q.add_argument("ref")
    q.add_argument("which", metavar="N", help="its number in 'tickets attachments REF', or a prefix of its sha256")
    q.add_argument("-o", "--output", metavar="FILE", help="write here ('-' for stdout; default: stdout, "
                                                           "unless that is a terminal)")
    q.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    q.set_defaults(func=cmd_attachment)


def _listed(app, ref: str) -> list[dict]:
    with app.db.session() as s:
        ticket = tickets.by_ref(s, ref)
        if ticket is None:
            raise CommandError(f"no ticket {ref}; 'supportgw tickets list' shows the references")
        rows = messages.attachments_on_ticket(s, ticket.id)
        return [{"n": n, "ref": ticket.ref, "filename": a.filename, "content_type": a.content_type, "size": a.size,
                 "sha256": a.sha256, "from": m.sender_email, "at": m.created_at.isoformat(), "internal": m.internal,
                 "stored": app.attachments.path_for(a.sha256).is_file()}
                for n, (a, m) in enumerate(rows, 1)]


def cmd_attachments(args) -> int:
    app = open_app(args, needs_rules=False)
    items = _listed(app, args.ref)
    print_rows(items, args.json, f"{args.ref.upper()} has no attachments", lambda a: (
        f"{a['n']:>3}  {a['filename']:<40} {a['size']:>11,} B  {a['content_type']:<28} "
        f"{a['sha256'][:12]}  {a['at'][:16]} {a['from']}"
        + "".join([" (internal)" if a["internal"] else "", "" if a["stored"] else " MISSING from the store"])))
    if items and not args.json:
        print(f"fetch one with: supportgw tickets attachment {items[0]['ref']} N -o FILE")
    return 0


def _pick(items: list[dict], which: str) -> dict:
    if which.isdigit() and len(which) < 6:
        n = int(which)
        if not 1 <= n <= len(items):
            raise CommandError(f"{items[0]['ref'] if items else 'the ticket'} has {len(items)} attachment(s), "
                               f"no number {n}; 'supportgw tickets attachments REF' lists them")
        return items[n - 1]
    prefix = which.lower()
    hits = {a["sha256"]: a for a in items if a["sha256"].startswith(prefix)} if len(prefix) >= 6 else {}
    if len(hits) != 1:
        why = "matches none" if not hits else "matches several"
        raise CommandError(f"{which!r} {why} of this ticket's attachments: give its number from 'supportgw tickets "
                           "attachments REF', or at least 6 characters of its sha256")
    return next(iter(hits.values()))


def cmd_attachment(args) -> int:
    app = open_app(args, needs_rules=False)
    a = _pick(_listed(app, args.ref), args.which)
    src = app.attachments.path_for(a["sha256"])
    if not a["stored"]:
        raise CommandError(f"attachment {a['n']} ({a['filename']}) is not in the store: {src} is missing")
    if args.output in (None, "-"):
        if args.output is None and sys.stdout.isatty():
            raise CommandError(f"not writing {a['size']:,} bytes of {a['content_type']} to a terminal: "
                               f"give -o FILE (e.g. -o {Path(a['filename']).name or 'attachment.bin'}) or -o -")
        _copy(src, sys.stdout.buffer, a)
        return 0
    out = Path(args.output)
    if out.exists() and not args.force:
        raise CommandError(f"{out} exists; give --force to overwrite it, or another -o FILE")
    tmp = out.with_name(f".{out.name}.{os.getpid()}.part")
    try:
        with open(tmp, "wb") as fh:
            _copy(src, fh, a)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    print(f"wrote {out} ({a['size']:,} bytes, {a['filename']}, sha256 {a['sha256'][:12]}…)", file=sys.stderr)
    return 0


def _copy(src: Path, dst, a: dict) -> None:
    """Stream the file out, checking its hash: a content-addressed file that changed is damage."""
    digest = hashlib.sha256()
    with open(src, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            dst.write(chunk)
    dst.flush()
    if digest.hexdigest() != a["sha256"]:
        raise CommandError(f"{src} does not match its sha256 {a['sha256']}: the stored file is damaged")
