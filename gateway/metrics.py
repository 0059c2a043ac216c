"""Prometheus metrics: what the gateway counts as it works, and what the database says now.

Two kinds, exposed together at /metrics (gateway/edges/health_web.py):

- Counters and the latency histogram, updated where the work happens, in
  whichever process does it (the edge, or a worker process). Under `supportgw
  run` they live in prometheus-client's multiprocess files under
  <data_dir>/metrics/<host>-<pid> (`prepare_multiprocess()`, called before any
  worker starts), so the web process sums every process's counts, and only
  this gateway's.
- Levels read from the database at scrape time (spool backlog, outbox rows per
  kind and status, SLA warnings and breaches, IMAP sync age, quarantined and
  suspended counts): true for every gateway on the database, and nothing to
  keep in step across processes.

prometheus_client is imported only inside functions: it chooses its storage
(memory or files) when first imported, which must come after
`prepare_multiprocess()`.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

from gateway.leases import process_gone

ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)

SLA_KINDS = ("first_response_warning", "first_response_breach", "resolution_warning", "resolution_breach")

_metrics: dict = {}


def prepare_multiprocess(data_dir: Path) -> Path:
    """Counts from every process of this gateway go to <data_dir>/metrics/<host>-<pid>, a folder
    of this run alone: several gateways on one database share the data_dir (on one host or over
    a network file system), and each must neither empty nor sum the others' files (their names
    are pids, which another host may reuse). Left-overs of this host's runs that ended (a kill,
    a crash) are removed; another host's are its own to remove."""
    if os.environ.get(ENV):
        folder = Path(os.environ[ENV])
    else:
        root = data_dir / "metrics"
        host = _host()
        _remove_ended_runs(root, host)
        folder = root / f"{host}-{os.getpid()}"
        shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    os.environ[ENV] = str(folder)
    from prometheus_client import values

    values.ValueClass = values.get_value_class()  # in case something imported it before
    return folder


def _host() -> str:
    return "".join(c if c.isalnum() or c in "-." else "_" for c in socket.gethostname()) or "host"


def _remove_ended_runs(root: Path, host: str) -> None:
    """This host's folders under `root` whose gateway is no longer running, and loose files of
    releases that counted in `root` itself."""
    if not root.is_dir():
        return
    for entry in root.iterdir():
        if entry.is_file():
            entry.unlink(missing_ok=True)  # (an older release's flat layout)
            continue
        name, _, pid = entry.name.rpartition("-")
        # the leases' test of a holder on this host that no longer runs ("host:pid"; the host
        # here is sanitised, so it has no colon)
        if name == host and pid.isdigit() and process_gone(f"{host}:{pid}", f"{host}:{os.getpid()}"):
            shutil.rmtree(entry, ignore_errors=True)


def _m() -> dict:
    if _metrics:
        return _metrics
    from prometheus_client import CollectorRegistry, Counter, Histogram

    # Multiprocess: the metrics write to files and must not sit in a registry; otherwise
    # a private registry, so two test apps in one process never clash on a name.
    registry = None if os.environ.get(ENV) else CollectorRegistry()
    _metrics.update(
        registry=registry,
        messages=Counter("supportgw_messages_total", "Inbound messages processed, per source and outcome",
                         ["source", "outcome"], registry=registry),
        latency=Histogram("supportgw_processing_latency_seconds",
                          "From spooled to processed (committed as ticket, follow-up, quarantine...)",
                          buckets=LATENCY_BUCKETS, registry=registry),
        outbox=Counter("supportgw_outbox_attempts_total", "Outbound delivery attempts, per kind and result",
                       ["kind", "result"], registry=registry),
    )
    return _metrics


def source_label(source: str) -> str:
    """'imap:helpdesk' stays (a handful of mailboxes); anything unforeseen is 'other'."""
    if source in ("smtp", "file", "cli") or source.startswith("imap:"):
        return source[:60]
    return "other"


def count_processed(entry, outcome: str, now) -> None:
    """Note a spool row's outcome; it is counted once its session commits (a rolled-back
    batch, tried again later, counts nothing)."""
    from sqlalchemy.orm import object_session

    session = object_session(entry)
    latency = (now - entry.received_at).total_seconds() if entry.received_at else None
    if session is None:
        observe_processed([(entry.source, outcome, latency)])
        return
    _listen()
    # by row: a savepoint rolled back after "processed" and then "quarantined" counts once
    session.info.setdefault(_PENDING, {})[entry.id] = (entry.source, outcome, latency)


_PENDING = "supportgw.metrics.processed"
_listening: list = []


def _listen() -> None:
    if _listening:
        return
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    @event.listens_for(Session, "after_commit")
    def _committed(session):
        done = session.info.pop(_PENDING, None)
        if done:
            observe_processed(done.values())

    @event.listens_for(Session, "after_rollback")
    def _rolled_back(session):
        session.info.pop(_PENDING, None)

    _listening.append(True)


def observe_processed(results) -> None:
    """(source, outcome, latency seconds) of messages whose transaction committed."""
    m = _m()
    for source, outcome, latency in results:
        if outcome == "deferred":
            continue  # not processed yet; it is counted when it is
        m["messages"].labels(source_label(source), outcome).inc()
        if latency is not None:
            m["latency"].observe(max(0.0, latency))


def observe_delivery(kind: str, result: str) -> None:
    """result: sent | retry | failed."""
    _m()["outbox"].labels(kind or "unknown", result).inc()


class DatabaseCollector:
    """Levels read from the database at each scrape."""

    def __init__(self, app) -> None:
        self.app = app

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily
        from gateway.jobs.scheduler import JOBS
        from storage.queries import gauges, job_runs

        now = self.app.now()
        with self.app.db.session() as s:
            spool = gauges.spool_by_status(s)
            oldest = gauges.oldest_pending_spool(s)
            outbox = gauges.outbox_by_kind_and_status(s)
            marks = gauges.sla_marks_by_kind(s)
            synced = gauges.mailboxes_synced(s)
            alive = job_runs.alive_since(s, JOBS)
        g = GaugeMetricFamily("supportgw_spool_backlog", "Spooled messages not processed yet")
        g.add_metric([], spool.get("pending", 0))
        yield g
        g = GaugeMetricFamily("supportgw_spool_oldest_pending_seconds", "Age of the oldest unprocessed message")
        g.add_metric([], (now - oldest).total_seconds() if oldest else 0)
        yield g
        g = GaugeMetricFamily("supportgw_spool_messages", "Spool rows per status (quarantined, suspended...)",
                              labels=["status"])
        for status in sorted({"quarantined", "suspended", *spool}):
            g.add_metric([status], spool.get(status, 0))
        yield g
        g = GaugeMetricFamily("supportgw_outbox_messages", "Outbox rows per kind and status", labels=["kind", "status"])
        for kind, status, n in outbox:
            g.add_metric([kind, status], n)
        yield g
        g = GaugeMetricFamily("supportgw_sla_marks", "SLA warnings and breaches recorded, per kind", labels=["kind"])
        marks = {**{k: 0 for k in SLA_KINDS}, **dict(marks)}  # zeros too: an alert's delta needs a series
        for kind, n in sorted(marks.items()):
            g.add_metric([kind], n)
        yield g
        g = GaugeMetricFamily("supportgw_imap_sync_age_seconds", "Seconds since each mailbox's last good sync",
                              labels=["mailbox"])
        for mb in self.app.config.imap:
            at = synced.get(mb.name)
            g.add_metric([mb.name], (now - at).total_seconds() if at else float("inf"))
        yield g
        g = GaugeMetricFamily("supportgw_job_last_run_age_seconds",
                              "Seconds since each scheduled job last ran to the end (or its scheduler started)",
                              labels=["job"])
        for job, at in sorted(alive.items()):
            g.add_metric([job], (now - at).total_seconds())
        yield g


def render(app) -> tuple[bytes, str]:
    """The /metrics body and its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    m = _m()
    out = CollectorRegistry()
    out.register(DatabaseCollector(app))
    if os.environ.get(ENV):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(out)
        return generate_latest(out), CONTENT_TYPE_LATEST
    return generate_latest(m["registry"]) + generate_latest(out), CONTENT_TYPE_LATEST
