"""The inbound spool: raw bytes committed before any source is acknowledged.

`add_many` writes a whole batch in one transaction (group commit) and tells,
for each message, whether it was new or a duplicate of one already spooled.

A large message never has to sit in memory whole: an edge streams it into a
`SpoolSink`, which keeps up to `inline_max` bytes in memory and beyond that
writes to a file in the spool blob store (named by its sha256, fsynced before
the row commits). Such a row has `raw` NULL; `raw_bytes` / `open_raw` read
either kind.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from storage.models import SpoolEntry


@dataclass(frozen=True)
class Stored:
    """A message already written to the spool blob store (see SpoolSink)."""

    sha256: str
    size: int
    head: bytes  # the first bytes, enough for the header block

    def __len__(self) -> int:
        return self.size


@dataclass(frozen=True)
class Incoming:
    raw: bytes | Stored
    source: str
    message_id: str = ""
    envelope_from: str = ""
    envelope_to: tuple[str, ...] = ()
    client_ip: str = ""
    helo: str = ""


@dataclass(frozen=True)
class Spooled:
    spool_id: int
    duplicate: bool


def dedupe_key(message_id: str, sha256: str) -> str:
    return hashlib.sha256(f"{message_id}\x00{sha256}".encode()).hexdigest()


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # PostgreSQL text takes neither NUL nor lone surrogates


def _clean(value: str) -> str:
    return _UNSTORABLE.sub("", value)[:998]


def _values(item: Incoming, now: datetime) -> dict:
    if isinstance(item.raw, Stored):
        digest, size, raw = item.raw.sha256, item.raw.size, None
    else:
        digest, size, raw = hashlib.sha256(item.raw).hexdigest(), len(item.raw), item.raw
    message_id = _clean(item.message_id)
    return dict(
        source=item.source, received_at=now, size=size, sha256=digest,
        message_id=message_id, dedupe_key=dedupe_key(message_id, digest),
        envelope_from=_clean(item.envelope_from), envelope_to=[_clean(a) for a in item.envelope_to], raw=raw,
        status="pending", error="", attempts=0, processed_at=None, ticket_id=None,
        client_ip=_clean(item.client_ip)[:64], helo=_clean(item.helo)[:255],
    )


def raw_bytes(blobs, entry: SpoolEntry) -> bytes:
    """The message's bytes, from the row or from the blob store."""
    if entry.raw is not None:
        return entry.raw
    cached = entry.__dict__.get("_raw_from_file")
    if cached is None:
        cached = blobs.get(entry.sha256)
        entry.__dict__["_raw_from_file"] = cached  # one read per processing, however many readers
    return cached


def open_raw(blobs, entry: SpoolEntry) -> BinaryIO:
    """A readable binary stream of the message, without loading a file-backed one whole."""
    if entry.raw is not None:
        return io.BytesIO(entry.raw)
    return open(blobs.path_for(entry.sha256), "rb")


def read_file(blobs, open_file, inline_max: int, chunk: int = 1024 * 1024) -> "bytes | Stored":
    """A one-message file's bytes (`open_file()` opens it), or, when it is large,
    a `Stored` copy in the blob store, read a chunk at a time."""
    with open_file() as fh:
        sink = SpoolSink(blobs, inline_max)
        try:
            while piece := fh.read(chunk):
                sink.write(piece)
            return sink.finish()
        except BaseException:
            sink.discard()
            raise


def _remove_old(files, older_than: float, keep=frozenset()) -> int:
    """Unlink the files among `files` not named in `keep` and untouched for `older_than` seconds."""
    cutoff = time.time() - older_than
    removed = 0
    for f in files:
        try:
            if f.name not in keep and f.is_file() and f.stat().st_mtime < cutoff:
                f.unlink()
                removed += 1
        except FileNotFoundError:
            pass
    return removed


def sweep_tmp(blobs, older_than: float = 3600.0) -> int:
    """Remove half-written files a crash left in the blob store's tmp/ (none is in use for an hour)."""
    tmp_dir = blobs.root / "tmp"
    return _remove_old(tmp_dir.iterdir(), older_than) if tmp_dir.is_dir() else 0


def sweep_orphans(blobs, db, older_than: float = 86400.0) -> int:
    """Remove spool blob files no spool row names, a day after they were written.

    Such a file is left when a message was streamed to disk but its spool row never
    committed (the database was down: the sender got 451 and will retry, and a retry
    within the day finds the same file by its hash). Called at start, before any edge
    can be writing one."""
    if not blobs.root.is_dir():
        return 0
    with db.session() as s:
        named = set(s.execute(select(SpoolEntry.sha256).where(SpoolEntry.raw.is_(None))).scalars())
    return _remove_old(blobs.root.glob("??/??/*"), older_than, keep=named)


class SpoolSink:
    """Collects one incoming message in chunks, in memory up to `inline_max` bytes,
    beyond that in a file of the blob store; memory stays at one chunk however big
    the message. `finish()` returns the bytes, or a `Stored` once the file is
    fsynced under its sha256 name; `discard()` removes a half-written file.
    """

    HEAD = 64 * 1024

    def __init__(self, blobs, inline_max: int) -> None:
        self.blobs = blobs
        self.inline_max = inline_max
        self.size = 0
        self._buf = bytearray()
        self._head = b""
        self._hash = hashlib.sha256()
        self._fh = None
        self._tmp: Path | None = None

    def write(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.size += len(chunk)
        if self._fh is None:
            self._buf += chunk
            if len(self._buf) <= self.inline_max:
                return
            self._roll()
            return
        if len(self._head) < self.HEAD:
            self._head += chunk[:self.HEAD - len(self._head)]
        self._hash.update(chunk)
        self._fh.write(chunk)

    def _roll(self) -> None:
        tmp_dir = self.blobs.root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        self._tmp = tmp_dir / f"in.{os.getpid()}.{id(self):x}.{os.urandom(4).hex()}"
        self._fh = open(self._tmp, "wb")
        self._head = bytes(self._buf[:self.HEAD])
        self._hash.update(self._buf)
        self._fh.write(self._buf)
        self._buf = bytearray()

    def finish(self) -> bytes | Stored:
        if self._fh is None:
            return bytes(self._buf)
        fh, tmp = self._fh, self._tmp
        self._fh = None
        fh.flush()
        os.fsync(fh.fileno())
        fh.close()
        digest = self._hash.hexdigest()
        self.blobs.adopt(tmp, digest)
        self._tmp = None
        return Stored(digest, self.size, self._head)

    def discard(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp = None
        self._buf = bytearray()


_INSERTS: dict[str, object] = {}


def _insert_statement(dialect: str):
    """INSERT .. ON CONFLICT (dedupe_key) DO NOTHING RETURNING dedupe_key, id, built once."""
    stmt = _INSERTS.get(dialect)
    if stmt is None:
        table = SpoolEntry.__table__
        insert = sqlite_insert if dialect == "sqlite" else pg_insert
        stmt = (insert(table).on_conflict_do_nothing(index_elements=[table.c.dedupe_key])
                .returning(table.c.dedupe_key, table.c.id))
        _INSERTS[dialect] = stmt
    return stmt


def add_many(conn: Connection, items: list[Incoming], now: datetime) -> list[Spooled]:
    """Insert new messages; duplicates (same Message-ID and content) point at the first copy.

    One multi-row INSERT ... ON CONFLICT (dedupe_key) DO NOTHING RETURNING for
    the batch, in Core rather than the ORM unit of work: SMTP clients wait on
    this. A key another process spooled first (or earlier) is simply not
    returned, and one indexed SELECT finds the row it belongs to.
    """
    rows = [_values(i, now) for i in items]
    fresh: dict[str, dict] = {}
    for r in rows:
        fresh.setdefault(r["dedupe_key"], r)
    new_ids = dict(conn.execute(_insert_statement(conn.dialect.name), list(fresh.values())).all()) if fresh else {}
    missing = [k for k in fresh if k not in new_ids]
    existing = dict(conn.execute(
        select(SpoolEntry.dedupe_key, SpoolEntry.id).where(SpoolEntry.dedupe_key.in_(missing))
    ).all()) if missing else {}
    result: list[Spooled] = []
    seen_new: set[str] = set()
    for r in rows:
        k = r["dedupe_key"]
        if k in new_ids and k not in seen_new:
            seen_new.add(k)
            result.append(Spooled(new_ids[k], duplicate=False))
        else:
            result.append(Spooled(new_ids[k] if k in new_ids else existing[k], duplicate=True))
    return result
