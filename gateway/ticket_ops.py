"""Small state changes on a ticket that several capabilities share.

Each records its event; none sends mail (callers queue what they owe).
"""

from __future__ import annotations

from gateway import outbox
from storage.models import Ticket

STATUSES = ("new", "open", "pending", "resolved", "closed")


def pause_clock(ticket: Ticket, now) -> None:
    if ticket.paused_at is None:
        ticket.paused_at = now


def resume_clock(ticket: Ticket, now) -> None:
    """Waiting on the customer does not count against the resolution deadline."""
    if ticket.paused_at is not None:
        paused = now - ticket.paused_at
        ticket.paused_seconds += int(paused.total_seconds())
        if ticket.resolution_due is not None:
            ticket.resolution_due += paused
        ticket.paused_at = None


def set_status(app, session, ticket: Ticket, new: str, *, actor: str, why: str = "") -> bool:
    """Move the ticket to `new`; returns False when it already was there."""
    if new not in STATUSES:
        raise ValueError(f"unknown status {new!r}; valid: {', '.join(STATUSES)}")
    old = ticket.status
    if old == new:
        return False
    now = app.now()
    if new == "pending":
        pause_clock(ticket, now)
    elif old == "pending":
        resume_clock(ticket, now)
    if new == "resolved":
        ticket.resolved_at = now
    if new == "closed":
        ticket.closed_at = now
        ticket.resolved_at = ticket.resolved_at or now
    if new in ("open", "pending") and old in ("resolved", "closed"):
        ticket.resolved_at = None
        ticket.closed_at = None
    ticket.status = new
    ticket.updated_at = now
    outbox.record(session, ticket, "status", now, f"{old} → {new}" + (f": {why}" if why else ""),
                  actor=actor, old=old, new=new)
    return True


def assign(app, session, ticket: Ticket, engineer: str, *, actor: str, why: str = "",
           owner_too: bool = True) -> None:
    """Make `engineer` the handler (and, by default, the owner)."""
    now = app.now()
    old_owner, old_handler = ticket.owner, ticket.handler
    ticket.handler = engineer
    if owner_too:
        ticket.owner = engineer
    ticket.updated_at = now
    outbox.record(session, ticket, "assigned", now,
                  f"handler {old_handler or '-'} → {engineer}" + (f" (owner {old_owner or '-'} → {engineer})" if owner_too else "")
                  + (f": {why}" if why else ""),
                  actor=actor, old_owner=old_owner, old_handler=old_handler, new=engineer, owner_too=owner_too)


def mark_first_response(app, ticket: Ticket, at=None) -> bool:
    """The first engineer reply to the customer satisfies the first-response SLA."""
    if ticket.first_responded_at is None:
        ticket.first_responded_at = at or app.now()
        return True
    return False
