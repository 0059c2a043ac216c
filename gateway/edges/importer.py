"""Bringing a team's history in (`supportgw import`): a bulk writer over the same models.

Owns turning a history (gateway/edges/import_sources.py) into tickets that look as if
the gateway had been there all along, without writing to anyone:

1. scan, on every core (gateway/edges/import_work.py; here while the pool starts):
   every message's headers (parsers.message.parse_head, read exactly as the full
   parse reads them), its content hash, and whether the database already has it
   (same spool dedupe key, or the same Message-ID and sender);
2. thread: parsers.threader rebuilds the conversations over the whole history,
   the messages already stored included, so a resumed run or a history that
   overlaps live mail joins the tickets that exist (by thread_ids);
3. write, a batch of whole conversations per transaction (250 messages by
   default), two batches parsed ahead on every core: the import's parse
   (parsers.message.parse_history: what the live parser stores, without
   mail-parser's pass), attachment files written and fsynced there, and the
   live rules' routing (routing.engine.route) of each conversation's first
   customer message; here the rows are made before the write lock is taken,
   and under it only tickets, spool rows, messages, attachments, thread ids,
   participants and events are inserted, as bulk writes (storage/bulk.py:
   COPY on PostgreSQL, one executemany per table on SQLite).

The pool's processes read the files themselves (FileSource.where): only their
results cross the pipe. Where each stage's time goes is in the counts (t_*
seconds of this process) and in bench/import_rate.py's budget.

Sends nothing, ever: this module writes no outbox row, sets no SLA deadline and
calls nothing that notifies. Dates are the mail's own. Mail from one of our
addresses or an engineer's is ours, stored as outbound. A conversation quiet for
longer than `close_after` is closed, the rest open (never pending: see import_rows).

Resumable: a batch commits whole, each message with its spool row (status
"imported", so no worker ever processes it live); running the same command
again skips what is there and finishes the rest.

Where live mail is strict and a history cannot be (it has no reply tokens), the
rules are relaxed: an engineer is recognised by From alone; anyone whose mail
names the conversation's Message-IDs joins it (as cc), never a stranger;
subjects join a reference-less "Re:" to the same correspondent's conversation
(parsers.threader); an old mail never reopens or links tickets by the reopen window.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import time
from collections import Counter, deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from parsers.threader import Item, conversations
from storage.models import AttachmentRow, Event, Message, Participant, SpoolEntry, ThreadId, Ticket
from storage.queries import messages, participants, spool as spool_rows, threads
from gateway.edges.import_rows import conversation_rows, routed
from gateway.edges import import_work
from gateway.edges.import_work import parse_many, scan_many
from storage.bulk import insert_rows
from storage.spool import dedupe_key

CHUNK = 500  # ids per IN (...) query
SCAN_CHUNK = 200  # messages per header-scan task of the pool


@dataclass
class Found:
    """One message of the history, as the scan saw it."""

    src: int
    key: object
    sha: str
    dedupe: str
    size: int
    message_id: str
    sender: str
    people: frozenset
    date: datetime | None
    refs: tuple
    irt: tuple
    subject: str
    stored: bool = False  # the database has it already


def _chunks(seq, n=CHUNK):
    seq = list(seq)
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


class Importer:
    def __init__(self, app, sources, *, since=None, until=None, close_after=timedelta(days=30),
                 batch: int = 250, workers: int | None = None, progress=None, on_planned=None,
                 on_scanned=None) -> None:
        self.app, self.sources = app, sources
        self.since, self.until, self.close_after, self.batch = since, until, close_after, batch
        self.workers = workers if workers is not None else (os.cpu_count() or 1)
        self.progress = progress  # called with the number of messages just written
        self.on_planned = on_planned  # called once with the number of messages there are to write
        self.on_scanned = on_scanned  # called with the number of messages whose headers were just read
        self.counts: Counter = Counter()
        self.engineers = app.engineer_addresses()
        self.ref_prefix = app.config.gateway.ref_prefix
        self._ours: dict[str, bool] = {}
        self._warm: list = []  # the pool's start-up tasks
        self._routes: dict = {}  # key: (date, routing) the pool computed for the batch being written

    def ours(self, address: str) -> bool:
        known = self._ours.get(address)
        if known is None:  # asked for every address of every message: a history has few of them
            known = self._ours[address] = address in self.engineers or self.app.is_own_address(address)
        return known

    # ---------------------------------------------------------------- 1. scan

    def _heads(self, pool):
        """(source index, key, size, sha256, head) of every message, in order. The heads are read
        on every core: the pool's processes read the files themselves (FileSource.where), so
        only their small results cross the pipe; an IMAP folder's bytes are fetched here and
        shipped. At most a few tasks are in flight, so a history of any size is never in memory."""
        pending: deque = deque()
        window = 4 * max(1, self.workers)
        for si, src in enumerate(self.sources):
            keys = src.keys()
            for i in range(0, len(keys), SCAN_CHUNK):
                part = keys[i:i + SCAN_CHUNK]
                t = time.perf_counter()
                if hasattr(src, "where"):
                    wheres = [src.where(k) for k in part]
                elif hasattr(src, "get_many"):
                    got = src.get_many(part)
                    wheres = [got[k] for k in part]
                else:
                    wheres = [src.get(k) for k in part]
                self.counts["t_read"] += time.perf_counter() - t
                if pool is not None and all(f.done() for f in self._warm):
                    job = pool.submit(scan_many, wheres)
                else:
                    job = scan_many(wheres)
                    self.counts["scanned_here"] += len(wheres)
                pending.append((si, part, job))
                while len(pending) > (window if pool is not None else 0):
                    yield from self._scanned(*pending.popleft())
        while pending:
            yield from self._scanned(*pending.popleft())

    def _scanned(self, si, part, job):
        t = time.perf_counter()
        heads, cpu = job.result() if hasattr(job, "result") else job
        self.counts["t_pool_cpu" if hasattr(job, "result") else "t_scan_here"] += cpu
        self.counts["t_scan_wait"] += time.perf_counter() - t
        for key, head in zip(part, heads):
            yield (si, key) + head
        if self.on_scanned:
            self.on_scanned(len(part))

    def scan(self, pool=None) -> list[Found]:
        found: list[Found] = []
        keys_seen: set[str] = set()
        ids_seen: set[tuple[str, str]] = set()
        for si, key, size, sha, message_id, sender, emails, date, refs, irt, subject in self._heads(pool):
            self.counts["scanned"] += 1
            dk = dedupe_key(message_id, sha)
            pair = (message_id, sender)
            if dk in keys_seen or (pair in ids_seen and not message_id.endswith("@supportgw.invalid")):
                self.counts["duplicates"] += 1  # the same mail twice (an inbox copy of a Sent mail...)
                continue
            if date is None and hasattr(self.sources[si], "delivered"):
                date = self.sources[si].delivered(key)  # no Date header: when it was delivered
            if date is not None and ((self.since and date < self.since) or (self.until and date >= self.until)):
                self.counts["outside_dates"] += 1
                continue
            keys_seen.add(dk)
            ids_seen.add(pair)
            # the customers in it: our own addresses are in every conversation and link none
            people = frozenset(a for a in emails if a and not self.ours(a))
            found.append(Found(si, key, sha, dk, size, message_id, sender, people, date, refs, irt, subject))
        self._mark_stored(found)
        return found

    def _mark_stored(self, found: list[Found]) -> None:
        with self.app.db.session() as s:
            have: set = set()
            for part in _chunks([f.dedupe for f in found]):
                have.update(spool_rows.known_dedupe_keys(s, part))
            pairs: set = set()
            for part in _chunks({f.message_id for f in found if not f.message_id.endswith("@supportgw.invalid")}):
                pairs.update(messages.senders_of(s, part))
        for f in found:
            if f.dedupe in have or (f.message_id, f.sender) in pairs:
                f.stored = True
                self.counts["already_imported"] += 1

    # ---------------------------------------------------------------- 2. thread

    def thread(self, found: list[Found]):
        items = [Item(key=i, message_id=f.message_id, in_reply_to=f.irt, references=f.refs, subject=f.subject,
                      date=f.date, people=f.people) for i, f in enumerate(found)]
        convs = conversations(items)
        self.counts["conversations"] = len(convs)
        self.counts["joined_by_subject"] = sum(len(c.by_subject) for c in convs)
        return convs

    # ---------------------------------------------------------------- 3. write

    def run(self) -> Counter:
        started, cpu = time.monotonic(), time.process_time()
        pool = (ProcessPoolExecutor(self.workers, mp_context=_pool_context(), initializer=import_work.start,
                                    initargs=(pickle.dumps(self.app.rules.current),))
                if self.workers > 1 else None)
        # start them now; until they are up (a second or more on a busy machine) the scan reads here
        self._warm = [pool.submit(int) for _ in range(self.workers)] if pool is not None else []
        try:
            counts = self._run(pool, started)
        except BaseException:
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
            raise
        if pool is not None:
            pool.shutdown()
        counts["t_cpu"] = round(time.process_time() - cpu, 3)  # this process's CPU seconds
        return counts

    def _run(self, pool, started) -> Counter:
        found = self.scan(pool)
        t = time.perf_counter()
        convs = self.thread(found)
        self.counts["t_thread"] += time.perf_counter() - t
        self.counts["scan_seconds"] = round(time.monotonic() - started, 2)
        batches, cur, size = [], [], 0
        for c in convs:
            todo = sum(1 for k in c.keys if not found[k].stored)
            if not todo:
                continue
            cur.append(c)
            size += todo
            if size >= self.batch:
                batches.append(cur)
                cur, size = [], 0
        if cur:
            batches.append(cur)
        if self.on_planned:
            self.on_planned(sum(1 for f in found if not f.stored))
        parse = partial(parse_many, own=self.app.own_addresses, attachments=str(self.app.attachments.root),
                        rules=None if pool is not None else self.app.rules.current)
        # two batches parsed ahead: the pool parses while this process plans and writes
        ahead = deque(self._parse_async(pool, parse, found, b) for b in batches[:2])
        for i, b in enumerate(batches):
            keys, raws, jobs = ahead.popleft()
            if i + 2 < len(batches):
                ahead.append(self._parse_async(pool, parse, found, batches[i + 2]))
            t = time.perf_counter()
            results = []
            for j in jobs:
                got, cpu = j.result() if hasattr(j, "result") else j
                results.extend(got)
                self.counts["t_pool_cpu" if hasattr(j, "result") else "t_parse_here"] += cpu
            self.counts["t_parse_wait"] += time.perf_counter() - t
            self._routes = {k: d for k, (_, d) in zip(keys, results) if d is not None}
            self._write(found, b, {k: e for k, (e, _) in zip(keys, results)}, dict(zip(keys, raws)))
        self.counts["seconds"] = round(time.monotonic() - started, 2)
        for k in [k for k in self.counts if k.startswith("t_")]:
            self.counts[k] = round(self.counts[k], 3)
        return self.counts

    def _parse_async(self, pool, parse, found, batch):
        """(keys, raws, parse jobs) of one batch: the messages' bytes are read here for their spool
        rows; the pool's processes read them again themselves where the source allows."""
        keys = [k for c in batch for k in c.keys if not found[k].stored]
        t = time.perf_counter()
        raws = self._raws(found, keys)
        route_at = {}
        for c in batch:  # the message that will open the conversation's ticket, routed where it is parsed
            todo = [k for k in c.keys if not found[k].stored]
            dates = [found[k].date for k in c.keys if found[k].date is not None]
            if dates:  # (undated: routed at the moment of writing, by the writer)
                root = next((k for k in todo if not self.ours(found[k].sender)), todo[0])
                route_at[root] = min(dates)
        items = [(self.sources[found[k].src].where(found[k].key) if hasattr(self.sources[found[k].src], "where")
                  else raw, route_at.get(k)) for k, raw in zip(keys, raws)]
        self.counts["t_read"] += time.perf_counter() - t
        if pool is None:
            return keys, raws, [parse(items)]
        n = max(8, -(-len(items) // (self.workers * 4)))
        return keys, raws, [pool.submit(parse, items[i:i + n]) for i in range(0, len(items), n)]

    def routed(self, key, email, first) -> dict:
        """The routing of the conversation whose ticket message `key` opens, at `first`: as the pool
        computed it when it guessed this root (the first customer message), else here."""
        got = self._routes.get(key)
        if got is not None and got[0] == first:
            return got[1]
        self.counts["routed_by_writer"] += 1
        return routed(self.app.route(email, recipients=tuple(a.email for a in email.to + email.cc), now=first))

    def _raws(self, found, keys) -> list[bytes]:
        out: dict = {}
        by_src: dict = {}
        for k in keys:
            by_src.setdefault(found[k].src, []).append(k)
        for si, ks in by_src.items():
            src = self.sources[si]
            if hasattr(src, "get_many"):
                got = src.get_many([found[k].key for k in ks])
                out.update({k: got[found[k].key] for k in ks})
            else:
                out.update({k: src.get(found[k].key) for k in ks})
        return [out[k] for k in keys]

    def _existing_tickets(self, s, batch, found) -> tuple[dict[int, int], set]:
        """({conversation index in batch: ticket id} for conversations the database already has,
        the (Message-ID, ticket id) thread rows there are)."""
        want: dict[str, int] = {}
        for ci, c in enumerate(batch):
            for k in c.keys:
                f = found[k]
                for mid in (f.message_id,) + f.refs + f.irt:
                    want.setdefault(mid, ci)
        out: dict[int, int] = {}
        rows: set = set()
        for part in _chunks(want):
            for mid, tid in threads.tickets_of(s, list(part)):
                out.setdefault(want[mid], tid)
                rows.add((mid, tid))
        return out, rows

    def _plans(self, batch, found, parsed, raws, existing, now) -> list[dict]:
        return [conversation_rows(self, c, found, parsed, raws, existing.get(ci), now) for ci, c in enumerate(batch)]

    def _write(self, found, batch, parsed: dict, raws: dict) -> None:
        """One batch in one transaction. Its rows are made (routing, events) before the write
        lock is taken, so on SQLite live mail waits only for the inserts; the conversations'
        tickets are looked up again under the lock, and made again in the rare case live mail
        opened one in between."""
        app, now = self.app, self.app.now()
        t = time.perf_counter()
        with app.db.session() as s:
            existing, known = self._existing_tickets(s, batch, found)
        plans = self._plans(batch, found, parsed, raws, existing, now)
        self.counts["t_plan"] += time.perf_counter() - t
        t = time.perf_counter()
        with app.db.write_lock(), app.db.session() as s:
            again, known = self._existing_tickets(s, batch, found)
            if again != existing:
                plans = self._plans(batch, found, parsed, raws, again, now)
            new = self._insert(s, plans, known)
        held = time.perf_counter() - t
        self.counts["t_write"] += held
        self.counts["t_write_max"] = max(self.counts["t_write_max"], held)
        self.counts["transactions"] += 1
        msgs = [m for p in plans for m in p["messages"]]
        self.counts["imported"] += len(msgs)
        self.counts["outbound"] += sum(1 for m in msgs if m["row"]["direction"] == "out")
        self.counts["tickets_created"] += len(new)
        self.counts["threaded_into_existing"] += sum(len(p["messages"]) for p in plans if p["ticket"] is None)
        for p in new:
            self.counts[p["ticket"]["status"]] += 1
        if self.progress:
            self.progress(len(msgs))

    def _insert(self, s, plans, known) -> list[dict]:
        """Every row of `plans`, as bulk writes (storage/bulk.py); the plans of new tickets."""
        new = [p for p in plans if p["ticket_id"] is None]
        if new:
            ids = insert_rows(s, Ticket, [p["ticket"] for p in new], ids=True,
                              by_id={"ref": lambda i: f"{self.ref_prefix}-{i:06d}"})
            for p, tid in zip(new, ids):
                p["ticket_id"] = tid
        msgs = [(p, m) for p in plans for m in p["messages"]]
        spool_ids = insert_rows(s, SpoolEntry, [dict(m["spool"], ticket_id=p["ticket_id"]) for p, m in msgs],
                                ids=True)
        msg_ids = insert_rows(s, Message, [dict(m["row"], ticket_id=p["ticket_id"], spool_id=sid)
                                           for (p, m), sid in zip(msgs, spool_ids)], ids=True)
        atts = [dict(a, message_id=mid) for (p, m), mid in zip(msgs, msg_ids) for a in m["attachments"]]
        insert_rows(s, AttachmentRow, atts)
        tids = []
        for p in plans:  # one row per (Message-ID, ticket): two mails may share an id (a broken client)
            for t in p["thread_ids"]:
                if (t["message_id"], p["ticket_id"]) not in known:
                    known.add((t["message_id"], p["ticket_id"]))
                    tids.append(dict(t, ticket_id=p["ticket_id"]))
        insert_rows(s, ThreadId, tids)
        insert_rows(s, Participant, self._new_participants(s, plans))
        refs = {p["ticket_id"]: f"{self.ref_prefix}-{p['ticket_id']:06d}" for p in new}
        events = [dict(e, ticket_id=p["ticket_id"], detail=e["detail"].replace("{ref}", refs.get(p["ticket_id"], "")))
                  for p in plans for e in p["events"]]
        insert_rows(s, Event, events)
        old = [p for p in plans if p["ticket"] is None and p["last"] is not None]
        for p in old:  # a ticket the database had: its last activity may move on
            t = s.get(Ticket, p["ticket_id"])
            if t is not None and (t.updated_at is None or p["last"] > t.updated_at):
                t.updated_at = p["last"]
        return new


    @staticmethod
    def _new_participants(s, plans) -> list[dict]:
        """The plans' participants, each (ticket, address) once: on a ticket the database had,
        whoever is on it already (a requester, an earlier CC) is not added again."""
        on: dict[int, set[str]] = {}
        for p in plans:
            if p["ticket"] is None and p["ticket_id"] not in on:
                t = s.get(Ticket, p["ticket_id"])
                on[p["ticket_id"]] = set(participants.addresses(s, p["ticket_id"])) | (
                    {t.requester_email} if t is not None else set())
        parts, seen = [], set()
        for p in plans:
            for x in p["participants"]:
                key = (p["ticket_id"], x["email"], x["role"])
                if key in seen or x["email"] in on.get(p["ticket_id"], ()):
                    continue
                seen.add(key)
                parts.append(dict(x, ticket_id=p["ticket_id"]))
        return parts


def _pool_context():
    """Forked from a clean server, not from this process (it holds database connections and
    maybe threads) nor spawned one by one: the server imports gateway/edges/import_work.py
    and the routing engine once (the parsers, no database), and each pool process is a fork of
    it, ready at once. Spawning cost each process a second of imports, as long as parsing a
    thousand messages."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["gateway.edges.import_work", "routing.engine"])
    return ctx
