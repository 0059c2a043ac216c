"""IMAP drain throughput: N generated messages appended to a private Dovecot while a running
gateway, set up as `supportgw run` does (IMAP poller, worker process processing and
dispatching), is idle; timed from the first append until every one is a ticket (or otherwise
processed). Against `pipeline.ingest` of the same messages from memory in batches of 200, in
the same run, each into a fresh SQLite database.

The gateway is warmed first with a few other messages (its worker process and the worker's
parse pool started, as in a gateway that has been running), because what is measured is the
drain; the start-up (a new Python process importing the gateway, about two seconds here) is
printed on its own line. File ingest runs in this process, whose parse pool is started by its
first batch.

    python bench/imap.py [N] [--rounds R] [--batch-size B]

Needs Dovecot (apt-get install dovecot-imapd); starts and stops its own instance.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select  # noqa: E402

from bench import bench_config  # noqa: E402
from bench.corpus import generate  # noqa: E402
from bench.ingest import pipeline_rate  # noqa: E402
from gateway.app import build_app  # noqa: E402
from gateway.runtime.runner import Gateway  # noqa: E402
from storage.models import SpoolEntry  # noqa: E402
from tests.dovecot import Dovecot, new_base  # noqa: E402


WARM_UP = 20  # messages the gateway processes before the clock starts (more than parse_pool.MIN_BATCH)


def fill(server: Dovecot, msgs: list[bytes], *, empty: bool = True) -> None:
    """Append the messages to INBOX, emptied first unless `empty` is False."""
    c = server.client()
    try:
        c.select_folder("INBOX")
        old = c.search("ALL") if empty else []
        if old:
            c.delete_messages(old)
            c.expunge()
        for i in range(0, len(msgs), 200):
            c.multiappend("INBOX", msgs[i:i + 200])
    finally:
        c.logout()


def imap_rate(server: Dovecot, msgs: list[bytes], batch_size: int) -> tuple[float, float, dict, float]:
    """(messages/s until every message is processed, messages/s until every one is spooled,
    outcomes, seconds from the gateway's start until its warm-up messages were processed)"""
    fill(server, [])
    d = tempfile.mkdtemp(prefix="sgw-bench-")
    try:
        cfg = bench_config(d, smtp={"enabled": False}, imap=[server.mailbox_config(batch_size=batch_size)])
        app = build_app(cfg)
        by_status = select(SpoolEntry.status, func.count()).group_by(SpoolEntry.status)

        def counts() -> dict:
            with app.db.session() as s:
                return dict(s.execute(by_status).all())

        def wait(total: int, t0: float) -> float | None:
            """Until `total` rows are processed; the time all were spooled (from t0)."""
            spooled_at = None
            while True:
                c = counts()
                if spooled_at is None and sum(c.values()) >= total:
                    spooled_at = time.perf_counter() - t0
                if sum(v for k, v in c.items() if k != "pending") >= total:
                    return spooled_at
                if time.perf_counter() - t0 > 1800:
                    raise SystemExit(f"drain did not finish: {c}")
                time.sleep(0.05)

        started = time.perf_counter()
        # as `supportgw run` does: processing and dispatch in gateway.workers worker process(es)
        gw = Gateway(app, smtp=False, scheduler=False, workers=app.config.gateway.workers).start()
        try:
            fill(server, generate(WARM_UP, seed=3), empty=False)  # other Message-IDs than the measured ones
            wait(WARM_UP, started)
            start_up = time.perf_counter() - started
            t = time.perf_counter()
            fill(server, msgs, empty=False)  # timed: the mail lands while the gateway runs
            spooled_at = wait(WARM_UP + len(msgs), t)
            rate = len(msgs) / (time.perf_counter() - t)
            outcomes = counts()
        finally:
            gw.stop()
            app.db.dispose()
        return rate, len(msgs) / spooled_at, outcomes, start_up
    finally:
        shutil.rmtree(d, ignore_errors=True)  # the dispatcher may still be writing acknowledgements


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=50, help="[[imap]] batch_size (default as shipped)")
    a = ap.parse_args()
    msgs = generate(a.n)
    print(f"corpus: {a.n} generated messages, {sum(map(len, msgs)) / a.n / 1024:.1f} KiB average")
    base = new_base()
    server = Dovecot(base).start()
    imap_rates, spool_rates, file_rates, start_ups = [], [], [], []
    try:
        for _ in range(a.rounds):  # interleave, so machine noise hits both alike
            rate, spool_rate, counts, start_up = imap_rate(server, msgs, a.batch_size)
            imap_rates.append(rate)
            spool_rates.append(spool_rate)
            start_ups.append(start_up)
            frate, totals = pipeline_rate(msgs)
            file_rates.append(frate)
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
    i, f = statistics.median(imap_rates), statistics.median(file_rates)
    print(f"imap outcomes : {counts} (with the {WARM_UP} warm-up messages)")
    print(f"file outcomes : {totals}")
    print(f"IMAP drain (Dovecot -> tickets): {i:8.1f} msgs/s  (runs: {', '.join(f'{x:.0f}' for x in imap_rates)})")
    print(f"  of which IMAP edge -> spool  : {statistics.median(spool_rates):8.1f} msgs/s  "
          f"(runs: {', '.join(f'{x:.0f}' for x in spool_rates)}; all spooled, processing still running)")
    print(f"file ingest (pipeline.ingest)  : {f:8.1f} msgs/s  (runs: {', '.join(f'{x:.0f}' for x in file_rates)})")
    print(f"ratio imap/file                : {i / f:8.2f}   (target >= 0.80, issue 26)")
    print(f"gateway start-up, not in the drain: {statistics.median(start_ups):.1f} s from start to its first "
          f"{WARM_UP} messages processed (runs: {', '.join(f'{x:.1f}' for x in start_ups)})")


if __name__ == "__main__":
    main()
