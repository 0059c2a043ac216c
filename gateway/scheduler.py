"""Timers: the periodic jobs of a running gateway, on apscheduler 3 with a job store in our database.

Owns `JOBS` (what runs, how often), `run_due_jobs(app)` (run every job now: the
pure entry point tests call with a ManualClock) and `start_scheduler(app, kick=)`.

The job store is apscheduler's SQLAlchemyJobStore on the project's database
(its own table, `apscheduler_jobs`), so a restart loses no timer: a job whose
run time passed while the gateway was down runs once at start (coalesced).
Jobs are stored by name only; the App they run with is looked up in this
process's registry, so nothing unpicklable goes into the table.

Several gateway processes may share one database, and apscheduler 3 does not
coordinate schedulers. Each job therefore runs under a Lease row (one runner at
a time across processes) and every job is idempotent by itself (the SLA watch
records each warning/breach once in `sla_marks`, unique per ticket, kind and
deadline, in the same transaction as the mail it causes).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections import Counter
from importlib import import_module

from gateway import rules_sync
from gateway.imap_state import release_lease, take_lease
from storage.db import StorageUnavailable

log = logging.getLogger("supportgw.scheduler")

JOBSTORE_TABLE = "apscheduler_jobs"
LEASE_SECONDS = 300  # longer than any run; a crashed holder's lease expires after this

# name -> ("module:function" taking the app, default interval in seconds). A job
# whose module is not there (a capability not built yet) is skipped, not fatal.
JOBS: dict[str, tuple[str, float]] = {
    "sla-watch": ("gateway.sla:run_sla_watch", 60.0),
    "pending-reminders": ("gateway.pending:run_pending_reminders", 300.0),
    "weekly-report": ("gateway.weekly_report:run_weekly_report", 600.0),
    "retention": ("gateway.retention:run_retention", 3600.0),
}

_registry: dict[str, dict] = {}  # app key -> {"app": App, "kick": callable}


def app_key(app) -> str:
    """Names the database, not the process: a job stored by one process runs in the next."""
    return hashlib.sha256(app.db.url.encode()).hexdigest()[:16]


def _resolve(ref: str):
    module, _, name = ref.partition(":")
    try:
        return getattr(import_module(module), name)
    except (ImportError, AttributeError):
        return None


def interval_of(app, name: str) -> float:
    if name == "sla-watch":
        return float(app.config.workflow.sla_check_seconds)
    return JOBS[name][1]


def run_job(app, name: str) -> Counter | None:
    """Run one job under its lease; None when another process holds it or the job is not built."""
    func = _resolve(JOBS[name][0])
    if func is None:
        return None
    holder = f"{app.worker_id}/{uuid.uuid4().hex[:8]}"  # unique per run: two Apps in one process differ
    lease = f"job:{name}"
    try:
        if not take_lease(app, lease, holder, LEASE_SECONDS):
            return None
    except StorageUnavailable as exc:
        log.warning("job %s: database busy, next time: %s", name, exc)
        return None
    try:
        rules_sync.follow(app)  # the SLA watch counts with the rules the workers route by
        return func(app)
    finally:
        try:
            release_lease(app, lease, holder)
        except StorageUnavailable:
            pass  # it expires by itself


def run_due_jobs(app, names=None) -> dict[str, Counter | None]:
    """Run every job (or `names`) once now; what each did, None for skipped."""
    return {name: run_job(app, name) for name in (names or JOBS)}


def tick(key: str, name: str) -> None:
    """The callable apscheduler stores (by reference) and calls."""
    entry = _registry.get(key)
    if entry is None:
        log.warning("job %s: no gateway for this database in this process", name)
        return
    try:
        result = run_job(entry["app"], name)
    except Exception:
        log.exception("job %s failed; it runs again at its next time", name)
        return
    if result and entry.get("kick"):
        entry["kick"]()  # mail was queued: wake the dispatcher


class Scheduler:
    """A started apscheduler plus this process's registration; `.shutdown(wait=)` stops both."""

    def __init__(self, app, sched, key: str) -> None:
        self.app, self.scheduler, self.key = app, sched, key

    def get_jobs(self):
        return self.scheduler.get_jobs()

    def get_job(self, job_id: str):
        return self.scheduler.get_job(job_id)

    def shutdown(self, wait: bool = True) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=wait)
        entry = _registry.get(self.key)
        if entry is not None and entry["app"] is self.app:
            _registry.pop(self.key, None)


def make_jobstore(app):
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

    return SQLAlchemyJobStore(engine=app.db.engine, tablename=JOBSTORE_TABLE)


def start_scheduler(app, kick=None, *, paused: bool = False) -> Scheduler:
    """Start the jobs of `JOBS` from the persistent store (adding the missing ones)."""
    from apscheduler.schedulers.background import BackgroundScheduler

    key = app_key(app)
    _registry[key] = {"app": app, "kick": kick}
    sched = BackgroundScheduler(
        jobstores={"default": make_jobstore(app)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        timezone="UTC",
    )
    sched.start(paused=paused)
    for name in JOBS:
        if _resolve(JOBS[name][0]) is None:
            continue
        seconds = interval_of(app, name)
        job = sched.get_job(name)
        # An existing job keeps its next run time (a restart loses no timer) unless its
        # interval changed in the configuration.
        if job is not None and getattr(job.trigger, "interval", None) is not None \
                and job.trigger.interval.total_seconds() == seconds and tuple(job.args) == (key, name):
            continue
        sched.add_job("gateway.scheduler:tick", "interval", seconds=seconds, args=(key, name), id=name,
                      name=name, replace_existing=True)
    return Scheduler(app, sched, key)
