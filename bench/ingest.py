"""Ingest throughput: the whole pipeline (spool, parse, thread, route, store,
outbox) into a fresh SQLite database, against mail-parser's own parse-only
rate on the same messages, measured in the same run.

As in `supportgw ingest`, a batch is parsed ahead in a process pool
(gateway/pipeline/parse_pool.py) while its store stage runs, so on several cores the
pipeline figure uses more than one. Outbox rows are committed as drafts
(rendered text, every header value fixed); their MIME bytes are composed by the
dispatcher when sent, which this benchmark does not run.

    python bench/ingest.py [N]
"""

from __future__ import annotations

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
from gateway.pipeline.process import Source, ingest  # noqa: E402


def parse_only_rate(msgs: list[bytes], parse=mailparser.parse_from_bytes) -> float:
    """Messages per second through `parse` alone (mail-parser's own, unless another is given)."""
    t = time.perf_counter()
    for raw in msgs:
        parse(raw)
    return len(msgs) / (time.perf_counter() - t)


def pipeline_rate(msgs: list[bytes], batch: int = 200) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory() as d:
        cfg = bench_config(d)
        app = build_app(cfg)
        totals: dict = {}
        t = time.perf_counter()
        for i in range(0, len(msgs), batch):
            c = ingest(app, [(raw, Source("file")) for raw in msgs[i:i + batch]], parse_ahead=True)
            for k, v in c.items():
                totals[k] = totals.get(k, 0) + v
        rate = len(msgs) / (time.perf_counter() - t)
        app.db.dispose()
        return rate, totals


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
    parse_rates, pipe_rates, totals = interleaved(msgs, pipeline_rate)
    p, q = statistics.median(parse_rates), statistics.median(pipe_rates)
    print(f"outcomes: {totals}")
    print(f"mail-parser parse-only : {p:8.1f} msgs/s  (runs: {', '.join(f'{x:.0f}' for x in parse_rates)})")
    print(f"supportgw pipeline     : {q:8.1f} msgs/s  (runs: {', '.join(f'{x:.0f}' for x in pipe_rates)})")
    print(f"ratio pipeline/parse   : {q / p:8.2f}   (target >= 0.30, issue 26)")


if __name__ == "__main__":
    main()
