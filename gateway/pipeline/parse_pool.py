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
WAIT_SECONDS = 0.05  # longest wait for a parse already running in the pool

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


def submit(app, entries) -> dict[int, Future]:
    """Start parsing these spool rows elsewhere; {spool id: future} for those handed out."""
    small = [e for e in entries if e.size <= MAX_BYTES and not large_mail.is_stored(e)]
    if len(small) < MIN_BATCH:
        return {}
    pool = _executor()
    if pool is None:
        return {}
    try:
        root = str(app.attachments.root)
        return {e.id: pool.submit(parse_ahead, spool_store.raw_bytes(app.spool_blobs, e), app.own_addresses, root)
                for e in small}
    except BrokenProcessPool:
        _discard_pool()
        return {}


def parse_ahead(raw: bytes, own_addresses: tuple[str, ...], attachments: str | None = None) -> tuple:
    """In a pool process: (the parsed email, the robot that sent it or None, {sha256: stage
    file} for its attachments when `attachments` names the attachment store's folder)."""
    email = parse_email(raw, own_addresses=own_addresses)
    staged = {}
    if attachments and email.attachments:
        store = AttachmentStore(Path(attachments))
        for att in email.attachments:
            if att.sha256 not in staged and (name := store.stage(att.sha256, att.content)):
                staged[att.sha256] = name
    return email, classify(email, own_addresses), staged


def discard(futures: dict[int, Future] | None) -> None:
    """The batch is over: remove the stage files its stored messages did not move into place,
    now for parses that are done, when they finish for those still running."""
    for fut in (futures or {}).values():
        if not fut.cancelled():
            fut.add_done_callback(_discard_one)


def _discard_one(fut: Future) -> None:
    if fut.cancelled() or fut.exception() is not None:
        return
    discard_staged(fut.result()[2].values())


def take(app, entry, futures: dict[int, Future] | None) -> tuple:
    """(The parsed email of this spool row, its robot, its stage files): from the pool if it
    was handed out, else parsed now, its robot then `UNCLASSIFIED` (the suspend handler asks)
    and no stage files."""
    fut = (futures or {}).get(entry.id)
    # Not started yet (the pool is still starting, or the store stage caught up with it):
    # parsing here costs less than waiting, and the pool goes on with the next ones. One
    # being parsed is waited for a moment (a parse takes about a millisecond), no longer.
    if fut is not None and fut.cancel():
        fut = None
    if fut is not None:
        try:
            return fut.result(timeout=WAIT_SECONDS)
        except TimeoutError:
            pass  # its process is not up yet: parsed here, the pool's result is dropped
        except BrokenProcessPool:
            _discard_pool()
    return parse_email(spool_store.raw_bytes(app.spool_blobs, entry), own_addresses=app.own_addresses), UNCLASSIFIED, {}
