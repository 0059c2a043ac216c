"""Parsing a batch ahead of its store stage, in other processes.

Parsing is CPU work that needs nothing from the database (parsers/ knows no
storage), while threading, routing and storing run one message after another
in the batch's transaction. So when a batch is read, its messages go to a small
process pool at once; the store stage takes each result when it reaches that
message, and on a machine with more than one core parsing costs it almost
nothing. The result is the same `ParsedEmail` (or the same exception, which
quarantines the message as before), with the robot that sent it, if one did
(`parsers.robots.classify`: pure work on the parsed mail, that the suspend
handler would otherwise do in the store stage), and its attachments already
written to stage files (`storage.attachments.AttachmentStore.stage`): creating and
fsyncing a file is the slowest step of storing one, and the store stage then only
renames it into place. Stage files of mail that was not stored are removed when
its batch ends (`discard`).

A message whose parse has not started when the store stage reaches it (the pool
is still starting, or parsing fell behind) is taken back and parsed in this
process: neither side waits for the other.

Small batches (a test, one SMTP message) and large messages are parsed in this
process: shipping them would cost more than it saves. If the pool dies, its
messages, and all later ones, are parsed here.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from gateway import large_mail
from parsers.message import parse_email
from parsers.robots import UNCLASSIFIED, classify
from storage import spool as spool_store
from storage.attachments import AttachmentStore, discard_staged

MIN_BATCH = 8  # below this the store stage would hardly wait for parsing anyway
MAX_BYTES = 1 << 20  # larger messages are parsed where their bytes already are
CHUNK = 10  # messages per task sent to the pool
WAIT_SECONDS = 0.1  # longest wait for a chunk already being parsed in the pool

log = logging.getLogger("supportgw.pipeline")

_pool: ProcessPoolExecutor | None = None
_pool_pid = 0
_broken = False  # a pool died in this process: parse here from now on rather than respawn in a loop


def _executor() -> ProcessPoolExecutor | None:
    global _pool, _pool_pid
    if _pool is not None and _pool_pid == os.getpid():
        return _pool
    if _broken:
        return None
    workers = min(4, (os.cpu_count() or 1) - 1)  # one core stays with the store stage
    if workers < 1:
        return None
    # spawn, not fork: the gateway has threads (edges, scheduler) that a fork would copy mid-work
    _pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                initializer=_follow_parent, initargs=(os.getpid(),))
    _pool_pid = os.getpid()
    return _pool


def _follow_parent(parent: int) -> None:
    """In a pool process: exit when the process that started the pool is gone. A worker
    of `supportgw run` killed or stopped without shutting its pool down would otherwise
    leave its parsers behind, one more with every restart."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _discard_pool() -> None:
    global _pool, _broken
    if not _broken:
        log.warning("parse pool died; parsing in the processing process from now on")
    _broken = True
    if _pool is not None:
        _pool.shutdown(wait=False, cancel_futures=True)
    _pool = None


def shutdown() -> None:
    """Stop this process's pool, if it has one. A process that ends without it (a
    multiprocessing child: the worker of `supportgw run`) would wait forever at its exit
    for pool processes that wait for work (multiprocessing joins its children before the
    pool's own exit hook could tell them to stop)."""
    global _pool
    if _pool is not None and _pool_pid == os.getpid():
        _pool.shutdown(wait=True, cancel_futures=True)
    _pool = None


def submit(app, entries) -> dict[int, tuple[Future, int]]:
    """Start parsing these spool rows elsewhere; {spool id: (the future of its chunk, its place
    in it)} for those handed out. They go in chunks of `CHUNK`, in spool order: one task per
    message cost this process a third of a millisecond a message in the pool's own threads
    (sending each, and taking each result back)."""
    small = [e for e in entries if e.size <= MAX_BYTES and not large_mail.is_stored(e)]
    if len(small) < MIN_BATCH:
        return {}
    pool = _executor()
    if pool is None:
        return {}
    try:
        root, own, handed = str(app.attachments.root), app.own_addresses, {}
        for i in range(0, len(small), CHUNK):
            chunk = small[i:i + CHUNK]
            fut = pool.submit(parse_chunk, [spool_store.raw_bytes(app.spool_blobs, e) for e in chunk], own, root)
            handed.update((e.id, (fut, n)) for n, e in enumerate(chunk))
        return handed
    except BrokenProcessPool:
        _discard_pool()
        return {}


def parse_chunk(raws: list[bytes], own_addresses: tuple[str, ...], attachments: str | None = None) -> list:
    """In a pool process: (True, `parse_ahead`'s answer) or (False, the exception it raised)
    for each message, in order: a message that cannot be parsed fails alone."""
    out = []
    for raw in raws:
        try:
            out.append((True, parse_ahead(raw, own_addresses, attachments)))
        except Exception as exc:  # the store stage raises it for that message, which quarantines it
            out.append((False, exc))
    return out


def parse_ahead(raw: bytes, own_addresses: tuple[str, ...], attachments: str | None = None) -> tuple:
    """(The parsed email, the robot that sent it or None, {sha256: stage file} for its
    attachments when `attachments` names the attachment store's folder)."""
    email = parse_email(raw, own_addresses=own_addresses)
    staged = {}
    if attachments and email.attachments:
        store = AttachmentStore(Path(attachments))
        for att in email.attachments:
            if att.sha256 not in staged and (name := store.stage(att.sha256, att.content)):
                staged[att.sha256] = name
    email.commands, email.asks_status  # answered here, not by the store stage (parsers.model)
    return email, classify(email, own_addresses), staged


def discard(handed: dict[int, tuple[Future, int]] | None) -> None:
    """The batch is over: remove the stage files its stored messages did not move into place,
    now for chunks that are done, when they finish for those still running."""
    futures = {id(fut): fut for fut, _ in (handed or {}).values()}
    for fut in futures.values():
        if not fut.cancelled():
            fut.add_done_callback(_discard_chunk)


def _discard_chunk(fut: Future) -> None:
    if fut.cancelled() or fut.exception() is not None:
        return
    for ok, got in fut.result():
        if ok:
            discard_staged(got[2].values())


def take(app, entry, handed: dict[int, tuple[Future, int]] | None) -> tuple:
    """(The parsed email of this spool row, its robot, its stage files): from the pool if it
    was handed out, else parsed now, its robot then `UNCLASSIFIED` (the suspend handler asks)
    and no stage files. A message the pool could not parse raises what parsing raised."""
    fut, n = (handed or {}).get(entry.id, (None, 0))
    # Not started yet (the pool is still starting, or the store stage caught up with it):
    # parsing here costs less than waiting, and the pool goes on with the next chunks (the
    # rest of this one is parsed here too). One being parsed is waited for a moment (a chunk
    # takes a few milliseconds), no longer.
    if fut is not None and fut.cancel():
        fut = None
    if fut is not None:
        try:
            ok, got = fut.result(timeout=WAIT_SECONDS)[n]
        except TimeoutError:
            pass  # its process is not up yet: parsed here, the pool's result is dropped
        except BrokenProcessPool:
            _discard_pool()
        except Exception:  # noqa: BLE001 - the chunk failed whole (an answer that would not pickle): parsed here
            pass
        else:
            if not ok:
                raise got
            return got
    return parse_email(spool_store.raw_bytes(app.spool_blobs, entry), own_addresses=app.own_addresses), UNCLASSIFIED, {}
