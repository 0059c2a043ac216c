"""Scheduled care of the suspended area: the retention purge and the growth alert.

`run_suspended_care(app)` (scheduler job "suspended-care", hourly):
- purges suspended and dropped messages older than [spam] retention_days, with their
  spool blob files (a file another spool row still names stays);
- when more than [spam] alert_per_hour mails were suspended in the last hour, tells
  [spam] alert_to (or the managers of the rules file) once for that hour: a sudden
  flood is either an attack or a rule suspending real mail, and both need a person.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta

from sqlalchemy.exc import IntegrityError

from gateway import outbox
from storage.models import AuditEntry, JobRun
from storage.queries import spool as spool_rows

log = logging.getLogger("supportgw.suspend")
ALERT_JOB = "suspended_alert"


def run_suspended_care(app) -> Counter:
    counts = Counter(purged=purge(app))
    if alert_if_growing(app):
        counts["alerted"] = 1
    return counts


def purge(app) -> int:
    """Delete what the retention period has passed; returns how many messages went."""
    with app.db.write_lock(), app.db.session() as s:
        old = spool_rows.set_aside_before(s, app.now() - timedelta(days=app.config.spam.retention_days))
        if not old:
            return 0
        ids = [i for i, _, _ in old]
        spool_rows.delete_rows(s, ids)
        # counted where `supportgw retention log` and the weekly report find the other removals
        s.add(AuditEntry(at=app.now(), kind="suspended_purge", actor="system", data={"suspended_removed": len(ids)}))
        files = {sha for _, sha, on_disk in old if on_disk}
        still_named = spool_rows.blobs_still_named(s, files) if files else set()
    for sha in files - still_named:  # after the commit: a crash before it leaves rows, never rows without files
        app.spool_blobs.path_for(sha).unlink(missing_ok=True)
    log.info("suspended area: purged %d message(s) older than %d days", len(ids), app.config.spam.retention_days)
    return len(ids)


def _recipients(app) -> list[str]:
    if app.config.spam.alert_to:
        return [a.lower() for a in app.config.spam.alert_to]
    return sorted(e.email.lower() for e in app.rules.current.engineers.values() if e.manager)


def alert_if_growing(app) -> bool:
    limit = app.config.spam.alert_per_hour
    if not limit:
        return False
    now = app.now()
    since = now - timedelta(hours=1)
    with app.db.session() as s:
        by_reason = spool_rows.set_aside_by_reason(s, processed_since=since)
        total = sum(by_reason.values())
        to = _recipients(app)
        if total <= limit or not to:
            return False
        try:
            with s.begin_nested():
                s.add(JobRun(job=ALERT_JOB, due_key=now.strftime("%Y-%m-%dT%H"), at=now, holder=app.worker_id))
                s.flush()
        except IntegrityError:
            return False  # already told for this hour
        rendered = app.templates.render(
            "suspended_alert", app.config.report.language, total=total, limit=limit,
            by_reason=sorted(by_reason.items(), key=lambda kv: -kv[1]), team_name=app.config.gateway.display_name)
        outbox.alert_managers(app, s, "suspended_alert", rendered, to=to)
    log.warning("suspended area: %d mails in the last hour (alert above %d); told %s", total, limit, ", ".join(to))
    return True


def counts_by_reason(session, start, end) -> dict[str, int]:
    """Suspended mail per reason received in [start, end), for the weekly report."""
    return spool_rows.set_aside_by_reason(session, received=(start, end))
