"""Mail we queued (`OutboxRow` rows): the questions asked of it outside the dispatcher."""

from __future__ import annotations

from sqlalchemy import bindparam, func, or_, select

from storage.models import OutboxRow
from storage.rows import read

# Built once (asked for every automatic mail and every notification); rows queued in
# this transaction are written before either reads the table (storage.rows).
_O = OutboxRow.__table__.c  # a Core statement: no autoflush, none of the ORM's per-query cost
_AUTOMATIC_SENT = (select(func.count(_O.id))
                   .where(_O.rcpt == bindparam("rcpt"), _O.automatic.is_(True),
                          _O.created_at >= bindparam("since")))
# Built once: asked for every authorised engineer reply.
_NOTE_MAILS = (select(OutboxRow.id).where(OutboxRow.message_id.in_(bindparam("ids", expanding=True)),
                                          OutboxRow.kind == "note").limit(1))


def automatic_sent_to(session, rcpt: str, since) -> int:
    """How many automatic mails to `rcpt` (lower case) were queued since `since`."""
    return read(session, _AUTOMATIC_SENT, {"rcpt": rcpt, "since": since}).scalar_one()


def any_note_mail(session, message_ids: list[str]) -> bool:
    """One of these Message-IDs is an internal-note notification of ours."""
    return session.execute(_NOTE_MAILS, {"ids": message_ids}).first() is not None


def of_ticket(session, ticket_id: int) -> list[OutboxRow]:
    """Every mail queued on the ticket, in the order queued."""
    return list(session.execute(select(OutboxRow).where(OutboxRow.ticket_id == ticket_id)
                                .order_by(OutboxRow.id)).scalars())


def by_message_ids(session, message_ids: list[str]) -> list[OutboxRow]:
    return list(session.execute(select(OutboxRow).where(OutboxRow.message_id.in_(message_ids))).scalars())


def queued_at(session, message_ids: list[str]) -> list:
    """When the mails with these Message-IDs were queued."""
    return list(session.execute(select(OutboxRow.created_at).where(OutboxRow.message_id.in_(message_ids))).scalars())


def waiting(session, ticket_id: int, message_ids: list[str], now) -> list[OutboxRow]:
    """The ticket's mails among `message_ids` still pending and not due before `now` (send-later)."""
    return list(session.execute(select(OutboxRow).where(
        OutboxRow.ticket_id == ticket_id, OutboxRow.message_id.in_(list(message_ids)),
        OutboxRow.status == "pending", OutboxRow.next_attempt_at > now)).scalars().all())


def newest(session, limit: int, *, status: str | None = None) -> list[OutboxRow]:
    """The `limit` newest outbox rows (in `status`, when given), newest first."""
    stmt = select(OutboxRow).order_by(OutboxRow.id.desc()).limit(limit)
    if status:
        stmt = stmt.where(OutboxRow.status == status)
    return list(session.execute(stmt).scalars())


def on_tickets_or_to(session, ticket_ids, rcpt: str) -> list[OutboxRow]:
    """Mail queued on these tickets, or to `rcpt` (lower case; stored in any case), in the order queued."""
    on_tickets = OutboxRow.ticket_id.in_(ticket_ids) if ticket_ids else False
    return list(session.execute(select(OutboxRow).where(or_(on_tickets, func.lower(OutboxRow.rcpt) == rcpt))
                                .order_by(OutboxRow.id)).scalars())


def on_tickets(session, ticket_ids) -> list[OutboxRow]:
    return list(session.execute(select(OutboxRow).where(OutboxRow.ticket_id.in_(ticket_ids))).scalars())


def raw_kept(session, batch: int = 200):
    """(id, raw bytes) of every queued mail built with its bytes (mail with attachments), `batch` at a time."""
    return session.execute(select(OutboxRow.id, OutboxRow.raw).where(OutboxRow.raw.isnot(None))).yield_per(batch)
