"""Small state changes on a ticket that several capabilities share.

Each records its event; none sends mail (callers queue what they owe).
"""

from __future__ import annotations


from storage.history import record_event
from storage.models import Ticket
from storage.queries import messages

STATUSES = ("new", "open", "pending", "resolved", "closed")


def pause_clock(ticket: Ticket, now) -> None:
    if ticket.paused_at is None:
        ticket.paused_at = now


def sla_terms(app, ticket: Ticket):
    """The SLA terms (routing.compiler.SlaTerms) the ticket counts in; None when the rules lack them."""
    cfg = app.rules.current
    try:
        return cfg.sla_for(ticket.priority, ticket.customer_tier or cfg.defaults.customer_tier)
    except (KeyError, AttributeError):
        return None


def sla_calendar(app, ticket: Ticket):
    """The business calendar of the ticket's SLA, or None when it counts around the clock."""
    terms = sla_terms(app, ticket)
    return terms.calendar if terms is not None and terms.business_hours else None


def resume_clock(ticket: Ticket, now, calendar=None) -> None:
    """Waiting on the customer does not count against the resolution deadline.

    With a business calendar the deadline moves by the *working* time that was
    left when the clock stopped (a pause over a weekend must not add 60 hours).
    A deadline already missed when the clock stopped stays missed.
    """
    if ticket.paused_at is not None:
        paused = now - ticket.paused_at
        ticket.paused_seconds += int(paused.total_seconds())
        due = ticket.resolution_due
        if due is not None and due > ticket.paused_at:
            if calendar is None:
                ticket.resolution_due = due + paused
            else:
                from routing.calendar import add_business_time, business_time_between

                left = business_time_between(ticket.paused_at, due, calendar)
                ticket.resolution_due = add_business_time(now, left, calendar)
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
        resume_clock(ticket, now, sla_calendar(app, ticket))
    if new == "resolved":
        ticket.resolved_at = now
    if new == "closed":
        ticket.closed_at = now
        ticket.resolved_at = ticket.resolved_at or now
    if new in ("open", "pending") and old in ("resolved", "closed"):
        begin_new_resolution(session, ticket)
    ticket.status = new
    ticket.updated_at = now
    record_event(session, ticket, "status", now, f"{old} → {new}" + (f": {why}" if why else ""),
                 actor=actor, old=old, new=new)
    return True


def begin_new_resolution(session, ticket: Ticket) -> None:
    """A reopened ticket: its next resolution is its own.

    The old solution is the one the customer just found wanting; it stays in the
    history (the closure_sent event) but must not be sent, or saved by #kb, again.
    Nor may the next closure fall back on an engineer reply written before the reopen.
    """
    ticket.resolved_at = None
    ticket.closed_at = None
    ticket.solution = ""
    newest = messages.newest_id(session, ticket.id)
    ticket.reopen_message_id = newest or 0


def assign(app, session, ticket: Ticket, engineer: str, *, actor: str, why: str = "",
           owner_too: bool = True, step: str = "reassigned") -> None:
    """Make `engineer` the handler (and, by default, the owner).

    `step` names the kind of change for "who held it when" (gateway.desk.holding): reassigned,
    handover_command, handover_sla, handover_away, manager_takeover, handback, tier2_escalation.
    """
    now = app.now()
    old_owner, old_handler = ticket.owner, ticket.handler
    ticket.handler = engineer
    if owner_too:
        ticket.owner = engineer
    ticket.updated_at = now
    record_event(session, ticket, "assigned", now,
                 f"handler {old_handler or '-'} → {engineer}" + (f" (owner {old_owner or '-'} → {engineer})" if owner_too else "")
                 + (f": {why}" if why else ""),
                 actor=actor, old_owner=old_owner, old_handler=old_handler, new=engineer, owner_too=owner_too,
                 step=step, why=why)


def mark_first_response(app, ticket: Ticket, at=None) -> bool:
    """The first engineer reply to the customer satisfies the first-response SLA."""
    if ticket.first_responded_at is None:
        ticket.first_responded_at = at or app.now()
        return True
    return False
