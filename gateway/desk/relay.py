"""Relaying an engineer's answer to the customer.

Owns what the customer sees of an engineer: a mail from the support address
under the engineer's first name ("Alice (Support)"), in the customer's own
thread (In-Reply-To their last message, References over what they have seen),
with a Reply-To signed for the requester. The engineer's personal address is
never written into it: the message is built from scratch, and any engineer
address typed into the text is replaced by the support address.

Must not decide whether the engineer may write (gateway.handlers.engineer does).
"""

from __future__ import annotations

from gateway import outbox
from gateway.desk import ticket_ops
from gateway.desk.notify import engineer_name
from parsers.model import Attachment
from storage.history import record_event
from storage.models import AttachmentRow, Message, Ticket
from storage.queries import participants


def first_name(app, engineer: str) -> str:
    name = engineer_name(app, engineer).strip()
    return name.split()[0] if name else app.config.gateway.display_name


def scrub_engineer_addresses(app, text: str) -> str:
    """No engineer's personal address leaves in a customer mail, even typed into the text."""
    return app.scrub_engineer_addresses(text)


def customer_thread(app, session, ticket: Ticket) -> tuple[str | None, list[str]]:
    """(the customer side's last Message-ID, the References chain the customer has seen)."""
    return outbox.customer_thread(app, session, ticket)


def relay_to_customer(app, session, ticket: Ticket, *, engineer: str, body: str,
                      attachments: tuple[Attachment, ...] = (), spool_id: int | None = None,
                      send_at=None, staged: dict | None = None) -> Message:
    """Queue the engineer's text to the requester (and CCs), store it as an outbound message;
    `send_at`: not before then (gateway.desk.send_later; the first response counts when it goes);
    `staged`: the stage files the parse pool wrote the attachments to (gateway.desk.inbound.Inbound)."""
    body = scrub_engineer_addresses(app, body)
    ctx = dict(ticket=ticket, body=body, engineer_first_name=first_name(app, engineer),
               team_name=app.team_name(ticket),
               brand_name=getattr(app.config.brand(ticket.address), "display_name", ""))  # "Alice (Brand)"
    rendered = app.templates_for(ticket).render("relay", ticket.language, **ctx)
    from_name = app.templates_for(ticket).line("relay", ticket.language, "from_name", **ctx)
    engineers = app.engineer_addresses()  # staff never go in a customer's Cc, whoever added them
    cc = [a for a in participants.active_ccs(session, ticket.id)
          if a != ticket.requester_email and not app.is_ours(a, engineers)] if app.config.workflow.relay_to_cc else []
    files = [(a.filename, a.content_type, a.content) for a in attachments if not a.inline]
    in_reply_to, refs = customer_thread(app, session, ticket)
    mid = outbox.reply_to_customer(app, session, ticket, "relay", rendered, cc=cc, from_name=from_name,
                                   in_reply_to=in_reply_to or (refs[-1] if refs else None), references=refs,
                                   attachments=files or None, source_spool_id=spool_id, not_before=send_at)
    now = app.now()
    msg = Message(ticket_id=ticket.id, spool_id=spool_id, direction="out", kind="engineer",
                  message_id=mid, sender_email=engineer, sender_name=from_name,
                  to=[ticket.requester_email], cc=cc, subject=rendered.subject, text=body, reply_text=body,
                  internal=False, created_at=now)
    session.add(msg)
    session.flush()
    for a in attachments:
        if a.inline:
            continue
        app.attachments.put(a.sha256, a.content, staged=(staged or {}).pop(a.sha256, None), session=session)
        session.add(AttachmentRow(message_id=msg.id, filename=a.filename, content_type=a.content_type,
                                  size=a.size, sha256=a.sha256))
    ticket.updated_at = now
    record_event(session, ticket, "relayed", now, f"reply by {engineer} relayed to {ticket.requester_email}"
                 + (f" (cc {', '.join(cc)})" if cc else ""), actor=engineer, to=[ticket.requester_email], cc=cc,
                 message_id=mid)
    if send_at is None and ticket_ops.mark_first_response(app, ticket, now):
        record_event(session, ticket, "first_response", now, f"first response by {engineer}", actor=engineer)
    return msg
