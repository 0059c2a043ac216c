"""The last handler: the customer's mail becomes a new ticket, or a follow-up on theirs.

Mail naming a ticket its sender has no part in goes to gateway/handlers/strangers.py.
"""

from __future__ import annotations

from gateway.desk.inbound import Inbound, create_ticket, follow_up
from gateway.handlers.strangers import handle_stranger

NAME = "customer"


def handle(ib: Inbound) -> str:
    m = ib.match = ib.find_ticket()
    if m.ticket is not None:
        return follow_up(ib, m.ticket)
    if m.sender_role == "stranger":
        return handle_stranger(ib, m.stranger_ticket)
    create_ticket(ib)
    return "created"
