"""The statements of the [retention] purge (gateway/jobs/retention.py): what has aged out,
and removing it. None commits; removing files is the caller's (after these, in its transaction)."""

from __future__ import annotations

from sqlalchemy import delete, select, update

from storage.models import (
    AttachmentRow, Event, KbArticle, Message, OutboxAttempt, OutboxRow, Participant, SlaMark, SpoolEntry,
    SurveyResponse, ThreadId, Ticket,
)


def delete_tickets(s, ids: list[int]) -> tuple[set[str], set[str]]:
    """Remove tickets and everything hanging off them; (attachment shas, spool blob shas) freed."""
    if not ids:
        return set(), set()
    msg_ids = list(s.execute(select(Message.id).where(Message.ticket_id.in_(ids))).scalars())
    shas = set(s.execute(select(AttachmentRow.sha256).where(AttachmentRow.message_id.in_(msg_ids))).scalars()) \
        if msg_ids else set()
    if msg_ids:
        s.execute(delete(AttachmentRow).where(AttachmentRow.message_id.in_(msg_ids)))
    spool_ids = set(s.execute(select(Message.spool_id).where(Message.ticket_id.in_(ids),
                                                             Message.spool_id.isnot(None))).scalars())
    spool_ids |= set(s.execute(select(SpoolEntry.id).where(SpoolEntry.ticket_id.in_(ids))).scalars())
    s.execute(delete(Message).where(Message.ticket_id.in_(ids)))
    out_ids = list(s.execute(select(OutboxRow.id).where(OutboxRow.ticket_id.in_(ids))).scalars())
    if out_ids:
        s.execute(delete(OutboxAttempt).where(OutboxAttempt.outbox_id.in_(out_ids)))
        s.execute(delete(OutboxRow).where(OutboxRow.id.in_(out_ids)))
    for model in (ThreadId, Event, Participant, SlaMark, SurveyResponse):
        s.execute(delete(model).where(model.ticket_id.in_(ids)))
    s.execute(update(KbArticle).where(KbArticle.ticket_id.in_(ids)).values(ticket_id=None))
    s.execute(update(Ticket).where(Ticket.linked_ticket_id.in_(ids)).values(linked_ticket_id=None))
    blobs = set()
    if spool_ids:
        blobs = set(s.execute(select(SpoolEntry.sha256).where(SpoolEntry.id.in_(spool_ids),
                                                              SpoolEntry.raw.is_(None))).scalars())
        s.execute(update(OutboxRow).where(OutboxRow.source_spool_id.in_(spool_ids)).values(source_spool_id=None))
        s.execute(delete(SpoolEntry).where(SpoolEntry.id.in_(spool_ids)))
    s.execute(delete(Ticket).where(Ticket.id.in_(ids)))
    return shas, blobs


def closed_before(s, cutoff) -> list[int]:
    """The ids of the tickets closed before `cutoff`."""
    return list(s.execute(select(Ticket.id).where(Ticket.status == "closed", Ticket.closed_at < cutoff)).scalars())


def unfiled_before(s, statuses, cutoff) -> list[tuple[int, str, bool]]:
    """(id, sha256, bytes in the blob store) of spool rows in `statuses` on no ticket, received before `cutoff`."""
    return list(s.execute(select(SpoolEntry.id, SpoolEntry.sha256, SpoolEntry.raw.is_(None)).where(
        SpoolEntry.status.in_(statuses), SpoolEntry.ticket_id.is_(None),
        SpoolEntry.received_at < cutoff)).all())


def delete_spool_rows(s, ids: list[int]) -> None:
    """Remove these spool rows; the mail queued from them and messages stored from them stay, unlinked."""
    s.execute(update(OutboxRow).where(OutboxRow.source_spool_id.in_(ids)).values(source_spool_id=None))
    s.execute(update(Message).where(Message.spool_id.in_(ids)).values(spool_id=None))
    s.execute(delete(SpoolEntry).where(SpoolEntry.id.in_(ids)))


def raw_kept_before(s, cutoff) -> list[tuple[int, str, bool]]:
    """(id, sha256, bytes in the blob store) of processed spool rows, processed before `cutoff`,
    that still keep their raw bytes."""
    return list(s.execute(select(SpoolEntry.id, SpoolEntry.sha256, SpoolEntry.raw.is_(None)).where(
        SpoolEntry.status.in_(("processed", "duplicate")), SpoolEntry.processed_at < cutoff,
        SpoolEntry.size > 0)).all())


def drop_raw(s, ids: list[int]) -> None:
    # raw = b"" and size 0: "kept no bytes", unlike NULL, which means "in the blob store"
    s.execute(update(SpoolEntry).where(SpoolEntry.id.in_(ids)).values(raw=b"", size=0))


def attachments_only_on_closed_before(s, cutoff) -> set[str]:
    """The attachment files of tickets closed before `cutoff` that no other ticket's message names."""
    closed = select(Ticket.id).where(Ticket.status == "closed", Ticket.closed_at < cutoff)
    shas = set(s.execute(select(AttachmentRow.sha256).join(Message, AttachmentRow.message_id == Message.id)
                         .where(Message.ticket_id.in_(closed))).scalars())
    keep = set(s.execute(select(AttachmentRow.sha256).join(Message, AttachmentRow.message_id == Message.id)
                         .where(AttachmentRow.sha256.in_(shas), Message.ticket_id.notin_(closed))).scalars()) \
        if shas else set()
    return shas - keep
