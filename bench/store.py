"""The store stage alone: thread, route, store and queue mail for messages already
parsed, into a fresh SQLite database. CPU milliseconds per message, the lowest of
several runs.

`bench/ingest.py` measures the whole pipeline by the wall clock, with parsing in
other processes; on a shared machine that figure moves by 15% between identical
runs. This one leaves parsing out (it is done before the clock starts) and counts
this process's CPU time only, so a change to the store stage can be compared run
against run: run it on both commits, in turns.

    python bench/store.py [N] [RUNS]

It prints the store stage's Python calls per message too (one more run, under cProfile): on
a machine too busy for a CPU figure to tell a change of a few percent, that count still does.
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import tempfile
import time
from concurrent.futures import Future
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import bench_config  # noqa: E402
from bench.corpus import generate  # noqa: E402
from gateway.app import build_app  # noqa: E402
from gateway.runtime import heap  # noqa: E402
from gateway.pipeline import parse_pool  # noqa: E402
from gateway.pipeline.process import Source, process_ids, spool  # noqa: E402
from parsers.robots import UNCLASSIFIED  # noqa: E402


def parsed_ahead(msgs: list[bytes]) -> dict[bytes, tuple]:
    """What the parse pool hands the store stage for each message: (parsed email, its robot, no stage files),
    with the gateway's own addresses as a bench gateway has them."""
    with tempfile.TemporaryDirectory() as d:
        app = build_app(bench_config(d))
        own = app.own_addresses
        app.db.dispose()
    return {raw: parse_pool.parse_ahead(raw, own) for raw in msgs}


def store_cpu_ms(msgs: list[bytes], parsed: dict[bytes, object], batch: int = 200, on_app=None,
                 profile: cProfile.Profile | None = None) -> float:
    """CPU ms per message spent storing `msgs` (parse results looked up in `parsed`: the pool's
    (email, robot), or a parsed email alone, whose robot the store stage then looks for).
    `on_app(app)` is called once the gateway is built (to attach a statement counter, say);
    `profile` is enabled while the store stage runs, and only then."""
    with tempfile.TemporaryDirectory() as d:
        cfg = bench_config(d)
        app = build_app(cfg)
        if on_app is not None:
            on_app(app)
        spent = 0.0
        for i in range(0, len(msgs), batch):
            chunk = msgs[i:i + batch]
            ids = [sp.spool_id for sp in spool(app, [(raw, Source("file")) for raw in chunk])]
            done = {}
            for spool_id, raw in zip(ids, chunk):
                fut: Future = Future()
                got = parsed[raw]
                fut.set_result([(True, got if isinstance(got, tuple) else (got, UNCLASSIFIED, {}))])
                done[spool_id] = (fut, 0)  # as parse_pool.submit hands them out: (its chunk, its place)
            # the batch as `supportgw ingest` processes it, with the parse-ahead pool's results ready
            submit, parse_pool.submit = parse_pool.submit, lambda _app, _entries, done=done: done
            try:
                t = time.process_time()
                if profile is not None:
                    profile.enable()
                process_ids(app, ids, parse_ahead=True)
                if profile is not None:
                    profile.disable()
                spent += time.process_time() - t
            finally:
                parse_pool.submit = submit
        app.db.dispose()
        return spent * 1000 / len(msgs)


def main() -> None:
    heap.settle()  # as `supportgw ingest` and the gateway's worker settle once started
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    msgs = generate(n)
    parsed = parsed_ahead(msgs)
    results = [store_cpu_ms(msgs, parsed) for _ in range(runs)]
    print(f"store stage, {n} messages: {min(results):.2f} CPU ms/msg (lowest of {runs}: "
          f"{', '.join(f'{r:.2f}' for r in results)})")
    # The same work counted, not timed: one more run under cProfile gives the Python calls it
    # makes, a figure that does not move with a busy machine (the CPU times above can, by a third).
    profile = cProfile.Profile()
    store_cpu_ms(msgs, parsed, profile=profile)
    calls = pstats.Stats(profile).total_calls
    print(f"store stage, {n} messages: {calls / n:.0f} Python calls/msg (cProfile, exact)")


if __name__ == "__main__":
    main()
