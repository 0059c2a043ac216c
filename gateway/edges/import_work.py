"""What the import's parsing processes do (gateway/edges/importer.py runs them in a pool).

Owns the two per-message passes of an import, in whichever process runs them: the head scan
(parse_head and the content hash, for threading and dedupe) and the import's parse
(parsers.message.parse_history) with the attachment files written where the mail was parsed.
Both read the messages themselves from where the sources say they lie (import_sources.read_all).

Kept light on purpose: the pool's processes are spawned and import this module first, so it
imports the parsers and the attachment store (the routing engine when it first routes), never
the database or the app.
"""

from __future__ import annotations

import hashlib
import pickle
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from gateway.edges.import_rows import routed
from gateway.edges.import_sources import read_all
from parsers.message import parse_head, parse_history
from storage.attachments import AttachmentStore


_IO = None  # threads writing attachment files, in this process (_io)
_RULES = None  # the compiled routing rules, pickled, given once to each pool process (start)


def start(rules: bytes | None = None) -> None:
    """A pool process's start: the routing rules kept for parse_many (unpickled at the first
    routing: importing the routing engine takes longer than a whole scan task, so a process is
    ready for the head scan sooner); Ctrl-C (it reaches the whole process group) left to the
    importer, which stops between batches' transactions, instead of each printing a traceback."""
    global _RULES
    _RULES = rules
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _rules():
    global _RULES
    if isinstance(_RULES, bytes):
        _RULES = pickle.loads(_RULES)
    return _RULES


def _io() -> ThreadPoolExecutor:
    global _IO
    if _IO is None:
        _IO = ThreadPoolExecutor(4, thread_name_prefix="import-attachments")
    return _IO


def scan_many(wheres: list) -> tuple[list[tuple], float]:
    """(size, sha256, Message-ID, sender, every address, date, References, In-Reply-To, subject) of
    each message, read exactly as the full parse reads them (parsers.message.parse_head); plain
    tuples, the cheapest to send back from the pool. With the CPU seconds it took (the budget)."""
    cpu = time.process_time()
    out = []
    for raw in read_all(wheres):
        h = parse_head(raw)
        out.append((len(raw), hashlib.sha256(raw).hexdigest(), h.message_id, h.sender.email,
                    tuple(a.email for a in (h.sender,) + h.to + h.cc), h.date, h.references, h.in_reply_to,
                    h.subject))
    return out, time.process_time() - cpu


def parse_many(items: list, *, own: tuple, attachments: str, rules=None) -> tuple[list, float]:
    """(parsed, routing) of each (where, route_at) item. The import's parse (parse_history: what
    the live parse stores, without mail-parser's pass); the attachment files written here, on
    whichever core parsed the mail, so their content stays out of the writer's process and out
    of the pickle back to it; and, for the message the importer expects to open a ticket, the
    live rules' decision at `route_at` (the conversation's first date), as import_rows keeps it.
    With the CPU seconds it took."""
    cpu = time.process_time()
    writing: list = []
    rules = rules if rules is not None else _rules()
    out = []
    for (where, route_at), raw in zip(items, read_all([w for w, _ in items])):
        e = parse_history(raw, own_addresses=own)
        if e.attachments:
            store = AttachmentStore(Path(attachments))
            # written and fsynced here, before the writer's row names them: by threads, so that
            # parsing goes on while the disk syncs (a sync costs more than a parse)
            writing.extend(_io().submit(store.put, a.sha256, a.content) for a in e.attachments)
            e = replace(e, attachments=tuple(replace(a, content=b"") for a in e.attachments))
        decision = None
        if route_at is not None and rules is not None:
            from routing.engine import route  # here, not at the top: see start()

            decision = (route_at, routed(route(e, rules, recipients=tuple(a.email for a in e.to + e.cc),
                                               now=route_at)))
        out.append((e, decision))
    for w in writing:
        w.result()  # every file on disk before the task returns; an error fails the batch
    return out, time.process_time() - cpu
