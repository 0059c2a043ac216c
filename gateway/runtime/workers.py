"""Background workers of a running gateway.

`SpoolWriter` commits raw messages in groups: concurrent SMTP sessions hand it
their bytes and await `SpoolWriter.spool()`; one transaction (one fsync) serves them all. `Processor`
turns spooled rows into tickets, apart from the edges, so a slow message never
holds up a 250 reply.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading

from gateway.pipeline import process as pipeline
from storage.db import StorageUnavailable

log = logging.getLogger("supportgw.workers")


class SpoolWriter(threading.Thread):
    def __init__(self, app, on_spooled=None, max_batch: int = 256) -> None:
        super().__init__(name="spool-writer", daemon=True)
        self.app = app
        self.on_spooled = on_spooled
        self.max_batch = max_batch
        self._q: queue.Queue = queue.Queue()
        self._halt = threading.Event()

    async def spool(self, raw, source: pipeline.Source):
        """Spool from an event loop: resolves once the batch holding this message commits.

        The writer settles all of one loop's waiters of a batch with a single wake-up of
        that loop, instead of one cross-thread call per message.
        """
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        if self._halt.is_set():
            raise StorageUnavailable("gateway is shutting down")
        self._q.put((raw, source, _LoopWaiter(loop, fut)))
        return await fut

    def stop(self) -> None:
        self._halt.set()
        self._q.put(None)

    # After a write, keep the foreground flag this long for the next message: SMTP
    # clients send one message after another, and a processing worker slipping in
    # between would make the next one wait for a whole ticket's transaction.
    LINGER = 0.02

    def run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                break
            with self.app.db.foreground.held():
                while item is not None:
                    self._write(self._batch(item))
                    try:
                        item = self._q.get(timeout=self.LINGER)
                    except queue.Empty:
                        item = None
                        break
                    if item is None:
                        self._q.put(None)
                        break
        # fail whatever is still queued so no SMTP client waits forever
        left = []
        while True:
            try:
                item = self._q.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                left.append(item[2])
        err = StorageUnavailable("gateway is shutting down")
        _settle([(waiter, None, err) for waiter in left])

    def _batch(self, first) -> list:
        batch = [first]
        size = len(first[0])
        while len(batch) < self.max_batch and size < 64 * 1024 * 1024:
            try:
                nxt = self._q.get_nowait()
            except queue.Empty:
                break
            if nxt is None:
                self._q.put(None)
                break
            batch.append(nxt)
            size += len(nxt[0])
        return batch

    def _write(self, batch) -> None:
        try:
            results = pipeline.spool(self.app, [(raw, src) for raw, src, _ in batch])
        except Exception as exc:  # database down, disk full, locked: the senders must retry
            log.error("spool write failed for %d message(s): %s", len(batch), exc)
            err = exc if isinstance(exc, StorageUnavailable) else StorageUnavailable(str(exc))
            _settle([(fut, None, err) for _, _, fut in batch])
            return
        _settle([(fut, res, None) for (_, _, fut), res in zip(batch, results)])
        if self.on_spooled:
            self.on_spooled()


class _LoopWaiter:
    """An asyncio future waiting in another thread's loop for a spool result."""

    __slots__ = ("loop", "fut")

    def __init__(self, loop, fut) -> None:
        self.loop, self.fut = loop, fut


def _settle(outcomes) -> None:
    """Resolve waiters (`_LoopWaiter`s) with one wake-up of each event loop."""
    per_loop: dict = {}
    for waiter, res, exc in outcomes:
        per_loop.setdefault(waiter.loop, []).append((waiter.fut, res, exc))
    for loop, items in per_loop.items():
        try:
            loop.call_soon_threadsafe(_resolve, items)
        except RuntimeError:
            pass  # that loop is closed: its sessions are gone


def _resolve(items) -> None:
    for fut, res, exc in items:
        if fut.done():  # the session was cancelled meanwhile (client hung up)
            continue
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(res)


class LoopThread(threading.Thread):
    """A daemon thread that does a round of work, then sleeps until kicked or `interval` passes."""

    def __init__(self, name: str, interval: float) -> None:
        super().__init__(name=name, daemon=True)
        self.interval = interval
        self._wake = threading.Event()
        self._halt = threading.Event()

    def kick(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._halt.set()
        self._wake.set()

    def sleep(self) -> None:
        self._wake.wait(self.interval)
        self._wake.clear()


class Processor(LoopThread):
    def __init__(self, app, on_processed=None, interval: float = 2.0) -> None:
        super().__init__("processor", interval)
        self.app = app
        self.on_processed = on_processed

    def run(self) -> None:
        delay = 1.0
        while not self._halt.is_set():
            try:
                counts = pipeline.process_pending(self.app, per_message=True, parse_ahead=True)
                delay = 1.0
                if counts and self.on_processed:
                    self.on_processed()
            except Exception as exc:
                log.error("processing paused, retrying in %.0fs: %s", delay, exc)
                self._halt.wait(delay)
                delay = min(delay * 2, 60)
                continue
            self.sleep()
