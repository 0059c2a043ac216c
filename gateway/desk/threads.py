"""Which ticket does an inbound email belong to, and may its sender write to it?

Methods, in order: a signed reply address among the recipients, then
In-Reply-To/References against every Message-ID we stored or sent, then the
subject token ("[TS-000123]"). A match only counts when the sender has a part
in the ticket; otherwise the email is from a stranger and never joins it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy.orm import Session

from gateway.tokens import split_plus_address
from parsers.model import ParsedEmail
from storage import hot
from storage.models import Ticket
from storage.queries import participants, threads, tickets


@dataclass(frozen=True)
class Match:
    ticket: Ticket | None
    method: str  # token | references | subject | none
    sender_role: str  # requester | cc | watcher | engineer | stranger | none
    token_valid: bool = False  # the sender used a reply address signed for them
    stranger_ticket: Ticket | None = None  # the ticket a stranger tried to join
    note: bool = False  # came through a note's reply address: it stays internal


def subject_ref_pattern(prefix: str) -> re.Pattern:
    return re.compile(rf"\[({re.escape(prefix)}-\d{{3,12}})\]", re.IGNORECASE)


def _role(session: Session, ticket: Ticket, sender: str, engineers: frozenset[str]) -> str:
    if sender == ticket.requester_email:
        return "requester"
    roles = participants.active_roles(session, ticket.id, sender)
    for r in ("requester", "cc", "watcher"):
        if r in roles:
            return r
    if sender in engineers or sender in (ticket.owner, ticket.handler):
        return "engineer"
    return "stranger"


def _forwarded_from(session: Session, token: str, signer, engineers: frozenset[str]) -> Ticket | None:
    """The ticket whose reply token, issued to one of its people, a stranger holds; None
    when the token is forged: its ticket number then decides nothing (issue 19)."""
    tid = signer.ticket_named(token)
    ticket = hot.get(session, Ticket, tid) if tid is not None else None
    if ticket is None:
        return None
    people = {ticket.requester_email, ticket.owner, ticket.handler, *engineers,
              *participants.addresses(session, ticket.id)}
    return ticket if signer.issued_to_any(token, sorted(p for p in people if p)) == ticket.id else None


def _live(session: Session, ticket: Ticket | None) -> Ticket | None:
    """A merged ticket's survivor (#merge): its old addresses and references lead there."""
    for _ in range(20):
        if ticket is None or ticket.merged_into_id is None:
            return ticket
        ticket = hot.get(session, Ticket, ticket.merged_into_id)
    return ticket


def find_ticket(session: Session, email: ParsedEmail, *, recipients: list[str], signer, ref_prefix: str,
                engineers: frozenset[str], own_domain_check) -> Match:
    # Without autoflush: the ORM would flush every pending change (the batch's last ticket
    # updated) before loading a ticket by its id or ref, and neither needs it: a changed ticket
    # is in the session, found there; refs never change; thread ids and participants are read
    # with the changes to them written first (storage.rows.read).
    with session.no_autoflush:
        return _find(session, email, recipients=recipients, signer=signer, ref_prefix=ref_prefix,
                     engineers=engineers, own_domain_check=own_domain_check)


def _find(session: Session, email: ParsedEmail, *, recipients: list[str], signer, ref_prefix: str,
          engineers: frozenset[str], own_domain_check) -> Match:
    sender = email.sender.email
    stranger_of: Ticket | None = None

    # 1. signed reply address: valid only for the person it was issued to
    for rcpt in recipients:
        parts = split_plus_address(rcpt)
        if not parts or not own_domain_check(rcpt):
            continue
        grant = signer.read_reply_token(parts[1], sender)
        if grant is not None:
            ticket = _live(session, hot.get(session, Ticket, grant[0]))
            if ticket is not None:
                return Match(ticket, "token", _role(session, ticket, sender, engineers), token_valid=True,
                             note=grant[1])
        elif stranger_of is None:
            # someone else's genuine token (forwarded mail) links a stranger's mail to its
            # ticket; a token that verifies for nobody on it is ignored entirely
            stranger_of = _live(session, _forwarded_from(session, parts[1], signer, engineers))

    # 2. References / In-Reply-To, newest first
    ids = list(dict.fromkeys(list(email.in_reply_to) + list(reversed(email.references))))
    if ids:
        rows = threads.tickets_of(session, ids[:50])
        by_id: dict[str, list[int]] = {}
        for mid, tid in rows:
            by_id.setdefault(mid, []).append(tid)
        for mid in ids:
            for tid in by_id.get(mid, ()):
                ticket = _live(session, hot.get(session, Ticket, tid))
                role = _role(session, ticket, sender, engineers)
                if role != "stranger":
                    return Match(ticket, "references", role)
                stranger_of = stranger_of or ticket

    # 3. subject token
    for ref in subject_ref_pattern(ref_prefix).findall(email.subject or ""):
        ticket = _live(session, tickets.by_ref(session, ref))
        if ticket is None:
            continue
        role = _role(session, ticket, sender, engineers)
        if role != "stranger":
            return Match(ticket, "subject", role)
        stranger_of = stranger_of or ticket

    if stranger_of is not None:
        return Match(None, "none", "stranger", stranger_ticket=stranger_of)
    return Match(None, "none", "none")
