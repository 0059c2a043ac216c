"""The [retention] periods, applied by a nightly job and `supportgw retention run`.

- spool_raw_days: the raw bytes of processed spool rows (the row and the
  ticket's stored text stay; a customer export rebuilds such a mail from the text).
- attachments_days: attachment files of tickets closed that long ago (the
  attachment rows stay, so a ticket still says what was attached).
- closed_tickets_days: tickets closed that long ago, removed whole (messages,
  history, outbound mail, survey answers, their spool rows); knowledge
  articles made from them stay, unlinked.
- quarantined_days / suspended_days: spool rows in those states (and dropped ones).

0 keeps forever. Each run records what it removed in the audit log (counts
only), which `supportgw retention log` prints and the log line repeats. The
nightly run happens once per day after [retention] time (report timezone),
whichever gateway gets there first.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from storage.models import (
    AttachmentRow, AuditEntry, Event, JobRun, KbArticle, Message, OutboxAttempt, OutboxRow, Participant, SlaMark,
    SpoolEntry, SurveyResponse, ThreadId, Ticket,
)

log = logging.getLogger("supportgw.retention")


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


def _unlink_unnamed(s, store, shas: set[str], *, spool: bool) -> int:
    if not shas:
        return 0
    if spool:
        named = set(s.execute(select(SpoolEntry.sha256).where(SpoolEntry.sha256.in_(shas),
                                                              SpoolEntry.raw.is_(None))).scalars())
    else:
        named = set(s.execute(select(AttachmentRow.sha256).where(AttachmentRow.sha256.in_(shas))).scalars())
    n = 0
    for sha in shas - named:
        try:
            store.path_for(sha).unlink()
            n += 1
        except FileNotFoundError:
            pass
    return n


def apply_retention(app, *, dry_run: bool = False) -> dict:
    """Apply every period now; returns counts (and records them unless dry_run)."""
    cfg, now = app.config.retention, app.now()
    counts = {"spool_raw_removed": 0, "attachment_files_removed": 0, "closed_tickets_removed": 0,
              "quarantined_removed": 0, "suspended_removed": 0, "files_removed": 0}
    with app.db.write_lock(), app.db.session() as s:
        if cfg.closed_tickets_days:
            ids = list(s.execute(select(Ticket.id).where(
                Ticket.status == "closed", Ticket.closed_at < now - timedelta(days=cfg.closed_tickets_days))).scalars())
            counts["closed_tickets_removed"] = len(ids)
            if not dry_run:
                shas, blobs = delete_tickets(s, ids)
                s.flush()
                counts["files_removed"] += _unlink_unnamed(s, app.attachments, shas, spool=False)
                counts["files_removed"] += _unlink_unnamed(s, app.spool_blobs, blobs, spool=True)
        for status_days, statuses, key in ((cfg.quarantined_days, ("quarantined", "dropped"), "quarantined_removed"),
                                           (cfg.suspended_days, ("suspended",), "suspended_removed")):
            if not status_days:
                continue
            rows = list(s.execute(select(SpoolEntry.id, SpoolEntry.sha256, SpoolEntry.raw.is_(None)).where(
                SpoolEntry.status.in_(statuses), SpoolEntry.ticket_id.is_(None),
                SpoolEntry.received_at < now - timedelta(days=status_days))).all())
            counts[key] = len(rows)
            if rows and not dry_run:
                ids = [r[0] for r in rows]
                s.execute(update(OutboxRow).where(OutboxRow.source_spool_id.in_(ids)).values(source_spool_id=None))
                s.execute(update(Message).where(Message.spool_id.in_(ids)).values(spool_id=None))
                s.execute(delete(SpoolEntry).where(SpoolEntry.id.in_(ids)))
                s.flush()
                counts["files_removed"] += _unlink_unnamed(s, app.spool_blobs, {r[1] for r in rows if r[2]}, spool=True)
        if cfg.spool_raw_days:
            old = SpoolEntry.processed_at < now - timedelta(days=cfg.spool_raw_days)
            rows = list(s.execute(select(SpoolEntry.id, SpoolEntry.sha256, SpoolEntry.raw.is_(None)).where(
                SpoolEntry.status.in_(("processed", "duplicate")), old, SpoolEntry.size > 0)).all())
            counts["spool_raw_removed"] = len(rows)
            if rows and not dry_run:
                # raw = b"" and size 0: "kept no bytes", unlike NULL, which means "in the blob store"
                s.execute(update(SpoolEntry).where(SpoolEntry.id.in_([r[0] for r in rows])).values(raw=b"", size=0))
                s.flush()
                counts["files_removed"] += _unlink_unnamed(s, app.spool_blobs, {r[1] for r in rows if r[2]}, spool=True)
        if cfg.attachments_days:
            closed = select(Ticket.id).where(Ticket.status == "closed",
                                             Ticket.closed_at < now - timedelta(days=cfg.attachments_days))
            shas = set(s.execute(select(AttachmentRow.sha256).join(Message, AttachmentRow.message_id == Message.id)
                                 .where(Message.ticket_id.in_(closed))).scalars())
            keep = set(s.execute(select(AttachmentRow.sha256).join(Message, AttachmentRow.message_id == Message.id)
                                 .where(AttachmentRow.sha256.in_(shas), Message.ticket_id.notin_(closed))).scalars()) \
                if shas else set()
            gone = [sha for sha in shas - keep if app.attachments.path_for(sha).exists()]
            counts["attachment_files_removed"] = len(gone)
            if not dry_run:
                for sha in gone:
                    app.attachments.path_for(sha).unlink(missing_ok=True)
        if not dry_run:
            s.add(AuditEntry(at=now, kind="retention", actor="system", data=dict(counts)))
    if not dry_run and any(counts.values()):
        log.info("retention: removed %s", ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items() if v))
    return counts


def run_retention(app):
    """The scheduler's hourly look: once a day, after [retention] time in the report's timezone."""
    from collections import Counter

    cfg = app.config.retention
    local = app.now().astimezone(ZoneInfo(app.config.report.timezone))
    hh, mm = (int(x) for x in cfg.time.split(":"))
    if (local.hour, local.minute) < (hh, mm):
        return Counter()
    try:
        with app.db.write_lock(), app.db.session() as s:
            s.add(JobRun(job="retention", due_key=local.date().isoformat(), at=app.now(), holder=app.worker_id))
    except IntegrityError:
        return Counter()  # today's run happened, here or in another gateway
    apply_retention(app)
    return Counter()  # it sends no mail: nothing for the dispatcher to wake for
