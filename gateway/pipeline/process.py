"""The one pipeline every inbound email goes through, whatever its source.

    spool (raw bytes, committed)  ->  process: parse -> thread -> route -> store -> outbox

`spool()` is what an edge calls before acknowledging its source (SMTP 250,
IMAP \\Seen). `process_pending()` turns spooled rows into tickets; a message
that fails is quarantined with the reason and never blocks the rest.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, object_session

from gateway import large_mail, rules_sync
from gateway.pipeline import parse_pool
from gateway.desk.inbound import Inbound
from parsers import quick
from parsers.robots import UNCLASSIFIED
from storage import hot
from storage import spool as spool_store
from storage.db import try_again_later
from storage.models import Message, SpoolEntry
from storage.rows import read, update_later, write
from gateway.metrics import count_processed  # noqa: E402,I001  (counted when the transaction commits)

log = logging.getLogger("supportgw.pipeline")

# The handlers, in the order gateway/handlers/registry.py lists them (the customer's last).
from gateway.handlers import suspend  # noqa: E402
from gateway.handlers.registry import HANDLERS  # noqa: E402
from gateway.desk.inbound import Unprocessable  # noqa: E402  (a handler's verdict: quarantine)


@dataclass(frozen=True)
class Source:
    name: str  # "smtp", "imap:<mailbox>", "file"
    envelope_from: str = ""
    envelope_to: tuple[str, ...] = ()
    client_ip: str = ""  # the SMTP client's address and HELO name, when the listener received it
    helo: str = ""


def spool(app, raws: list[tuple[bytes | spool_store.Stored, Source]]) -> list[spool_store.Spooled]:
    """Commit raw messages durably (one transaction for the batch).

    A message may come as bytes or, when an edge streamed it to the blob store
    (storage.spool.SpoolSink), as a `Stored` reference to that file.
    """
    items = [spool_store.Incoming(raw=r, source=src.name,
                                  message_id=quick.message_id(r.head if isinstance(r, spool_store.Stored) else r),
                                  envelope_from=src.envelope_from, envelope_to=tuple(src.envelope_to),
                                  client_ip=src.client_ip, helo=src.helo)
             for r, src in raws]
    with app.db.write_lock(), app.db.connection() as conn:
        return spool_store.add_many(conn, items, app.now())


def _recipients(entry: SpoolEntry, email) -> list[str]:
    rcpts = [a.lower() for a in (entry.envelope_to or [])]
    for a in list(email.to) + list(email.cc):
        if a.email and a.email not in rcpts:
            rcpts.append(a.email)
    return rcpts


# The queries every message asks are built once, with named parameters: building a
# statement costs SQLAlchemy about twice what running it does (0.3 ms against 0.1 ms).
# Core statements (table columns), run by storage.rows.read: flushed first only for a pending
# change to what they read.
_M, _S = Message.__table__.c, SpoolEntry.__table__.c
# By Message-ID alone, the sender compared here: with the sender in the WHERE, SQLite (which
# keeps no statistics unless told to ANALYZE) searched by the sender's index instead, hundreds
# of rows for a regular customer, and ingest slowed by a third with a million messages stored.
_STORED = select(_M.sender_email).where(_M.message_id == bindparam("message_id"), _M.direction == "in")
_PARENT_PENDING = select(_S.id).where(
    _S.message_id.in_(bindparam("ids", expanding=True)), _S.status == "pending",
    _S.id < bindparam("spool_id")).limit(1)


def _already_stored(session: Session, email) -> bool:
    """The same message (Message-ID and sender) reached us by another path with other bytes."""
    if email.message_id.endswith("@supportgw.invalid"):
        return False
    sender = email.sender.email
    return any(row[0] == sender for row in read(session, _STORED, {"message_id": email.message_id},
                                                 flush_for=(Message,)).all())


def _parent_still_pending(session: Session, entry: SpoolEntry, email) -> bool:
    """Is a message this one replies to spooled earlier but not processed yet?

    With several workers a reply can be picked up while its parent is still being
    processed elsewhere; threading it now would open a second ticket. It waits a
    round instead. Only earlier spool rows count, so two messages naming each
    other can never wait on each other.
    """
    ids = list(dict.fromkeys(list(email.in_reply_to) + list(email.references)))[:50]
    if not ids:
        return False
    return read(session, _PARENT_PENDING, {"ids": ids, "spool_id": entry.id},
                flush_for=(SpoolEntry,)).first() is not None


class Isolate(Exception):
    """A message of a batch run without savepoints failed: the batch must roll back and run
    again with one savepoint per message, so that only that message is quarantined."""


def process_entry(app, session: Session, entry: SpoolEntry, parsed: dict | None = None, *,
                  isolated: bool = True) -> str:
    """Process one spooled message inside the caller's transaction.

    A message that fails is quarantined; only the database failing (locked, gone) raises,
    so that the caller's transaction rolls back and the message is tried again later.

    `isolated=False` runs it without its own savepoint (a savepoint costs SQLAlchemy
    about a tenth of a message): a failure then raises `Isolate` instead, and the caller
    runs the batch again isolated (`process_ids`), where the same failure quarantines it.

    The spool row itself is changed once, at the end, and written with everything else
    the message changed: its attempt count and outcome land together with them."""
    session.info.pop("ticket_references", None)
    started = time.perf_counter()
    # Over the size limit (an IMAP source cannot refuse it the way SMTP does with 552):
    # keep it, but for a person to look at rather than parse.
    limit = app.config.smtp.max_message_size
    if limit and entry.size > limit:
        error = (f"message too large: {entry.size} bytes, over smtp.max_message_size = {limit}. "
                 f"Look at it with 'supportgw quarantine show {entry.id}'; raise the limit and "
                 f"'supportgw quarantine retry {entry.id}', or 'supportgw quarantine drop {entry.id}'.")
        _report(session, entry, "quarantined", started, reason=f"{entry.size} bytes is over the size limit")
        return _settle(app, entry, "quarantined", error)
    ticket_id: int | None = None  # the ticket the message went to, kept on the spool row
    ticket, email, taken_by = None, None, ""
    try:
        with session.begin_nested() if isolated else nullcontext():
            if large_mail.is_stored(entry):  # streamed to a file: parsed without reading it whole
                email, robot, staged = large_mail.parse_stored(app, entry), UNCLASSIFIED, {}
            else:
                email, robot, staged = parse_pool.take(app, entry, parsed)  # parsed ahead in another process, or now
            if _parent_still_pending(session, entry, email):
                return "deferred"  # not an attempt: the row stays as it was
            if _already_stored(session, email):
                outcome = "duplicate"
            else:
                ib = Inbound(app=app, session=session, entry=entry, email=email,
                             recipients=_recipients(entry, email), robot=robot, staged=staged)
                outcome = None
                for handler in HANDLERS:
                    outcome = handler.handle(ib)
                    if outcome:
                        taken_by = handler.NAME
                        break
                ticket = ib.ticket or (ib.match.ticket if ib.match is not None else None)
                ticket_id = ticket.id if ticket is not None else None
                email = ib.email  # with the sender the handlers settled on
                if outcome != "suspended":
                    suspend.on_ticket(ib)
            _settle(app, entry, outcome if outcome in ("duplicate", "suspended") else "processed", "", ticket_id)
            if isolated:
                session.flush()  # in the savepoint: a row the database refuses quarantines this message only
    except Exception as exc:
        if not isolated and not try_again_later(exc):  # half its work is in the transaction
            raise Isolate(f"spool {entry.id}: {type(exc).__name__}: {exc}") from exc
        if isinstance(exc, Unprocessable):  # a verdict on the mail, not a failure: its reason is the whole story
            _report(session, entry, "quarantined", started, reason=str(exc))
            return _settle(app, entry, "quarantined", str(exc))
        # quarantine: a poison message must never stop the rest
        if try_again_later(exc):
            raise  # the database, not this message: the batch rolls back, its rows stay pending
        _report(session, entry, "quarantined", started, reason=f"{type(exc).__name__}: {exc}")
        return _settle(app, entry, "quarantined",
                       f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"[:8000])
    _report(session, entry, outcome or "processed", started, ticket=ticket, email=email, handler=taken_by)
    return outcome or "processed"


def _report(session: Session, entry: SpoolEntry, outcome: str, started: float, *, ticket=None, email=None,
            reason: str = "", handler: str = "") -> None:
    """One line per message for the log, kept until its transaction commits (`_log_reports`):
    a person watching `supportgw run` sees each mail arrive, and only what really happened.
    Its facts go along as fields too, for `[log] format = "json"` (gateway.logs)."""
    ms = (time.perf_counter() - started) * 1000
    sender = (email.sender.email if email is not None else "") or entry.envelope_from or "?"
    mid = f"<{entry.message_id}>" if entry.message_id else "(no Message-ID)"
    text = (f"mail in: {entry.source} {mid} from {sender}: {outcome}"
            f"{' ' + ticket.ref if ticket is not None and ticket.ref else ''}"
            f"{' (' + reason.splitlines()[0][:300] + ')' if reason else ''} in {ms:.0f} ms [spool {entry.id}]")
    fields = {"source": entry.source, "message_id": entry.message_id or "", "outcome": outcome,
              "ticket": ticket.ref if ticket is not None and ticket.ref else "", "handler": handler}
    level = logging.WARNING if outcome == "quarantined" else logging.INFO
    session.info.setdefault("mail_log", []).append((level, text, fields))


def _log_reports(session: Session) -> None:
    for level, text, fields in session.info.pop("mail_log", ()):
        log.log(level, text, extra=fields)


def _settle(app, entry: SpoolEntry, status: str, error: str, ticket_id: int | None = None) -> str:
    """The spool row's outcome, its attempt count and its ticket: one UPDATE, kept with the
    session's appended rows (storage.rows.update_later) and written with them, inside the
    message's savepoint or transaction, so it commits or rolls back with everything the message
    changed. The loaded object is left as it was: a rolled-back attempt counts nothing."""
    now = app.now()
    values = {"status": status, "error": error, "attempts": entry.attempts + 1, "processed_at": now}
    if ticket_id is not None:
        values["ticket_id"] = ticket_id
    update_later(object_session(entry), SpoolEntry, entry.id, **values)
    count_processed(entry, status, now)
    return status


# A background worker (`per_message`) holds SQLite's write lock this long at most before it
# commits and lets the edges in; a message that takes longer is still done in one go.
TURN_SECONDS = 0.25


def process_ids(app, ids: list[int], *, per_message: bool = False, parse_ahead: bool = False) -> Counter:
    """Process these spool rows in one transaction (see `_process_group`).

    `per_message` is for a background worker: it commits in short turns instead
    (`TURN_SECONDS`, and at once when the SMTP edge is waiting to spool), so that it never
    holds SQLite's single write lock for long while an edge waits, and before each
    turn it lets a busy edge go first (storage.db._ForegroundFlag). Every message is
    still committed before it counts as done, with its spool row settled in the same
    transaction; a crash loses only the turn that had not committed, which runs again.

    `parse_ahead` parses the batch in a process pool while the store stage runs
    (gateway/pipeline/parse_pool.py). Only a program that owns its process should ask for
    it (the `supportgw ingest` command, `supportgw run`'s worker, the benchmarks): spawned
    processes import the caller's main module again, which a script without an
    `if __name__ == "__main__":` guard would run a second time.
    """
    counts: Counter = Counter()
    if not ids:
        return counts
    rules_sync.follow(app)  # route with the rules generation every other process applies
    if not per_message:
        with app.db.write_lock(), app.db.session() as s:
            entries = _pending_entries(app, s, ids)
            parsed = parse_pool.submit(app, entries) if parse_ahead else None
            try:
                counts.update(_process_group(app, s, entries, parsed)[0])
            finally:
                parse_pool.discard(parsed)
        _log_reports(s)  # committed: now it happened
        return counts
    parsed = None
    if parse_ahead:  # the rows' bytes, read without the write lock, go to the pool at once
        with app.db.session() as s:
            parsed = parse_pool.submit(app, _pending_entries(app, s, ids, lock=False))
    try:
        _process_turns(app, ids, parsed, counts)
    finally:
        parse_pool.discard(parsed)
    return counts


def _process_turns(app, ids: list[int], parsed, counts: Counter) -> None:
    left = list(ids)
    while left:
        app.db.foreground.wait_quiet()
        turn_ends = time.monotonic() + TURN_SECONDS

        def turn_over() -> bool:
            return time.monotonic() >= turn_ends or not app.db.foreground.wait_quiet(0)

        with app.db.write_lock(), app.db.session() as s:
            done, last = _process_group(app, s, _pending_entries(app, s, left), parsed, stop=turn_over)
            counts.update(done)
        _log_reports(s)  # committed: now it happened
        left = [i for i in left if last is not None and i > last]


def _pending_entries(app, session: Session, ids: list[int], *, lock: bool = True) -> list[SpoolEntry]:
    stmt = (select(SpoolEntry).where(SpoolEntry.id.in_(ids), SpoolEntry.status == "pending")
            .order_by(SpoolEntry.id))
    if lock and not app.db.is_sqlite:
        stmt = stmt.with_for_update(skip_locked=True)
    return list(session.execute(stmt).scalars())


def _process_group(app, s: Session, entries: list[SpoolEntry], parsed, stop=None) -> tuple[Counter, int | None]:
    """One transaction's messages, in spool order, until `stop()` says the turn is over:
    (outcome counts, the spool id of the last one processed when the turn ended before
    them all, else None).

    They run first without a savepoint each; if one of them fails, all of them roll back
    and run again with one savepoint each, so that the failure quarantines that message
    alone (what `process_entry` does isolated)."""
    counts: Counter = Counter()
    n = len(entries)
    if n > 1:
        hot.begin_writing(s)
        try:
            last = None
            for i, entry in enumerate(entries):
                counts[process_entry(app, s, entry, parsed, isolated=False)] += 1
                if stop is not None and i + 1 < n and stop():
                    last = entry.id
                    break
            s.flush()  # a row the database refuses shows here, while the batch can still run again,
            write(s)  # appended rows too (the commit would write them past the point of running again)
            return counts, last
        except Exception as exc:
            if try_again_later(exc):
                raise
            log.info("batch of %d runs again message by message: %s", len(entries), exc)
            s.rollback()
            s.info.pop("mail_log", None)
            s.info.pop("ticket_references", None)
            entries = _pending_entries(app, s, [e.id for e in entries])
            counts = Counter()
    for i, entry in enumerate(entries):
        counts[process_entry(app, s, entry, parsed)] += 1
        if stop is not None and i + 1 < len(entries) and stop():
            return counts, entry.id
    return counts, None


def pending_ids(app, limit: int = 200) -> list[int]:
    with app.db.session() as s:
        return list(s.execute(select(SpoolEntry.id).where(SpoolEntry.status == "pending")
                              .order_by(SpoolEntry.id).limit(limit)).scalars())


# The outcome counts people read (ingest --json, the processing log), in this order; the
# other outcomes (bounced, engineer_reply, ...) follow them.
SUMMARY = (("tickets_created", ("created",)), ("threaded", ("threaded",)),
           ("duplicates", ("duplicates", "duplicate")), ("quarantined", ("quarantined",)),
           ("suspended", ("suspended",)), ("history", ("history",)))


def summary(counts: Counter) -> dict:
    out = {name: sum(counts[k] for k in keys) for name, keys in SUMMARY}
    named = {k for _, keys in SUMMARY for k in keys}
    out.update({k: v for k, v in counts.items() if k not in named and k != "ingested"})
    return out


def process_pending(app, batch: int = 50, *, per_message: bool = False, parse_ahead: bool = False) -> Counter:
    total: Counter = Counter()
    while True:
        ids = pending_ids(app, batch)
        if not ids:
            if total:
                log.info("processed: %s", ", ".join(f"{k} {v}" for k, v in summary(total).items()))
            return total
        c = process_ids(app, ids, per_message=per_message, parse_ahead=parse_ahead)
        total.update(c)
        if not c or set(c) == {"deferred"}:  # nothing more can move this round
            log.info("processed: %s", ", ".join(f"{k} {v}" for k, v in summary(total).items()))
            return total


def ingest(app, raws: list[tuple[bytes, Source]], *, parse_ahead: bool = False) -> Counter:
    """Spool and process a batch now (file import, tests). Returns outcome counts.

    `parse_ahead`: parse the batch in other processes meanwhile (see process_ids)."""
    counts: Counter = Counter()
    spooled = spool(app, raws)
    fresh = [sp.spool_id for sp in spooled if not sp.duplicate]
    counts["duplicates"] += sum(1 for sp in spooled if sp.duplicate)
    counts.update(process_ids(app, fresh, parse_ahead=parse_ahead))
    return counts
