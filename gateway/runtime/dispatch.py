"""The outbox dispatcher: sends due rows, records every attempt, retries with
exponential backoff and jitter, and never sends a row again once it succeeded.

Rows are claimed before sending (`status='sending'` with a lease), with
`FOR UPDATE SKIP LOCKED` on PostgreSQL so several gateways share the work.
A claim whose holder died expires and the row is tried again.
"""

from __future__ import annotations

import logging
import random
import time
from datetime import timedelta

from sqlalchemy import case, or_, select, update

from gateway.desk import send_later
from gateway.leases import process_gone
from gateway import metrics
from gateway.outbox import message_bytes
from gateway.tokens import verp_address
from gateway.runtime.transports import PermanentFailure, TemporaryFailure, TransportUnavailable, make_transport
from gateway.runtime.workers import LoopThread
from gateway.handlers.bounce_handler import tell_owner
from storage.history import record_event
from storage.models import OutboxAttempt, OutboxRow, Ticket

log = logging.getLogger("supportgw.outbox")

CLAIM_SECONDS = 300
# "sending": claimed, the relay has not got it; "handing_over": recorded just before the final
# "." of DATA (or the Maildir write), so the relay may have it. Both are sent again after a
# crash (same Message-ID): only a kill after the relay's reply and before our commit duplicates.
IN_FLIGHT = ("sending", "handing_over")
DEAD_CLAIM_SWEEP_SECONDS = 30


def backoff(app, attempts: int) -> timedelta:
    base = app.config.outbound.backoff_base
    delay = min(base * (2 ** max(attempts - 1, 0)), 6 * 3600)
    return timedelta(seconds=delay * random.uniform(0.8, 1.2))


# Send order: acknowledgements first, then everything in the order it was queued. A new case
# queues its acknowledgement and several staff notifications; under load the customer's
# acknowledgement would otherwise wait behind every earlier case's notifications. An
# acknowledgement is the first mail of its ticket to its customer, so no customer mail of a
# ticket overtakes another (a relay still goes before the closure that follows it).
SEND_ORDER = (case((OutboxRow.kind == "acknowledgement", 0), else_=1), OutboxRow.id)


def claim_due(app, limit: int = 20) -> list[int]:
    now = app.now()
    due = or_(OutboxRow.status == "pending",
              OutboxRow.status.in_(IN_FLIGHT) & (OutboxRow.claimed_until < now))
    with app.db.write_lock(), app.db.session() as s:
        stmt = select(OutboxRow.id).where(due, OutboxRow.next_attempt_at <= now).order_by(*SEND_ORDER).limit(limit)
        if not app.db.is_sqlite:
            stmt = stmt.with_for_update(skip_locked=True)
        ids = list(s.execute(stmt).scalars())
        if not ids:
            return []
        # Conditional on still being due, so two SQLite processes cannot both claim a row.
        s.execute(update(OutboxRow).where(OutboxRow.id.in_(ids), due).values(
            status="sending", claimed_by=app.worker_id, claimed_until=now + timedelta(seconds=CLAIM_SECONDS)))
        return list(s.execute(select(OutboxRow.id).where(
            OutboxRow.id.in_(ids), OutboxRow.claimed_by == app.worker_id, OutboxRow.status == "sending")
            .order_by(*SEND_ORDER)).scalars())


def release_dead_claims(app) -> int:
    """Rows claimed by a process of this host that no longer runs (killed mid-send) are due again
    now rather than when their claim expires. Whether the relay took the interrupted mail is
    unknowable; sending it again (same Message-ID) is the at-least-once side of that choice."""
    host = app.worker_id.rpartition(":")[0]
    with app.db.session() as s:
        rows = s.execute(select(OutboxRow.id, OutboxRow.claimed_by, OutboxRow.status).where(
            OutboxRow.status.in_(IN_FLIGHT), OutboxRow.claimed_by.like(f"{host}:%"))).all()
        dead = [rid for rid, holder, _ in rows if process_gone(holder, app.worker_id)]
        maybe_sent = [rid for rid, holder, status in rows if rid in dead and status == "handing_over"]
        if dead:
            s.execute(update(OutboxRow).where(OutboxRow.id.in_(dead), OutboxRow.status.in_(IN_FLIGHT)).values(
                status="pending", claimed_by="", claimed_until=None))
            log.warning("outbox: released %d row(s) claimed by dead processes: %s", len(dead), dead)
        if maybe_sent:
            log.warning("outbox: %d of them were being handed over when their process died; sent again with "
                        "the same Message-ID, the relay may deliver them twice: %s", len(maybe_sent), maybe_sent)
        return len(dead)


def release_own_claims(app) -> int:
    """On a clean stop: rows this process claimed but did not send are due again at once."""
    with app.db.write_lock(), app.db.session() as s:
        n = s.execute(update(OutboxRow).where(OutboxRow.status.in_(IN_FLIGHT),
                                              OutboxRow.claimed_by == app.worker_id).values(
            status="pending", claimed_by="", claimed_until=None)).rowcount
    if n:
        log.info("outbox: handed back %d claimed row(s) on stop", n)
    return n


def _handing_over(app, row_id: int) -> None:
    """Committed just before the relay can have the mail (the final "." of DATA)."""
    with app.db.write_lock(), app.db.session() as s:
        s.execute(update(OutboxRow).where(OutboxRow.id == row_id, OutboxRow.status == "sending",
                                          OutboxRow.claimed_by == app.worker_id).values(status="handing_over"))


def _finish(app, row_id: int, *, ok: bool, temporary: bool, detail: str, counts: bool = True) -> None:
    """Record an attempt. `counts=False`: the relay could not be used at all (its OAuth
    token), not this mail's fault; it waits without using up its max_attempts."""
    now = app.now()
    with app.db.write_lock(), app.db.session() as s:
        row = s.get(OutboxRow, row_id)
        row.attempts += 1 if counts else 0
        s.add(OutboxAttempt(outbox_id=row_id, at=now, ok=ok, temporary=temporary, detail=detail[:2000]))
        row.claimed_by, row.claimed_until = "", None
        if not counts:
            row.status, row.last_error = "pending", detail[:2000]
            row.next_attempt_at = now + backoff(app, 2)
        elif ok:
            row.status, row.sent_at, row.last_error = "sent", now, ""
            send_later.on_sent(app, s, row)
        elif temporary and row.attempts < app.config.outbound.max_attempts:
            row.status, row.last_error = "pending", detail[:2000]
            row.next_attempt_at = now + backoff(app, row.attempts)
        else:
            row.status, row.last_error = "failed", detail[:2000]
            on_failed(app, s, row)
        kind, result = row.kind, {"sent": "sent", "pending": "retry"}.get(row.status, "failed")
    metrics.observe_delivery(kind, result)


def on_failed(app, session, row: OutboxRow) -> None:
    """Hook: a row failed for good; the ticket's handler (or owner) is told, in this transaction."""
    log.error("outbox %s to %s failed permanently: %s", row.id, row.to, row.last_error)
    if row.ticket_id is None:
        return
    ticket = session.get(Ticket, row.ticket_id)
    if ticket is None:
        return
    record_event(session, ticket, "delivery_failed", app.now(),
                 f"our {row.kind} to {', '.join(row.to)} failed after {row.attempts} attempt(s): {row.last_error}",
                 outbox_id=row.id, attempts=row.attempts)
    tell_owner(app, session, row, ticket, template="delivery_failed", status="",
               diagnostic=row.last_error, recipients=list(row.to))


def send_one(app, transport, row_id: int) -> bool:
    started = time.perf_counter()
    with app.db.session() as s:
        row = s.get(OutboxRow, row_id)
        if row is None or row.status != "sending" or row.claimed_by != app.worker_id:
            return False
        raw, rcpts = message_bytes(row, app.attachments), list(row.envelope_to)
        ticket = s.get(Ticket, row.ticket_id) if row.ticket_id is not None else None
        what = f"{row.kind} <{row.message_id}> to {', '.join(rcpts)}{' for ' + ticket.ref if ticket and ticket.ref else ''}"
        fields = {"message_id": row.message_id, "kind": row.kind, "ticket": ticket.ref if ticket and ticket.ref else "",
                  "outcome": "sent"}
    envelope_from = verp_address(app.config.gateway.domain, row_id)
    try:
        handover = {"on_handover": lambda: _handing_over(app, row_id)} \
            if getattr(transport, "handover_aware", False) else {}
        detail = transport.send(envelope_from, rcpts, raw, **handover)
    except TransportUnavailable as exc:
        log.warning("outbox %s: relay unavailable, kept for later: %s", row_id, exc)
        _finish(app, row_id, ok=False, temporary=True, detail=str(exc), counts=False)
        return False
    except TemporaryFailure as exc:
        log.warning("outbox %s: temporary failure, will retry: %s", row_id, exc)
        _finish(app, row_id, ok=False, temporary=True, detail=str(exc))
        return False
    except PermanentFailure as exc:
        _finish(app, row_id, ok=False, temporary=False, detail=str(exc))
        return False
    _finish(app, row_id, ok=True, temporary=False, detail=detail)
    log.info("mail out: %s: sent in %.0f ms [outbox %s]", what, (time.perf_counter() - started) * 1000, row_id,
             extra=fields)
    return True


def dispatch_due(app, transport=None, limit: int = 100, should_stop=None) -> int:
    """Send what is due now; returns the number sent. For `outbox send` and the loop."""
    own = transport is None
    transport = transport or make_transport(app)
    sent = 0
    try:
        while True:
            ids = claim_due(app, min(limit, 20))
            if not ids:
                break
            for rid in ids:
                if should_stop is not None and should_stop():
                    return sent  # the rest stay claimed; the stopping dispatcher hands them back
                sent += send_one(app, transport, rid)
            if len(ids) < 20:
                break
    finally:
        if own:
            transport.close()
    return sent


class Dispatcher(LoopThread):
    """Runs `dispatch_due` in a loop until stopped; `kick()` wakes it early."""

    def __init__(self, app) -> None:
        super().__init__("outbox", app.config.outbound.poll_interval)
        self.app = app

    def run(self) -> None:
        transport = make_transport(self.app)
        next_sweep = 0.0
        try:
            while not self._halt.is_set():
                # a gateway killed elsewhere on this host may leave claimed rows; take them
                # back now and then, rather than only at start (its worker may die later)
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + DEAD_CLAIM_SWEEP_SECONDS
                    try:
                        release_dead_claims(self.app)
                    except Exception:
                        log.exception("outbox: could not release dead claims; they expire by themselves")
                try:
                    # sending is background work too: on SQLite a busy SMTP edge goes first
                    self.app.db.foreground.wait_quiet()
                    dispatch_due(self.app, transport, should_stop=self._halt.is_set)
                except Exception:
                    log.exception("outbox dispatcher: will retry")
                self.sleep()
        finally:
            transport.close()
            try:
                release_own_claims(self.app)
            except Exception:
                log.exception("outbox: could not hand back claimed rows; their claims expire by themselves")
