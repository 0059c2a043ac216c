"""Is the gateway alive and able to work? The checks behind /readyz and `supportgw health`.

`readiness(app)` returns a dict that a person on call can read: `ok` overall, and
one entry per check with its own `ok` and, when not ok, `problem` saying what is
wrong and where to look. Every check reads the database (not this process's
memory), so the command line, any web process and any gateway on the same
database give the same answer.

Checks: the database answers; the spool backlog and its oldest message's age;
each configured IMAP mailbox's last good sync, last error and lease holder;
outbox rows failed lately and rows overdue (the dispatcher stuck); the scheduled
jobs, once a scheduler has run on the database (a job not run for HEALTH_PERIODS
of its periods: SLA warnings, reminders, reports not being done); and, where
another part of the gateway provides one, its own health hook (OPTIONAL_HOOKS:
the spam engine, the OAuth 2.0 tokens).

Owns no state and sends nothing.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from gateway.handlers.spam_verdict import health as spam_health
from gateway.jobs.scheduler import HEALTH_PERIODS, JOBS, interval_of
from gateway.oauth.tokens import health as oauth_health
from storage.db import StorageUnavailable
from storage.models import ImapState, Lease
from storage.queries import gauges, job_runs

# name -> (function(app) -> str | dict | None, config section): a str containing "DOWN" or
# "expired" is a problem; a dict carries its own "ok"; None says nothing of that part is set up.
# A hook whose section is absent from the configuration is not asked ("": always asked).
OPTIONAL_HOOKS: dict[str, tuple] = {
    "spam_engine": (spam_health, "spam"),
    "oauth": (lambda app: oauth_health(app.config), ""),
}


def _age(now, then) -> float | None:
    return None if then is None else max(0.0, (now - then).total_seconds())


def check_database(app) -> dict:
    try:
        with app.db.session() as s:
            s.execute(text("SELECT 1"))
        return {"ok": True}
    except Exception as exc:  # whatever the driver raises, the answer is "not reachable"
        return {"ok": False, "problem": f"database unreachable: {type(exc).__name__}: {str(exc)[:300]}"}


def check_spool(app, s, now) -> dict:
    limit = app.config.health.spool_max_age_seconds
    pending, oldest = gauges.spool_pending(s)
    quarantined = gauges.spool_count(s, "quarantined")
    age = _age(now, oldest)
    out = {"ok": True, "pending": pending, "oldest_pending_seconds": age, "quarantined": quarantined}
    if age is not None and age > limit:
        out.update(ok=False, problem=f"{pending} message(s) wait in the spool, the oldest for {age:.0f}s "
                                     f"(over health.spool_max_age_seconds = {limit}): are the worker "
                                     "processes running? 'supportgw quarantine list' shows failed ones")
    return out


def check_imap(app, s, now) -> dict:
    boxes = {}
    for mb in app.config.imap:
        state = s.get(ImapState, mb.name)
        lease = s.get(Lease, f"imap:{mb.name}")
        holder = lease.holder if lease is not None and lease.expires_at >= now else ""
        limit = app.config.health.imap_max_sync_age_seconds or (3 * mb.poll_interval + 60)
        age = _age(now, state.synced_at if state else None)
        box = {"ok": True, "last_sync_seconds": age, "lease_holder": holder,
               "last_error": state.last_error if state else ""}
        if not holder:
            box.update(ok=False, problem=f"mailbox {mb.name}: no gateway holds its lease, nobody reads it")
        elif age is None or age > limit:
            box.update(ok=False, problem=f"mailbox {mb.name}: no good sync for "
                                         f"{'ever' if age is None else f'{age:.0f}s'} (limit {limit:g}s)"
                                         + (f"; last error: {box['last_error']}" if box["last_error"] else ""))
        boxes[mb.name] = box
    return {"ok": all(b["ok"] for b in boxes.values()), "mailboxes": boxes,
            **({"problem": "; ".join(b["problem"] for b in boxes.values() if not b["ok"])}
               if not all(b["ok"] for b in boxes.values()) else {})}


def check_outbox(app, s, now) -> dict:
    window = app.config.health.outbox_failed_window_minutes
    failed = gauges.outbox_failed_since(s, now - timedelta(minutes=window))
    overdue_since = gauges.outbox_oldest_due(s)
    overdue = _age(now, overdue_since)
    out = {"ok": True, "failed_recently": failed, "oldest_due_seconds": overdue}
    problems = []
    if failed:  # a warning, not "not ready": one dead address must not page anyone at 3 a.m.
        out["warning"] = (f"{failed} outbound mail(s) failed for good in the last {window} minutes "
                          "('supportgw outbox list' shows why)")
    if overdue is not None and overdue > app.config.health.spool_max_age_seconds:
        problems.append(f"an outbound mail has been due for {overdue:.0f}s: is the dispatcher running, "
                        "is the relay reachable?")
    if problems:
        out.update(ok=False, problem="; ".join(problems))
    return out


def check_jobs(app, s, now) -> dict | None:
    """None until a scheduler has run on this database (nothing to say about timers nobody started)."""
    alive = job_runs.alive_since(s, JOBS)
    if not alive:
        return None
    ages = {name: _age(now, alive[name]) for name in JOBS if name in alive}
    late = {name: age for name, age in ages.items() if age > HEALTH_PERIODS * interval_of(app, name)}
    out = {"ok": not late, "last_run_seconds": ages}
    if late:
        out["problem"] = "; ".join(
            f"job {name} has not run for {age:.0f}s ({HEALTH_PERIODS} of its {interval_of(app, name):g}s "
            "periods)" for name, age in sorted(late.items())) + \
            ": its work (SLA warnings, reminders, reports) is not being done; is a gateway running, " \
            "and what do its 'job ...' log lines say?"
    return out


def check_hook(app, name: str) -> dict | None:
    hook, section = OPTIONAL_HOOKS[name]
    if section and not hasattr(app.config, section):
        return None  # that part is not configured in this gateway
    try:
        try:
            result = hook(app, probe=True)
        except TypeError:
            result = hook(app)
    except Exception as exc:
        return {"ok": False, "problem": f"{name}: health check failed: {type(exc).__name__}: {exc}"}
    if result is None:
        return None  # nothing of that part is configured here
    if isinstance(result, dict):
        return result
    line = str(result)
    bad = "DOWN" in line or "expired" in line.lower()
    return {"ok": not bad, "detail": line, **({"problem": line} if bad else {})}


def readiness(app) -> dict:
    """Every check; `ok` is true only when all are."""
    checks: dict = {"database": check_database(app)}
    if checks["database"]["ok"]:
        now = app.now()
        try:
            with app.db.session() as s:
                found = {"spool": check_spool(app, s, now)}
                if app.config.imap:
                    found["imap"] = check_imap(app, s, now)
                found["outbox"] = check_outbox(app, s, now)
                jobs = check_jobs(app, s, now)
                if jobs is not None:
                    found["jobs"] = jobs
            checks.update(found)
        except (DBAPIError, StorageUnavailable) as exc:  # it answers but is not ours: not migrated, its file removed
            checks["database"] = {"ok": False, "problem": f"database unusable: {type(exc).__name__}: {str(exc)[:300]}"}
    for name in OPTIONAL_HOOKS:
        result = check_hook(app, name)
        if result is not None:
            checks[name] = result
    problems = [f"{name}: {c['problem']}" for name, c in checks.items() if not c.get("ok", True)]
    warnings = [f"{name}: {c['warning']}" for name, c in checks.items() if c.get("warning")]
    return {"ok": not problems, "problems": problems, "warnings": warnings, "checks": checks,
            "at": app.now().isoformat()}


def render_text(report: dict) -> str:
    """The command line's view: one line per check, problems spelt out."""
    lines = [f"supportgw health: {'OK' if report['ok'] else 'NOT READY'}"]
    for name, c in report["checks"].items():
        state = "ok" if c.get("ok", True) else "PROBLEM"
        facts = ", ".join(f"{k}={_fmt(v)}" for k, v in c.items()
                          if k not in ("ok", "problem", "warning", "mailboxes", "detail", "last_run_seconds"))
        lines.append(f"  {name:<13} {state}" + (f"  ({facts})" if facts else ""))
        for box, b in (c.get("mailboxes") or {}).items():
            lines.append(f"    {box}: {'ok' if b['ok'] else 'PROBLEM'}, last sync {_fmt(b['last_sync_seconds'])}s ago, "
                         f"lease {b['lease_holder'] or '(nobody)'}")
        if c.get("last_run_seconds"):
            lines.append("    last run: " + ", ".join(f"{job} {_fmt(age)}s ago"
                                                     for job, age in c["last_run_seconds"].items()))
        if c.get("detail"):
            lines.append(f"    {c['detail']}")
        if not c.get("ok", True):
            lines.append(f"    -> {c['problem']}")
        if c.get("warning"):
            lines.append(f"    !  {c['warning']}")
    return "\n".join(lines)


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.0f}"
    return str(v)
