"""IMAP drain throughput: N generated messages in a private Dovecot's INBOX, drained by a
gateway set up as `supportgw run` does (IMAP poller, worker process processing and
dispatching) until every one is a ticket (or otherwise processed). Against `pipeline.ingest`
of the same messages from memory in batches of 200, in the same run, each into a fresh
SQLite database.

The drain is timed from the moment the worker has processed its first messages until the
last: the start-up before it (a new Python process importing the gateway, about two seconds
here, which file ingest, whose gateway is built before its clock starts, never pays) is
printed on its own line, and the messages processed by then are left out of the rate. The
worker's parse pool starts within the timed part, as file ingest's does.

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


def fill(server: Dovecot, msgs: list[bytes]) -> None:
    """Empty INBOX and append the messages (not timed)."""
    c = server.client()
    try:
        c.select_folder("INBOX")
        old = c.search("ALL")
        if old:
            c.delete_messages(old)
            c.expunge()
        for i in range(0, len(msgs), 200):
            c.multiappend("INBOX", msgs[i:i + 200])
    finally:
        c.logout()


def imap_rate(server: Dovecot, msgs: list[bytes], batch_size: int) -> tuple[float, float, dict, float]:
    """(messages/s from the worker's first processed messages until every message is processed,
    messages/s until every one is spooled (from the gateway's start), outcomes, seconds from the
    gateway's start until the worker's first messages were processed)"""
    fill(server, msgs)
    d = tempfile.mkdtemp(prefix="sgw-bench-")
    try:
        cfg = bench_config(d, smtp={"enabled": False}, imap=[server.mailbox_config(batch_size=batch_size)])
        app = build_app(cfg)
        done = select(SpoolEntry.status, func.count()).group_by(SpoolEntry.status)
        spooled_at = first = None
        t = time.perf_counter()
        # as `supportgw run` does: processing and dispatch in gateway.workers worker process(es)
        gw = Gateway(app, smtp=False, scheduler=False, workers=app.config.gateway.workers).start()
        try:
            while True:
                with app.db.session() as s:
                    counts = dict(s.execute(done).all())
                now = time.perf_counter() - t
                processed = sum(v for k, v in counts.items() if k != "pending")
                if spooled_at is None and sum(counts.values()) >= len(msgs):
                    spooled_at = now
                if first is None and processed:
                    first, before = now, processed  # the worker is up: the drain's clock starts
                if processed >= len(msgs):
                    break
                if now > 1800:
                    raise SystemExit(f"drain did not finish: {counts}")
                time.sleep(0.05)
            rate = (len(msgs) - before) / (now - first)
        finally:
            gw.stop()
            app.db.dispose()
        return rate, len(msgs) / spooled_at, counts, first
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
    print(f"imap outcomes : {counts}")
    print(f"file outcomes : {totals}")
    print(f"IMAP drain (Dovecot -> tickets): {i:8.1f} msgs/s  (runs: {', '.join(f'{x:.0f}' for x in imap_rates)})")
    print(f"  of which IMAP edge -> spool  : {statistics.median(spool_rates):8.1f} msgs/s  "
          f"(runs: {', '.join(f'{x:.0f}' for x in spool_rates)}; from the gateway's start)")
    print(f"file ingest (pipeline.ingest)  : {f:8.1f} msgs/s  (runs: {', '.join(f'{x:.0f}' for x in file_rates)})")
    print(f"ratio imap/file                : {i / f:8.2f}   (target >= 0.80, issue 26)")
    print(f"gateway start-up, not in the drain: {statistics.median(start_ups):.1f} s from its start to the "
          f"worker's first messages processed (runs: {', '.join(f'{x:.1f}' for x in start_ups)})")


if __name__ == "__main__":
    main()
