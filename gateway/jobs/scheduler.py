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

A database that stays locked past its busy timeout (another writer, a long
transaction) must not stop the timers: apscheduler 3 lets an error from its job
store's `update_job` or `get_next_run_time` end its scheduling thread for good,
so `_ResilientScheduler` catches whatever one round of scheduling raises and
tries again shortly. Every run that did its work (or found another process
holding the job) is recorded per job; `Scheduler.check_health()`, called by the
runner's main loop, logs an ERROR for every job that has not run for
`HEALTH_PERIODS` of its periods, and again each period while it stays so. Each
good run (and each scheduler's start) is also written to the database
(`job_runs.mark_alive`), so `supportgw health`, /readyz and /metrics in any
process report a job that has stopped running.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections import Counter
from importlib import import_module

from sqlalchemy.exc import IntegrityError

from gateway import rules_sync
from gateway.leases import release_lease, take_lease
from storage.db import StorageUnavailable
from storage.queries import job_runs

log = logging.getLogger("supportgw.scheduler")

JOBSTORE_TABLE = "apscheduler_jobs"
LEASE_SECONDS = 300  # longer than any run; a crashed holder's lease expires after this
RETRY_SECONDS = 10.0  # after a scheduling round failed (locked database), try again this soon
HEALTH_PERIODS = 3  # a job that has not run for this many of its periods is a health failure

# name -> ("module:function" taking the app, default interval in seconds). A job
# whose module is not there (a capability not built yet) is skipped, not fatal.
JOBS: dict[str, tuple[str, float]] = {
    "sla-watch": ("gateway.jobs.sla:run_sla_watch", 60.0),
    "pending-reminders": ("gateway.jobs.pending:run_pending_reminders", 300.0),
    "weekly-report": ("gateway.jobs.weekly_report:run_weekly_report", 600.0),
    "suspended-care": ("gateway.jobs.suspend_jobs:run_suspended_care", 3600.0),
    "retention": ("gateway.jobs.retention:run_retention", 3600.0),
}

_registry: dict[str, dict] = {}  # app key -> {"app": App, "kick": callable}
_last_ok: dict[tuple[str, str], float] = {}  # (app key, job) -> monotonic time of its last good run
_last_ok_lock = threading.Lock()


def app_key(app) -> str:
    """Names the database, not the process: a job stored by one process runs in the next."""
    return hashlib.sha256(app.db.url.encode()).hexdigest()[:16]


class UnknownJob(LookupError):
    """A job reference that names no function: a mistake in JOBS, never skipped quietly."""


def _resolve(ref: str):
    module, _, name = ref.partition(":")
    try:
        return getattr(import_module(module), name)
    except AttributeError:
        raise UnknownJob(f"scheduler job {ref!r}: {module} has no {name}") from None


def interval_of(app, name: str) -> float:
    if name == "sla-watch":
        return float(app.config.workflow.sla_check_seconds)
    return JOBS[name][1]


def run_job(app, name: str) -> Counter | None:
    """Run one job under its lease; None when another process holds it or the job is not built."""
    func = _resolve(JOBS[name][0])
    holder = f"{app.worker_id}/{uuid.uuid4().hex[:8]}"  # unique per run: two Apps in one process differ
    lease = f"job:{name}"
    try:
        if not take_lease(app, lease, holder, LEASE_SECONDS):
            _ran(app, name)  # another process is running it: the job is alive
            return None
    except StorageUnavailable as exc:
        log.warning("job %s: database busy, next time: %s", name, exc)
        return None
    try:
        rules_sync.follow(app)  # the SLA watch counts with the rules the workers route by
        result = func(app)
        _ran(app, name)
        _mark_alive(app, [name])
        return result
    finally:
        try:
            release_lease(app, lease, holder)
        except StorageUnavailable:
            pass  # it expires by itself


def _ran(app, name: str) -> None:
    with _last_ok_lock:
        _last_ok[(app_key(app), name)] = time.monotonic()


def _mark_alive(app, names) -> None:
    """Tell every process on the database that these jobs are looked after as of now (their
    last good run, or a scheduler's start): `supportgw health` and /readyz read it. Only a
    record: a busy database, or another gateway writing the same row first, loses nothing."""
    try:
        with app.db.write_lock(), app.db.session() as s:
            for name in names:
                job_runs.mark_alive(s, name, app.now(), app.worker_id)
    except (StorageUnavailable, IntegrityError) as exc:
        log.debug("jobs %s: health record not written (%s)", ", ".join(names), type(exc).__name__)


def last_run(app, name: str) -> float | None:
    """When (time.monotonic()) `name` last ran to the end in this process, or found it held elsewhere."""
    with _last_ok_lock:
        return _last_ok.get((app_key(app), name))


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

    def __init__(self, app, sched, key: str, names: list[str]) -> None:
        self.app, self.scheduler, self.key, self.names = app, sched, key, names
        self.started = time.monotonic()
        self._reported: dict[str, float] = {}  # job -> when its overdue state was last logged

    def overdue(self, now: float | None = None) -> dict[str, float]:
        """Jobs that have not run for `HEALTH_PERIODS` of their periods: name -> seconds since."""
        now = time.monotonic() if now is None else now
        late = {}
        for name in self.names:
            since = now - (last_run(self.app, name) or self.started)
            if since > HEALTH_PERIODS * interval_of(self.app, name):
                late[name] = since
        return late

    def check_health(self, now: float | None = None) -> dict[str, float]:
        """Log every overdue job loudly (once per period while it stays overdue); returns `overdue()`."""
        now = time.monotonic() if now is None else now
        late = self.overdue(now)
        for name, since in late.items():
            if now - self._reported.get(name, float("-inf")) >= interval_of(self.app, name):
                self._reported[name] = now
                log.error("HEALTH: job %s has not run for %.0f s (%d of its %.0f s periods): its work "
                          "(SLA warnings, reminders, reports) is not being done; see the warnings above",
                          name, since, int(since // interval_of(self.app, name)), interval_of(self.app, name))
        for name in [n for n in self._reported if n not in late]:
            del self._reported[name]
            log.warning("HEALTH: job %s runs again", name)
        return late

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


def _resilient_scheduler_class():
    from apscheduler.schedulers.background import BackgroundScheduler

    class _ResilientScheduler(BackgroundScheduler):
        """One failed round of scheduling (a locked database) is logged and retried, never fatal."""

        retry_seconds = RETRY_SECONDS

        def _process_jobs(self):
            try:
                return super()._process_jobs()
            except Exception as exc:  # the job store's update_job/get_next_run_time: not caught upstream
                log.warning("scheduler: job store failed (%s); trying again in %.0f s", exc, self.retry_seconds)
                return self.retry_seconds

    return _ResilientScheduler


def start_scheduler(app, kick=None, *, paused: bool = False) -> Scheduler:
    """Start the jobs of `JOBS` from the persistent store (adding the missing ones)."""
    key = app_key(app)
    _registry[key] = {"app": app, "kick": kick}
    names = list(JOBS)
    for name in names:
        _resolve(JOBS[name][0])  # every job exists, or the gateway does not start
    sched = _resilient_scheduler_class()(
        jobstores={"default": make_jobstore(app)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        timezone="UTC",
        jobstore_retry_interval=min([RETRY_SECONDS, *(interval_of(app, n) for n in names)]),
    )
    sched.retry_seconds = sched.jobstore_retry_interval
    sched.start(paused=paused)
    if not paused:
        _mark_alive(app, names)  # a gateway back after a long stop is not "stuck" before its first run
    for name in names:
        seconds = interval_of(app, name)
        try:
            job = sched.get_job(name)
        except LookupError as exc:
            # stored by an older gateway under a path that moved (gateway.scheduler:tick, before
            # gateway/ had sub-packages): replaced below, with a fresh timer
            log.info("scheduler: stored job %s cannot be restored (%s); adding it again", name, exc)
            job = None
        # An existing job keeps its next run time (a restart loses no timer) unless its
        # interval changed in the configuration.
        if job is not None and getattr(job.trigger, "interval", None) is not None \
                and job.trigger.interval.total_seconds() == seconds and tuple(job.args) == (key, name):
            continue
        sched.add_job("gateway.jobs.scheduler:tick", "interval", seconds=seconds, args=(key, name), id=name,
                      name=name, replace_existing=True)
    return Scheduler(app, sched, key, names)
