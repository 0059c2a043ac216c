"""Held tickets: with `workflow.stranger_policy = "hold"`, mail that names a ticket its
sender has no part in opens a ticket that waits, unacknowledged, for an engineer.

Owns who may release one (`refusal`) and what releasing does (`release`): the
ticket joins the normal flow and its requester gets the acknowledgement that was
held back, threaded on their mail. Holding is gateway.handlers.strangers'; the `#release`
command arrives through gateway.handlers.engineer_commands, `supportgw tickets release
REF` through gateway.cli.admin.
"""

from __future__ import annotations

from gateway.desk import acknowledge
from gateway.desk.automatic import may_send_automatic
from storage.history import record_event
from storage.models import Message, Ticket
from storage.queries import messages


def refusal(app, ticket: Ticket, engineer: str) -> str | None:
    """Why `engineer` may not release this ticket by mail; None when they may.

    The ticket's team decides, as it would have handled the mail had it not been held;
    its owner or handler (an assignment may cross teams) may too."""
    if not ticket.held:
        return f"{ticket.ref} is not held; #release only releases a held ticket"
    engineer = engineer.lower()
    if engineer in (ticket.owner.lower(), ticket.handler.lower()):
        return None
    eng = app.rules.current.engineer_by_email(engineer)
    if eng is not None and eng.team == ticket.team:
        return None
    return f"only an engineer of team {ticket.team} (or the ticket's owner) may release {ticket.ref}"


def release(app, session, ticket: Ticket, *, actor: str, via: str) -> str:
    """Take the ticket off hold and send the acknowledgement its requester is owed.
    Returns why no acknowledgement went out ("" when it did)."""
    now = app.now()
    ticket.held = False
    ticket.updated_at = now
    record_event(session, ticket, "released", now, f"released from hold by {actor} ({via})", actor=actor, via=via)
    first = messages.first_incoming(session, ticket.id)
    rcpt = ticket.requester_email
    why = _no_acknowledgement(app, session, first, rcpt)
    if why:
        record_event(session, ticket, "auto_suppressed", now, f"no acknowledgement on release: {why}", reason=why)
        return why
    # Threaded on the sender's own mail only: the ticket they wrote about is not theirs to see.
    acknowledge.queue(app, session, ticket, rcpt=rcpt, customer_name=ticket.requester_name,
                      about=ticket.subject + "\n" + (first.reply_text or first.text),
                      in_reply_to=first.message_id, references=[first.message_id] if first.message_id else [],
                      spool_id=first.spool_id)
    return ""


def _no_acknowledgement(app, session, first: Message | None, rcpt: str) -> str:
    """RFC 3834, as for any acknowledgement: never to a robot, ourselves, or too often."""
    if first is None:
        return "the ticket has no message from its requester"
    answer = may_send_automatic(app, session, rcpt, "acknowledgement_on_release", answering=first)
    if answer.reason == "automatic":
        return "the held mail was automatic"
    if answer.reason in ("no address", "own address"):
        return "no customer address"
    return answer.detail  # "" when it may go
