"""Runnable benchmarks; each prints its figures. See each script's docstring."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret-key-0123456789"


def bench_config(data_dir, *, base_dir=None, **sections):
    """The gateway's configuration for a benchmark: data under `data_dir`, a fixed signing
    secret, and any other sections given (``smtp={...}``, ``imap=[...]``)."""
    from gateway.config import parse_config

    return parse_config({"gateway": {"data_dir": str(data_dir), "secret_key": SECRET}, **sections},
                        base_dir=Path(base_dir if base_dir is not None else data_dir))


def supportgw_command() -> tuple[list[str], dict[str, str]]:
    """How to run this checkout's `supportgw` as a process: the interpreter running the
    benchmark, whatever environment that is (a venv, conda, the system's), with the
    checkout first on its path. Never a `.venv` assumed beside the project."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return [sys.executable, "-m", "gateway.cli"], env


def pipeline_rate_on(url: str, msgs: list[bytes]) -> float:
    """Messages per second of the whole live pipeline (supportgw ingest's path, parse-ahead on)
    over `msgs`, in batches of 200, against the already migrated database at `url`.

    The database is opened before the clock starts, as a gateway opens it when it starts:
    SQLite's first open of a file just copied (bench/growth.py copies its template for every
    run) reads it in, half a second for a million messages, which is no cost of ingest."""
    from sqlalchemy import text

    from gateway.app import build_app
    from gateway.pipeline.process import Source, ingest

    with tempfile.TemporaryDirectory() as d:
        cfg = bench_config(d, database={"url": url}, outbound={"rate_limit_per_hour": 1000000})
        app = build_app(cfg, migrate=False)
        with app.db.session() as s:
            s.execute(text("SELECT count(*) FROM spool"))
        t0 = time.perf_counter()
        counts: dict = {}
        for i in range(0, len(msgs), 200):
            for k, v in ingest(app, [(raw, Source("file")) for raw in msgs[i:i + 200]], parse_ahead=True).items():
                counts[k] = counts.get(k, 0) + v
        rate = len(msgs) / (time.perf_counter() - t0)
        app.db.dispose()
        assert counts.get("failed", 0) == 0, counts
        return rate
