"""The scheduler: jobs persist in the database's job store across restarts, run under a
lease, and act once however often and from however many processes they run."""

from __future__ import annotations

import logging
import pickle
import sqlite3
import threading
import time

import pytest
from sqlalchemy import event, text

from gateway.jobs import scheduler, sla
from gateway.app import build_app
from gateway.clock import ManualClock
from gateway.leases import take_lease
from tests.sla_kit import BOB, CAROL, copies, mails, marks, new_ticket, ticket, utc

DUE = utc(2026, 3, 2, 3, 0)  # the first response of a Big Bank P2 ticket opened Monday 09:00 Shanghai


@pytest.fixture
def clock():
    return ManualClock(utc(2026, 3, 2, 1, 0))


def test_run_due_jobs_twice_escalates_once(make_app, clock):
    app = make_app(clock=clock)
    tid = new_ticket(app)
    clock.set(DUE)
    first = scheduler.run_due_jobs(app)
    second = scheduler.run_due_jobs(app)
    sla.run_sla_watch(app)  # and once more without the lease
    assert first["sla-watch"]["handover"] == 1 and second["sla-watch"]["handover"] == 0
    assert sorted(copies(app, "handover")) == sorted([BOB, CAROL])  # one handover: the secondary's and the manager's copy
    assert len(mails(app, "customer_takeover")) == 1
    assert [m.kind for m in marks(app, tid)] == ["first_response_breach"]


def _twin(app, clock):
    """A second gateway process on the same database: its own App, engine and pool."""
    return build_app(app.config, clock=clock, migrate=False)


@pytest.mark.parametrize("entry", ["run_due_jobs", "check_ticket"])
def test_two_processes_at_once_escalate_once(make_app, clock, entry):
    app = make_app(clock=clock)
    other = _twin(app, clock)
    try:
        tids = [new_ticket(app, subject=f"Batch {i} is slow") for i in range(5)]
        clock.set(DUE)
        barrier = threading.Barrier(2)
        errors = []

        def run(a):
            try:
                barrier.wait()
                if entry == "run_due_jobs":
                    scheduler.run_due_jobs(a, ["sla-watch"])
                else:  # no lease: only the unique SLA marks stand between two runs
                    for tid in tids:
                        try:
                            sla.check_ticket(a, tid)
                        except Exception as exc:  # the loser's IntegrityError / busy database
                            errors.append(type(exc).__name__)
            except Exception as exc:
                errors.append(repr(exc))

        threads = [threading.Thread(target=run, args=(a,)) for a in (app, other)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert all(e in ("IntegrityError", "StorageUnavailable") for e in errors), errors
        sla.run_sla_watch(app)  # whatever was skipped as busy is done now, still once
        # once per ticket: two copies each (the secondary's and the manager's), never more
        assert sorted((r.ticket_id, r.envelope_to[0]) for r in mails(app, "handover")) == \
            sorted((tid, who) for tid in tids for who in (BOB, CAROL))
        for tid in tids:
            assert [m.kind for m in marks(app, tid)] == ["first_response_breach"]
            assert ticket(app, tid).handler == BOB
    finally:
        other.db.dispose()


def test_a_job_whose_lease_is_held_elsewhere_does_not_run(make_app, clock):
    app = make_app(clock=clock)
    new_ticket(app)
    clock.set(DUE)
    assert take_lease(app, "job:sla-watch", "other-host:1/abc", 300)
    assert scheduler.run_due_jobs(app, ["sla-watch"])["sla-watch"] is None
    assert not mails(app, "handover")
    clock.advance(seconds=301)  # the other holder died: its lease expires
    assert scheduler.run_due_jobs(app, ["sla-watch"])["sla-watch"]["handover"] == 1


def test_jobs_survive_a_restart_in_the_database_job_store(make_app, clock):
    app = make_app(clock=clock, workflow={"sla_check_seconds": 3600})
    sched = scheduler.start_scheduler(app, kick=None, paused=True)
    job = sched.get_job("sla-watch")
    assert job is not None and job.next_run_time is not None
    first_run = job.next_run_time
    sched.shutdown(wait=False)

    with app.db.engine.connect() as conn:  # it is in our database, not in memory
        ids = set(conn.execute(text(f"SELECT id FROM {scheduler.JOBSTORE_TABLE}")).scalars())
    assert {"sla-watch", "pending-reminders"} <= ids

    restarted = _twin(app, clock)  # a new process: new App, same database
    try:
        tid = new_ticket(restarted)
        kicked = []
        sched2 = scheduler.start_scheduler(restarted, kick=lambda: kicked.append(1), paused=True)
        job = sched2.get_job("sla-watch")
        assert job.next_run_time == first_run  # the pending timer kept its time
        clock.set(DUE)
        job.func(*job.args)  # what apscheduler calls when the time comes
        assert ticket(restarted, tid).handler == BOB and kicked == [1]
        sched2.shutdown(wait=False)
    finally:
        restarted.db.dispose()


def test_a_job_stored_under_its_old_module_path_is_replaced_not_fatal(make_app, clock):
    """A database written before gateway/ had sub-packages names `gateway.scheduler:tick`, a module
    that no longer exists (here a name that never did: an editable install of an older checkout
    may still provide the old one)."""
    app = make_app(clock=clock)
    scheduler.start_scheduler(app, paused=True).shutdown(wait=False)
    with app.db.engine.begin() as conn:
        for job_id, state in list(conn.execute(text(f"SELECT id, job_state FROM {scheduler.JOBSTORE_TABLE}"))):
            job_state = pickle.loads(state)
            assert job_state["func"] == "gateway.jobs.scheduler:tick"
            stale = pickle.dumps({**job_state, "func": "gateway.moved_away_scheduler:tick"})
            conn.execute(text(f"UPDATE {scheduler.JOBSTORE_TABLE} SET job_state = :s WHERE id = :i"),
                         {"s": stale, "i": job_id})
    sched = scheduler.start_scheduler(app, paused=True)
    try:
        assert sched.get_job("sla-watch").func_ref == "gateway.jobs.scheduler:tick"
    finally:
        sched.shutdown(wait=False)


def test_changed_interval_reschedules_the_job(make_app, clock):
    app = make_app(clock=clock, workflow={"sla_check_seconds": 3600})
    scheduler.start_scheduler(app, paused=True).shutdown(wait=False)
    app.config.workflow.sla_check_seconds = 120
    sched = scheduler.start_scheduler(app, paused=True)
    assert sched.get_job("sla-watch").trigger.interval.total_seconds() == 120
    sched.shutdown(wait=False)


def test_gateway_runs_the_scheduler_and_stops_it(make_app, clock):
    from gateway.runtime.runner import Gateway

    app = make_app(clock=clock)
    gw = Gateway(app, smtp=False, imap=False, scheduler=True).start()
    try:
        assert gw.scheduler is not None and gw.scheduler.scheduler.running
        assert gw.scheduler.get_job("sla-watch") is not None
    finally:
        gw.stop()
    assert not gw.scheduler.scheduler.running


def _wait(cond, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def test_scheduler_outlives_a_database_locked_past_its_busy_timeout(make_app, caplog):
    """apscheduler's thread used to die on "database is locked" from its job store's
    update_job, and every timer stopped for good while the gateway kept running."""
    app = make_app(workflow={"sla_check_seconds": 0.5})
    if not app.db.is_sqlite:
        pytest.skip("the lock held here is SQLite's database-wide write lock")
    # A short busy timeout so that the lock outlasts it within seconds, not minutes.
    event.listen(app.db.engine, "connect", lambda c, _r: c.execute("PRAGMA busy_timeout=50"))
    app.db.engine.dispose()
    sched = scheduler.start_scheduler(app)
    try:
        assert _wait(lambda: scheduler.last_run(app, "sla-watch") is not None, 10)
        locker = sqlite3.connect(app.db.url.split("///", 1)[1], isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")  # another writer holds the database
        try:
            with caplog.at_level(logging.WARNING, logger="supportgw.scheduler"):
                time.sleep(3.0)  # six periods, every write of the job store and the lease refused
                assert sched.scheduler._thread.is_alive()
                late = sched.check_health()
            assert "sla-watch" in late and "pending-reminders" not in late
            assert any(r.levelno == logging.ERROR and "HEALTH: job sla-watch" in r.getMessage()
                       for r in caplog.records)
        finally:
            locker.rollback()
            locker.close()
        stuck_since = scheduler.last_run(app, "sla-watch")
        assert _wait(lambda: scheduler.last_run(app, "sla-watch") != stuck_since, 15), \
            "the SLA watch never ran again after the lock was released"
        assert sched.check_health() == {}
    finally:
        sched.shutdown(wait=False)
