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

from sqlalchemy.exc import IntegrityError

from storage.models import AuditEntry, JobRun
from storage.queries import files, retention as aged

log = logging.getLogger("supportgw.retention")


def _unlink_unnamed(s, store, shas: set[str], *, spool: bool) -> int:
    if not shas:
        return 0
    named = files.still_named(s, shas, spool=spool)
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
            ids = aged.closed_before(s, now - timedelta(days=cfg.closed_tickets_days))
            counts["closed_tickets_removed"] = len(ids)
            if not dry_run:
                shas, blobs = aged.delete_tickets(s, ids)
                s.flush()
                counts["files_removed"] += _unlink_unnamed(s, app.attachments, shas, spool=False)
                counts["files_removed"] += _unlink_unnamed(s, app.spool_blobs, blobs, spool=True)
        for status_days, statuses, key in ((cfg.quarantined_days, ("quarantined", "dropped"), "quarantined_removed"),
                                           (cfg.suspended_days, ("suspended",), "suspended_removed")):
            if not status_days:
                continue
            rows = aged.unfiled_before(s, statuses, now - timedelta(days=status_days))
            counts[key] = len(rows)
            if rows and not dry_run:
                ids = [r[0] for r in rows]
                aged.delete_spool_rows(s, ids)
                s.flush()
                counts["files_removed"] += _unlink_unnamed(s, app.spool_blobs, {r[1] for r in rows if r[2]}, spool=True)
        if cfg.spool_raw_days:
            rows = aged.raw_kept_before(s, now - timedelta(days=cfg.spool_raw_days))
            counts["spool_raw_removed"] = len(rows)
            if rows and not dry_run:
                aged.drop_raw(s, [r[0] for r in rows])
                s.flush()
                counts["files_removed"] += _unlink_unnamed(s, app.spool_blobs, {r[1] for r in rows if r[2]}, spool=True)
        if cfg.attachments_days:
            gone = [sha for sha in aged.attachments_only_on_closed_before(s, now - timedelta(days=cfg.attachments_days))
                    if app.attachments.path_for(sha).exists()]
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
