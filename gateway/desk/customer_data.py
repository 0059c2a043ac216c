"""What the gateway holds about one person: found once, used by export and erase.

`find(app, s, address)` collects the rows that concern an address: the tickets
they opened (requester), the tickets they take part in otherwise (cc, watcher,
a message from them), their messages, the outbound mail addressed to them, and
spool rows from them that never became a ticket (quarantined, suspended,
dropped, pending). Names they used are collected too, because erasing must
find the name as well as the address.

Owns the search, not what is done with it (gateway/desk/customer_export.py,
gateway/desk/customer_erase.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from storage.models import Message, OutboxRow, SpoolEntry, Ticket
from storage.queries import messages, outbox as outbox_rows, participants, spool as spool_rows, tickets


@dataclass
class Holdings:
    address: str
    requested: list[Ticket] = field(default_factory=list)  # tickets they opened
    involved: list[Ticket] = field(default_factory=list)  # others' tickets they are on
    messages: list[Message] = field(default_factory=list)  # mail they sent
    outbox: list[OutboxRow] = field(default_factory=list)  # mail addressed to them
    unfiled: list[SpoolEntry] = field(default_factory=list)  # their spooled mail with no ticket
    names: set[str] = field(default_factory=set)

    @property
    def tickets(self) -> list[Ticket]:
        return self.requested + self.involved

    @property
    def empty(self) -> bool:
        return not (self.tickets or self.messages or self.outbox or self.unfiled)


def _addressed_to(row: OutboxRow, address: str) -> bool:
    return any(address == (a or "").lower() for a in [row.rcpt, *row.to, *row.cc, *row.envelope_to])


def find(app, s, address: str) -> Holdings:
    address = address.strip().lower()
    h = Holdings(address)
    h.requested = tickets.requested_by(s, address)
    mine = {t.id for t in h.requested}
    parts = participants.of_address(s, address)
    h.messages = messages.sent_by(s, address)
    other_ids = ({p.ticket_id for p in parts} | {m.ticket_id for m in h.messages}) - mine
    if other_ids:
        h.involved = tickets.with_ids(s, other_ids)
    # outbox rows are few per ticket but many overall: the ticket's rows, plus rcpt for the rest
    ticket_ids = mine | other_ids
    rows = outbox_rows.on_tickets_or_to(s, ticket_ids, address)
    h.outbox = [r for r in rows if _addressed_to(r, address)]
    h.unfiled = spool_rows.unfiled_from(s, address)
    linked = messages.stored_spool_ids(s, [e.id for e in h.unfiled]) if h.unfiled else set()
    h.unfiled = [e for e in h.unfiled if e.id not in linked]
    h.names = {n.strip() for n in [*(t.requester_name for t in h.requested), *(p.name for p in parts),
                                   *(m.sender_name for m in h.messages)] if n and len(n.strip()) >= 3}
    return h
