"""What the scheduler's jobs have done (`JobRun` rows, one per job and due key)."""

from __future__ import annotations

from sqlalchemy import select

from storage.models import JobRun


def done(session, job: str, due_key: str) -> bool:
    return session.execute(select(JobRun.id).where(JobRun.job == job, JobRun.due_key == due_key)).first() is not None
