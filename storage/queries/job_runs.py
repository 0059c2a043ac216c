"""What the scheduler's jobs have done (`JobRun` rows, one per job and due key)."""

from __future__ import annotations

from sqlalchemy import select

from storage.models import JobRun


def done(session, job: str, due_key: str) -> bool:
    return session.execute(select(JobRun.id).where(JobRun.job == job, JobRun.due_key == due_key)).first() is not None


# One row per job, (ALIVE_PREFIX + job, ALIVE_KEY): when it last ran to the end, or when a
# scheduler that runs it started, whichever is later. The health checks read it, so every
# process on the database sees a stuck job (gateway/edges/health.py check_jobs).
ALIVE_PREFIX = "alive:"
ALIVE_KEY = "last"


def mark_alive(session, job: str, at, holder: str) -> None:
    row = session.execute(select(JobRun).where(JobRun.job == ALIVE_PREFIX + job,
                                               JobRun.due_key == ALIVE_KEY)).scalar_one_or_none()
    if row is None:
        session.add(JobRun(job=ALIVE_PREFIX + job, due_key=ALIVE_KEY, at=at, holder=holder))
    else:
        row.at, row.holder = at, holder


def alive_since(session, jobs) -> dict[str, object]:
    """job -> when it was last known to be looked after (see mark_alive), for those of `jobs` known."""
    rows = session.execute(select(JobRun.job, JobRun.at).where(JobRun.job.in_([ALIVE_PREFIX + j for j in jobs]),
                                                               JobRun.due_key == ALIVE_KEY)).all()
    return {job[len(ALIVE_PREFIX):]: at for job, at in rows}
