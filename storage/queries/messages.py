"""The mail stored on tickets (`Message` rows): building the row for a mail that came
in, and the questions asked about a ticket's messages."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, func, select

from storage.hot import new_row
from storage.models import AttachmentRow, Message
from storage.rows import read


def received(email, *, ticket_id: int, spool_id: int | None, kind: str, created_at: datetime,
             internal: bool = False, text: str | None = None, reply_text: str | None = None,
             html: str | None = None) -> Message:
    """The row for an incoming mail (a parsed email: `parsers.model.ParsedEmail`), not yet
    added to a session. `text`, `reply_text` and `html` replace the mail's own when given
    (an engineer's note keeps only what the engineer wrote)."""
    return new_row(
        Message, ticket_id=ticket_id, spool_id=spool_id, direction="in", kind=kind, message_id=email.message_id,
        sender_email=email.sender.email, sender_name=email.sender.name,
        to=[a.email for a in email.to], cc=[a.email for a in email.cc], subject=email.subject,
        text=email.text if text is None else text,
        reply_text=email.reply_text if reply_text is None else reply_text,
        html=email.html if html is None else html, automatic=email.automatic, internal=internal,
        created_at=created_at,
    )


def _first(session, stmt) -> Message | None:
    return session.execute(stmt.order_by(Message.id).limit(1)).scalar_one_or_none()


def _newest(session, stmt) -> Message | None:
    return session.execute(stmt.order_by(Message.id.desc()).limit(1)).scalar_one_or_none()


def _incoming(ticket_id: int):
    return select(Message).where(Message.ticket_id == ticket_id, Message.direction == "in")


def on_ticket(session, ticket_id: int, *, since=None) -> list[Message]:
    """The ticket's messages, oldest first (internal notes included); `since`: written then or later."""
    stmt = select(Message).where(Message.ticket_id == ticket_id)
    if since is not None:
        stmt = stmt.where(Message.created_at >= since)
    return list(session.execute(stmt.order_by(Message.id)).scalars())


def public_incoming(session, ticket_id: int) -> list[Message]:
    """The ticket's incoming mail that is not an internal note, oldest first."""
    return list(session.execute(_incoming(ticket_id).where(Message.internal.is_(False))
                                .order_by(Message.id)).scalars())


def first_incoming(session, ticket_id: int) -> Message | None:
    """The mail that opened the ticket (whoever sent it)."""
    return _first(session, _incoming(ticket_id))


def first_from_customer(session, ticket_id: int) -> Message | None:
    return _first(session, _incoming(ticket_id).where(Message.kind == "customer"))


def first_public_incoming_id(session, ticket_id: int) -> int | None:
    """The id of the ticket's first incoming mail that is not an internal note."""
    return session.execute(select(Message.id).where(Message.ticket_id == ticket_id, Message.direction == "in",
                                                    Message.internal.is_(False))
                           .order_by(Message.id).limit(1)).scalar_one_or_none()


def newest_public_incoming(session, ticket_id: int) -> Message | None:
    return _newest(session, _incoming(ticket_id).where(Message.internal.is_(False)))


def newest_incoming_with_id(session, ticket_id: int, message_id: str) -> Message | None:
    return _newest(session, _incoming(ticket_id).where(Message.message_id == message_id))


def _answers(ticket_id: int):
    """An engineer's answers to the customer on the ticket (not notes)."""
    return select(Message).where(Message.ticket_id == ticket_id, Message.direction == "out",
                                 Message.kind == "engineer", Message.internal.is_(False))


def newest_answer(session, ticket_id: int, *, after_id: int = 0) -> Message | None:
    """The newest engineer's answer to the customer with an id above `after_id`."""
    return _newest(session, _answers(ticket_id).where(Message.id > after_id))


def newest_answer_by_other(session, ticket_id: int, engineer: str, since) -> Message | None:
    """The newest answer to the customer since `since` by an engineer other than `engineer`."""
    return _newest(session, _answers(ticket_id).where(Message.sender_email != engineer, Message.created_at >= since))


def by_message_id(session, ticket_id: int, message_id: str) -> Message | None:
    return session.execute(select(Message).where(Message.ticket_id == ticket_id,
                                                 Message.message_id == message_id)).scalar_one_or_none()


def written_at(session, ticket_id: int, message_ids: list[str]) -> list[datetime]:
    """When the ticket's messages with these Message-IDs were stored."""
    return list(session.execute(select(Message.created_at).where(Message.ticket_id == ticket_id,
                                                                 Message.message_id.in_(message_ids))).scalars())


_MT = Message.__table__.c
# Built once, on table columns: asked for every follow-up (gateway.desk.topics)
_RECENT_PUBLIC = (select(_MT.reply_text).where(_MT.ticket_id == bindparam("ticket_id"), _MT.internal.is_(False),
                                               _MT.automatic.is_(False))
                  .order_by(_MT.id.desc()).limit(bindparam("limit")))


def recent_public_texts(session, ticket_id: int, limit: int) -> list[str]:
    """The reply text of the ticket's newest `limit` messages a person wrote in the open."""
    return list(read(session, _RECENT_PUBLIC, {"ticket_id": ticket_id, "limit": limit},
                     flush_for=(Message,)).scalars())


def newest_id(session, ticket_id: int) -> int | None:
    return session.execute(select(func.max(Message.id)).where(Message.ticket_id == ticket_id)).scalar()


def ticket_of_spool(session, spool_id: int) -> int | None:
    """The ticket a spooled mail was stored on."""
    return session.execute(select(Message.ticket_id).where(Message.spool_id == spool_id).limit(1)).scalar()


def recent_from(session, sender: str, since, limit: int) -> list[tuple[str, str]]:
    """(subject, text) of the newest `limit` mails from `sender` stored since `since`."""
    return list(session.execute(
        select(Message.subject, Message.text).where(
            Message.sender_email == sender, Message.direction == "in", Message.created_at >= since)
        .order_by(Message.id.desc()).limit(limit)).all())


# built once: asked before every automatic answer
_M = Message.__table__.c  # a Core statement: no autoflush to skip, none of the ORM's per-query cost
_COUNT_FROM = (select(func.count(_M.id))
               .where(_M.sender_email == bindparam("sender"), _M.direction == "in",
                      _M.created_at >= bindparam("since")))


def count_from(session, sender: str, since) -> int:
    """How many mails from `sender` were stored since `since` (written rows only: no autoflush)."""
    return read(session, _COUNT_FROM, {"sender": sender, "since": since}).scalar_one()


def attachment_rows(session, message_id: int, *, autoflush: bool = True) -> list[AttachmentRow]:
    """The message's attachments, in the order stored."""
    stmt = select(AttachmentRow).where(AttachmentRow.message_id == message_id).order_by(AttachmentRow.id)
    if not autoflush:
        stmt = stmt.execution_options(autoflush=False)
    return list(session.execute(stmt).scalars())


def senders_of(session, message_ids) -> set[tuple[str, str]]:
    """(Message-ID, sender) of the stored mails with these Message-IDs."""
    return set(session.execute(select(Message.message_id, Message.sender_email)
                               .where(Message.message_id.in_(message_ids))).all())


def count_on(session, ticket_id: int) -> int:
    return session.execute(select(func.count(Message.id)).where(Message.ticket_id == ticket_id)).scalar_one()


def attachments_on_ticket(session, ticket_id: int) -> list[tuple[AttachmentRow, Message]]:
    """(attachment, its message) for every attachment on the ticket, in the order stored."""
    return list(session.execute(select(AttachmentRow, Message).join(Message, AttachmentRow.message_id == Message.id)
                                .where(Message.ticket_id == ticket_id).order_by(Message.id, AttachmentRow.id)).all())


def first_written_by(session, ticket_id: int, sender: str, since) -> datetime | None:
    """When `sender` first wrote on the ticket (reply or note, not automatic mail) since `since`."""
    return session.execute(select(Message.created_at).where(
        Message.ticket_id == ticket_id, Message.sender_email == sender, Message.created_at >= since,
        Message.automatic.is_(False)).order_by(Message.id).limit(1)).scalar()


def sent_by(session, address: str) -> list[Message]:
    """Every mail `address` (lower case; stored in any case) sent, oldest first."""
    return list(session.execute(select(Message).where(func.lower(Message.sender_email) == address)
                                .order_by(Message.id)).scalars())


def stored_spool_ids(session, spool_ids) -> set[int]:
    """Which of these spooled mails were stored on a ticket."""
    return {m.spool_id for m in session.execute(select(Message).where(Message.spool_id.in_(spool_ids))).scalars()}


def ids_on(session, ticket_ids) -> set[int]:
    """The ids of every message on these tickets."""
    return set(session.execute(select(Message.id).where(Message.ticket_id.in_(ticket_ids))).scalars())


def with_ids(session, ids) -> list[Message]:
    return list(session.execute(select(Message).where(Message.id.in_(ids))).scalars())


def on_tickets_except(session, ticket_ids, except_ids) -> list[Message]:
    """The messages on these tickets but those with ids in `except_ids`."""
    return list(session.execute(select(Message).where(Message.ticket_id.in_(ticket_ids),
                                                      Message.id.notin_(except_ids or {0}))).scalars())
