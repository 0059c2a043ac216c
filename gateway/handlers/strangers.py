"""Mail that names a ticket its sender has no part in.

Policy (workflow.stranger_policy): open a new ticket linked to the original
(default), hold it for the owner's approval, or reject with a templated
answer. In every case nothing of the original ticket reaches the stranger.
"""

from __future__ import annotations

from gateway import outbox
from gateway.desk.automatic import may_send_automatic
from gateway.desk.inbound import Inbound, create_ticket
from storage.history import record_event
from storage.models import Ticket


def handle_stranger(ib: Inbound, original: Ticket | None) -> str:
    policy = ib.app.config.workflow.stranger_policy
    if policy == "new_ticket" or original is None:
        ticket = create_ticket(ib, linked_to=original)
        if original is not None:
            record_event(ib.session, original, "stranger", ib.now,
                         f"{ib.email.sender.email} wrote about this ticket; opened {ticket.ref}",
                         new_ticket=ticket.ref)
        return "created"
    if policy == "hold":
        create_ticket(ib, linked_to=original, held=True)
        return "held"
    # reject: answer with a template that names nothing of the original ticket
    record_event(ib.session, original, "stranger_rejected", ib.now,
                 f"rejected a message from {ib.email.sender.email}")
    rcpt = ib.email.sender.email
    if may_send_automatic(ib.app, ib.session, rcpt, "rejection", answering=ib.email):
        lang = ib.email.language
        # from the address the stranger wrote to (the ticket's own brand would tell them whose it is)
        brand = ib.app.config.brand_for(ib.recipients)
        address = brand.address if brand else ""
        rendered = ib.app.templates_for(address=address).render("stranger_rejected", lang,
                                                                team_name=ib.app.team_name(address=address))
        outbox.answer_sender(ib.app, ib.session, "rejection", rendered, to=rcpt, in_reply_to=ib.email.message_id,
                             references=[ib.email.message_id], address=address)
    return "rejected"
