"""Pipeline handler: a customer asks by mail for the status of their tickets.

A new email (not a reply on a ticket) that asks for it in the usual words, in
its subject or as a one-line body ("status", "What is the status of my
tickets?", "进度查询", "我的工单": `parsers.status_request`), is answered with
the list of the sender's open tickets, state and owner. Only tickets whose
requester is the sender are listed, and the list goes to the From address only:
a forged From sends another customer's list to that customer, never to the
forger. Automatic mail never gets a list (RFC 3834), and the per-correspondent
rate limit applies.
"""

from __future__ import annotations

from gateway import outbox
from gateway.clock import fmt_due
from gateway.desk.automatic import may_send_automatic
from gateway.desk import notify
from storage.models import Ticket
from storage.queries import tickets

NAME = "selfservice"  # the name the pipeline logs (handler=) and gateway/handlers/registry.py lists

OPEN_STATUSES = ("new", "open", "pending")


def handle(ib) -> str | None:
    e = ib.email
    if not e.asks_status:
        return None
    app, s = ib.app, ib.session
    sender = e.sender.email
    m = ib.find_ticket()
    if m.ticket is not None or m.stranger_ticket is not None:
        return None  # a reply on a ticket that happens to say "status": the ticket's business
    answer = may_send_automatic(app, s, sender, "status_list", answering=e)
    if not answer:
        # a robot, ourselves or a colleague saying "status" is not asking for a list: the other handlers' mail
        return "status_rate_limited" if answer.reason == "rate limit" else None
    tickets = open_tickets(s, sender)
    brand = app.config.brand_for(ib.recipients)  # answered from the address they wrote to
    address = brand.address if brand else ""
    language = app.config.language_for(e.language, brand)
    rendered = app.templates_for(address=address).render(
        "status_list", language, customer_name=e.sender.name,
        tickets=[_row(app, t) for t in tickets], team_name=app.team_name(address=address),
    )
    outbox.answer_sender(app, s, "status_list", rendered, to=sender, in_reply_to=e.message_id,
                         references=list(e.references) + [e.message_id], source_spool_id=ib.entry.id,
                         address=address)
    return "status_list"


def open_tickets(s, requester: str) -> list[Ticket]:
    return tickets.open_of(s, requester, OPEN_STATUSES)


def _row(app, t: Ticket) -> dict:
    # The engineer's name only: personal addresses stay inside (DOMAIN.md §9).
    owner = t.owner or t.handler
    return {"ref": t.ref, "subject": t.subject, "status": t.status, "priority": t.priority,
            "owner": notify.engineer_name(app, owner), "created": fmt_due(app, t.created_at),
            "updated": fmt_due(app, t.updated_at)}
