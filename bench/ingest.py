"""Ingest throughput: the whole pipeline (spool, parse, thread, route, store,
outbox) into a fresh SQLite database, against mail-parser's own parse-only
rate on the same messages, measured in the same run.

As in `supportgw ingest`, a batch is parsed ahead in a process pool
(gateway/pipeline/parse_pool.py) while its store stage runs, so on several cores the
pipeline figure uses more than one. Outbox rows are committed as drafts
(rendered text, every header value fixed); their MIME bytes are composed by the
dispatcher when sent, which this benchmark does not run.

It also prints where the pipeline's CPU goes: the storing thread's CPU per message
against the parse pool's processes' (read from /proc), and the rate that CPU allows
on this machine's cores, the bound any balance of the two could reach.

    python bench/ingest.py [N]
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import mailparser  # noqa: E402

from bench import bench_config  # noqa: E402
from bench.corpus import generate  # noqa: E402
from gateway.app import build_app  # noqa: E402
from gateway.runtime import heap  # noqa: E402
from gateway.pipeline import parse_pool  # noqa: E402
from gateway.pipeline.process import Source, ingest  # noqa: E402


def parse_only_rate(msgs: list[bytes], parse=mailparser.parse_from_bytes) -> float:
    """Messages per second through `parse` alone (mail-parser's own, unless another is given)."""
    t = time.perf_counter()
    for raw in msgs:
        parse(raw)
    return len(msgs) / (time.perf_counter() - t)


def pipeline_rate(msgs: list[bytes], batch: int = 200, cpu: list | None = None) -> tuple[float, dict]:
    """(Messages per second, outcome counts). `cpu`: a list to append, for this run, (the storing
    thread's CPU ms per message, the parse pool's processes' CPU ms per message) to."""
    with tempfile.TemporaryDirectory() as d:
        cfg = bench_config(d)
        app = build_app(cfg)
        totals: dict = {}
        t, writer, pool = time.perf_counter(), time.thread_time(), _pool_cpu()
        for i in range(0, len(msgs), batch):
            c = ingest(app, [(raw, Source("file")) for raw in msgs[i:i + batch]], parse_ahead=True)
            for k, v in c.items():
                totals[k] = totals.get(k, 0) + v
        rate = len(msgs) / (time.perf_counter() - t)
        if cpu is not None:
            cpu.append(((time.thread_time() - writer) * 1000 / len(msgs), (_pool_cpu() - pool) * 1000 / len(msgs)))
        app.db.dispose()
        return rate, totals


def _pool_cpu() -> float:
    """CPU seconds (user and system) the parse pool's processes have used so far, read from
    /proc (Linux); 0 before the pool has started."""
    pool = parse_pool._pool
    seconds = 0.0
    for pid in list(getattr(pool, "_processes", None) or {}):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        seconds += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    return seconds


def interleaved(msgs: list[bytes], pipeline, rounds: int = 3):
    """mail-parser's parse-only rate and `pipeline(msgs) -> (rate, detail)`, run in turns so
    machine noise hits both alike: (parse runs, pipeline runs, the last detail)."""
    parse_rates, pipe_rates, detail = [], [], None
    for _ in range(rounds):
        parse_rates.append(parse_only_rate(msgs))
        rate, detail = pipeline(msgs)
        pipe_rates.append(rate)
    return parse_rates, pipe_rates, detail


def main() -> None:
    heap.settle()  # as `supportgw ingest` and the gateway's worker settle once started, for both measures
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    msgs = generate(n)
    print(f"corpus: {n} generated messages, {sum(map(len, msgs)) / n / 1024:.1f} KiB average")
    cpu: list = []
    parse_rates, pipe_rates, totals = interleaved(msgs, lambda m: pipeline_rate(m, cpu=cpu))
    p, q = statistics.median(parse_rates), statistics.median(pipe_rates)
    print(f"outcomes: {totals}")
    print(f"mail-parser parse-only : {p:8.1f} msgs/s  (runs: {', '.join(f'{x:.0f}' for x in parse_rates)})")
    print(f"supportgw pipeline     : {q:8.1f} msgs/s  (runs: {', '.join(f'{x:.0f}' for x in pipe_rates)})")
    print(f"ratio pipeline/parse   : {q / p:8.2f}   (target >= 0.30, issue 26)")
    # Where the pipeline's CPU goes: the one storing thread against the parse pool, per message.
    # Each side bounds the rate alone (1 / its ms); on C cores all of it together does too.
    writer, pool = (statistics.median(x[i] for x in cpu) for i in (0, 1))
    cores = os.cpu_count() or 1
    ceiling = min(1000 / writer, 1000 / pool if pool else float("inf"), cores * 1000 / (writer + pool))
    print(f"CPU ms per message     : storing thread {writer:.2f}, parse pool {pool:.2f} (median of runs: "
          f"{'; '.join(f'{w:.2f} + {c:.2f}' for w, c in cpu)})")
    print(f"what that CPU allows   : {ceiling:8.1f} msgs/s on {cores} cores, {ceiling / p:.2f} of mail-parser "
          f"(each side alone, and both on the cores)")


if __name__ == "__main__":
    main()
