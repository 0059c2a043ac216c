"""Merging two tickets into one, and splitting a message off into a ticket of its own.

`merge(app, s, source, target, actor=)`: the source ticket's messages, participants,
history (its time log included) and thread ids move to the target, which keeps the SLA
deadlines of the older of the two; the source is closed and remembers its survivor
(`merged_into_id`), so a reply through any of its old addresses lands on the survivor
(gateway.desk.threads follows it). The source's customer is told once (`merged`), never with
anything internal. `split(app, s, ticket, message, actor=)`: `message` leaves the ticket and
opens a new one, linked to it, with its sender as requester and routed as a new mail.
Both are run by `#merge`/`#split` by mail (gateway.handlers.engineer_commands) and by
`supportgw tickets merge|split`. Neither decides who may ask: their callers do.
"""

from __future__ import annotations

from sqlalchemy import delete, update

from gateway import large_mail, outbox
from gateway.desk.automatic import may_send_automatic
from gateway.desk.inbound import Inbound, create_ticket
from storage.history import record_event
from storage.models import AttachmentRow, Event, Message, Participant, SpoolEntry, ThreadId, Ticket
from storage.queries import events, messages, participants, threads

MAX_HOPS = 20  # a chain of merges is followed this far


def survivor(session, ticket: Ticket | None) -> Ticket | None:
    """The live ticket `ticket` was merged into (itself when it was not)."""
    for _ in range(MAX_HOPS):
        if ticket is None or ticket.merged_into_id is None:
            return ticket
        ticket = session.get(Ticket, ticket.merged_into_id)
    return ticket


def merge_problem(session, source: Ticket, target: Ticket | None, ref: str) -> str:
    if target is None:
        return f"#merge {ref}: there is no ticket {ref}"
    if survivor(session, target).id == source.id:
        return f"#merge {ref}: that is this ticket"
    if source.merged_into_id is not None:
        return f"#merge {ref}: this ticket was already merged"
    return ""


def merge(app, session, source: Ticket, target: Ticket, *, actor: str) -> Ticket:
    target = survivor(session, target)
    now = app.now()
    session.flush()  # appended rows (events, thread ids, participants) are in the tables before they move
    last_in, refs = outbox.customer_thread(app, session, source)  # the source customer's own conversation
    older = source if source.created_at < target.created_at else target
    if older is source:  # the survivor answers to the deadlines of the first request
        target.first_response_due = source.first_response_due
        target.resolution_due = source.resolution_due
        target.sla_policy = source.sla_policy or target.sla_policy
        if source.first_responded_at and (not target.first_responded_at
                                          or source.first_responded_at < target.first_responded_at):
            target.first_responded_at = source.first_responded_at
    _move_participants(session, source, target)
    session.execute(update(Message).where(Message.ticket_id == source.id).values(ticket_id=target.id))
    session.execute(update(Event).where(Event.ticket_id == source.id).values(ticket_id=target.id))
    threads.move(session, source.id, target.id)
    session.expire(target, ["messages", "participants"])
    source.merged_into_id = target.id
    old_status = source.status
    source.status, source.closed_at, source.updated_at = "closed", now, now
    target.updated_at = now
    record_event(session, source, "merged_into", now, f"merged into {target.ref} by {actor} "
                 f"(was {old_status}); its messages and history are on {target.ref}", actor=actor,
                 into=target.ref)
    record_event(session, target, "merged_from", now, f"{source.ref} merged into this ticket by {actor}: its "
                 f"messages, people, history and time log moved here; SLA deadlines of "
                 f"{older.ref} (the older)", actor=actor, source=source.ref, sla_from=older.ref)
    _tell_customer(app, session, source, target, last_in, refs)
    return target


def _move_participants(session, source: Ticket, target: Ticket) -> None:
    have = {(p.email, p.role) for p in participants.of_ticket(session, target.id)}
    emails = {e for e, _ in have} | {target.requester_email}
    for p in participants.of_ticket(session, source.id, active_only=True):
        role = "cc" if p.role == "requester" else p.role  # one requester: the other customer joins on CC
        if p.email in emails and (p.email, role) not in have and role != "watcher":
            continue
        if (p.email, role) not in have:
            session.add(Participant(ticket_id=target.id, email=p.email, name=p.name, role=role, active=True))
            have.add((p.email, role))
            emails.add(p.email)


def _tell_customer(app, session, source: Ticket, target: Ticket, last_in, refs) -> None:
    rcpt = source.requester_email
    if not may_send_automatic(app, session, rcpt, "merged"):
        return
    rendered = app.templates_for(target).render("merged", source.language, source=source, target=target,
                                                customer_name=source.requester_name,
                                                team_name=app.team_name(target))
    outbox.reply_to_customer(app, session, target, "merged", rendered, to=rcpt, automatic="auto-generated",
                             in_reply_to=last_in, references=refs or None)


# ------------------------------------------------------------------------------- split


def split_target(session, ticket: Ticket, in_reply_to) -> Message | None:
    """The customer message a notification was about, from the notification's Message-ID."""
    ids = {i for i in in_reply_to if i}
    if not ids:
        return None
    for ev in events.of_ticket(session, ticket.id, "notified", newest_first=True):
        data = ev.data or {}
        if ids & set(data.get("mails") or ()) and data.get("about"):
            return messages.newest_incoming_with_id(session, ticket.id, data["about"])
    return None


def split_problem(session, ticket: Ticket, message: Message | None) -> str:
    if message is None:
        return ("#split: reply with #split to the notification of the customer's message you want as a new "
                "ticket (this reply does not answer one of its notifications)")
    if message.internal or message.direction != "in":
        return "#split: only a customer's message can become a ticket of its own"
    first = messages.first_public_incoming_id(session, ticket.id)
    if first == message.id:
        return "#split: that is the ticket's first message; there is nothing to split it from"
    if message.spool_id is None:
        return "#split: the message's original mail is not kept, so it cannot be routed as a new one"
    return ""


def split(app, session, ticket: Ticket, message: Message, *, actor: str) -> Ticket:
    """`message` becomes a new ticket, linked to `ticket`; it leaves `ticket`'s thread."""
    entry = session.get(SpoolEntry, message.spool_id)
    email = large_mail.parse_entry(app, entry)
    session.execute(delete(ThreadId).where(ThreadId.ticket_id == ticket.id, ThreadId.message_id == message.message_id))
    session.execute(delete(AttachmentRow).where(AttachmentRow.message_id == message.id))
    moved_id = message.message_id
    session.delete(message)
    session.flush()
    ib = Inbound(app=app, session=session, entry=entry, email=email, recipients=list(email_recipients(email)))
    new = create_ticket(ib, linked_to=ticket)
    record_event(session, ticket, "split", app.now(), f"a message from {email.sender.email} split off by {actor} "
                 f"into {new.ref}", actor=actor, into=new.ref, message_id=moved_id)
    record_event(session, new, "split_from", app.now(), f"split off {ticket.ref} by {actor}", actor=actor,
                 source=ticket.ref)
    return new


def email_recipients(email) -> list[str]:
    return [a.email for a in list(email.to) + list(email.cc) if a.email]
