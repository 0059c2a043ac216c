"""Notifications to engineers: a new ticket, a customer follow-up, an assignment,
an internal note.

Owns who hears of what (the handler, else the owner, else the team; plus
watchers) and what a notification carries: the ticket's fields, the new text
with quoted history collapsed, the attachments (forwarded, or referenced when
over `workflow.attachment_link_over`), and a Reply-To signed for that one
engineer, so their answer comes back through `gateway.handlers.engineer` (a note's
notification carries the note's address: the answer stays internal).

Every notification goes to one engineer (one token each). They are marked
Auto-Submitted but not counted as automatic mail to correspondents: the rate
limit protects customers, not our own staff. Nothing here writes to the
customer.
"""

from __future__ import annotations

from sqlalchemy import inspect

from gateway.desk import enclosed
from gateway import outbox
from gateway.clock import fmt_due
from gateway.desk.unverified import log_ignored_on_new_ticket
from parsers.message import NESTED_NAME
from storage.history import record_event
from storage.models import AttachmentRow, Message, Ticket
from storage.queries import messages, participants

# RFC 3834 / Exchange: no out-of-office answers to our notifications.
AUTOMATIC_HEADERS = {"Auto-Submitted": "auto-generated", "X-Auto-Response-Suppress": "All"}


def engineer_name(app, address: str) -> str:
    """The rules file's name for the engineer at `address`; "" for anyone else (or a nameless
    engineer). The one engineer-name lookup: briefing, relay, self-service and the desk ask it."""
    eng = app.rules.current.engineer_by_email(address) if address else None
    return eng.name if eng is not None else ""


def team_engineers(app, team: str) -> list[str]:
    return list(app.rules.current.team_emails.get(team, ()))


def colleague(app, ticket: Ticket, rcpt: str) -> str:
    """A real address to show in the '#assign' example: someone else on the ticket's team."""
    others = [e for e in team_engineers(app, ticket.team) if e != rcpt.lower()]
    return others[0] if others else "<email>"


def watchers(session, ticket: Ticket) -> list[str]:
    return participants.watchers(session, ticket.id)


def recipients(app, session, ticket: Ticket, *, exclude: tuple[str, ...] = ()) -> list[str]:
    """Who hears of this ticket: the handler (else owner, else the team) and the watchers."""
    first = ticket.handler or ticket.owner
    people = [first] if first else team_engineers(app, ticket.team)
    if ticket.owner and ticket.owner != first:
        people.append(ticket.owner)  # during a handover the primary stays informed
    people += watchers(session, ticket)
    skip = {a.lower() for a in exclude if a}
    out: list[str] = []
    for p in people:
        p = p.lower()
        if p and p not in skip and p not in out and not app.is_own_address(p):
            out.append(p)
    return out


def _attachments(app, session, message: Message | None):
    """(forwarded [(name, type, sha256)], listed [dict]) for a message's attachments.

    Forwarded ones are referred to by their place in the attachment store, which
    never changes; the dispatcher reads their bytes when it composes the mail."""
    if message is None:
        return [], []
    limit = app.config.workflow.attachment_link_over
    forwarded, listed = [], []
    if message.id is None or "attachments" in inspect(message).dict:
        rows = list(message.attachments)  # stored in this transaction (inbound.store_message): all in memory
    else:
        # no autoflush when nothing is pending that this could read
        rows = messages.attachment_rows(session, message.id,
                                        autoflush=any(isinstance(o, AttachmentRow) for o in session.new))
    for row in rows:
        # a message nested past the parser's limit is kept on the ticket, never forwarded: no
        # engineer's mail client should have to take the MIME bomb apart
        nested = row.filename == NESTED_NAME and row.content_type == "message/rfc822"
        entry = {"filename": row.filename, "size": row.size, "sha256": row.sha256, "forwarded": False,
                 "content_type": row.content_type, "nested": nested}
        if row.size <= limit and not nested:
            if app.attachments.path_for(row.sha256).is_file():
                forwarded.append((row.filename, row.content_type, row.sha256))
                entry["forwarded"] = True
            # else the store lost it: still listed, so the engineer knows it existed
        listed.append(entry)
    return forwarded, listed


def _collapsed_lines(message: Message | None) -> int:
    """How many lines of quoted history the notification leaves out."""
    if message is None:
        return 0
    full = [ln for ln in (message.text or "").splitlines() if ln.strip()]
    new = [ln for ln in (message.reply_text or "").splitlines() if ln.strip()]
    return max(0, len(full) - len(new))


def send(app, session, ticket: Ticket, *, event: str, message: Message | None = None, actor: str = "",
         to: list[str] | None = None, template: str = "notification", exclude: tuple[str, ...] = (),
         extra: dict | None = None) -> list[str]:
    """One notification per engineer; returns the addresses notified."""
    people = to if to is not None else recipients(app, session, ticket, exclude=exclude)
    if not people:
        return []
    forwarded, listed = _attachments(app, session, message)
    attached_mails = enclosed.describe(app, listed)
    due = {"first_response_due": fmt_due(app, ticket.first_response_due),
           "resolution_due": fmt_due(app, ticket.resolution_due)}
    collapsed = _collapsed_lines(message)  # the same for every recipient
    actor_name = engineer_name(app, actor) if actor else ""
    mails = []
    for rcpt in people:
        rendered = app.templates.render(
            template, ticket.language, ticket=ticket, event=event, message=message, actor=actor,
            actor_name=actor_name,
            recipient_name=engineer_name(app, rcpt), colleague=colleague(app, ticket, rcpt),
            collapsed=collapsed,
            attachments=listed, enclosed=attached_mails, team_name=app.config.gateway.display_name, **due,
            **(extra or {}),
        )
        # A note's notification answers to the note's own address: a colleague's reply to
        # it is another note (gateway.handlers.engineer), never an answer relayed to the customer.
        mails += outbox.mail_engineer(app, session, ticket, template, rendered, to=rcpt, note=template == "note",
                                      stored_attachments=forwarded or None, extra_headers=AUTOMATIC_HEADERS)
    # which mail was about which message: a reply "#split" to one names its message (gateway.desk.merge_split)
    record_event(session, ticket, "notified", app.now(), f"{event}: notified {', '.join(people)}",
                 event=event, to=people, mails=mails, about=message.message_id if message is not None else "")
    return people


def on_new_ticket(app, session, ticket, message, *, brought_in_by: str = "", extra: dict | None = None,
                  email=None) -> None:
    """A new ticket: tell its handler/owner (or team) and watchers (`brought_in_by`: the
    engineer who forwarded the customer's mail in; `extra`: more for the template; `email`: the
    parsed mail stored as `message`, when there is one)."""
    log_ignored_on_new_ticket(app, session, ticket, message, email)
    if message is not None and message.automatic:
        return  # a bounce or vacation reply is kept on the ticket; paging engineers for it is noise
    more = dict(extra or {})
    if brought_in_by:
        more.update(brought_in_by=brought_in_by, brought_in_name=engineer_name(app, brought_in_by))
    send(app, session, ticket, event="new", message=message, extra=more or None)


def on_customer_message(app, session, ticket, message, *, new_topic: str = "", extra: dict | None = None) -> None:
    """A customer follow-up on an existing ticket: tell the handler and watchers (`new_topic`:
    why it looks like a new question, gateway.desk.topics; the mail offers #split)."""
    if message is not None and message.automatic:
        return  # stored on the ticket, visible in its history; no page for a robot's mail
    more = dict(extra or {})
    if new_topic:
        more["new_topic"] = new_topic
    send(app, session, ticket, event="message", message=message, extra=more or None)


def latest_customer_message(session, ticket: Ticket) -> Message | None:
    return messages.newest_public_incoming(session, ticket.id)


def on_assigned(app, session, ticket, *, engineer: str, actor: str) -> None:
    """The ticket was given to `engineer`: they get it with the last customer message."""
    if not engineer or engineer.lower() == (actor or "").lower():
        return  # taking a ticket yourself needs no mail
    send(app, session, ticket, event="assigned", message=latest_customer_message(session, ticket),
         actor=actor, to=[engineer.lower()])


def on_note(app, session, ticket, note: Message, *, actor: str) -> list[str]:
    """An internal note: the other engineers on the ticket, never the customer."""
    return send(app, session, ticket, event="note", message=note, actor=actor, template="note",
                exclude=(actor,))
