"""Import throughput: `supportgw import` (gateway/edges/importer.py) of a generated history in an
mbox, into a fresh SQLite database and a fresh PostgreSQL database, beside mail-parser's own
parse-only rate on the same messages, measured in the same run and in turns.

Also printed: parse_email's and parse_history's (the import's parse) own parse-only rates, one
process; and the import's budget: where the writing process's time goes, stage by stage (read,
scan, thread, waiting for the pool's parse, making the rows, inserting under the write lock), and
the CPU time per message of the writer and of the pool's processes beside mail-parser's. On a
shared, busy machine the rates move with the load; the CPU figures much less.

The import rate is the whole command's work: scanning the headers, rebuilding the
conversations, parsing on every core, routing and writing. The target (issue 23): at least
mail-parser's parse-only rate (one process, as mail-parser parses) on this 2-core machine.

    python bench/import_rate.py [N] [ROUNDS]
"""

from __future__ import annotations

import mailbox
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PG = os.environ.get("SUPPORTGW_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
STAGES = (("t_read", "read (sources, here)"), ("t_scan_wait", "scan (waiting for the pool)"),
          ("t_thread", "thread"), ("t_parse_wait", "parse (waiting for the pool)"),
          ("t_plan", "rows and routing (no lock)"), ("t_write", "insert + commit (write lock)"))


def import_rate(mbox: Path, d: Path, url: str = "") -> tuple[float, dict]:
    from bench import bench_config
    from gateway.app import build_app
    from gateway.edges.import_sources import FileSource
    from gateway.edges.importer import Importer
    from parsers.message import clear_caches

    clear_caches()  # the pool's processes start cold; so does the scan here while they start
    cfg = bench_config(d, **({"database": {"url": url}} if url else {}))
    app = build_app(cfg)
    src = FileSource(str(mbox))
    t = time.perf_counter()
    counts = Importer(app, [src], close_after=timedelta(days=30)).run()
    rate = counts["imported"] / (time.perf_counter() - t)
    src.close()
    app.db.dispose()
    return rate, counts


def parse_cpu(msgs: list[bytes], parse) -> tuple[float, float]:
    """(messages per second, CPU seconds per message) through `parse` alone, one process."""
    from parsers.message import clear_caches

    clear_caches()  # each pass as cold as the first, whatever the passes before it read
    t, c = time.perf_counter(), time.process_time()
    for raw in msgs:
        parse(raw)
    return len(msgs) / (time.perf_counter() - t), (time.process_time() - c) / len(msgs)


def new_pg() -> tuple[str, str] | None:
    try:
        import psycopg

        name = f"sgw_import_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG.replace("+psycopg", ""), autocommit=True, connect_timeout=3) as c:
            c.execute(f"CREATE DATABASE {name}")
        return name, PG.rsplit("/", 1)[0] + "/" + name
    except Exception as exc:
        print(f"PostgreSQL not reachable ({exc}): SQLite only")
        return None


def drop_pg(name: str) -> None:
    import psycopg

    with psycopg.connect(PG.replace("+psycopg", ""), autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def budget(name: str, runs: list[dict], n: int, mp_cpu: float) -> None:
    med = {k: statistics.median(r.get(k, 0) for r in runs) for k in set().union(*runs)}
    print(f"budget, {name} (median of {len(runs)} runs, ms per message; {med['transactions']:.0f} transactions, "
          f"longest write lock {med['t_write_max'] * 1e3:.0f} ms):")
    for key, label in STAGES:
        print(f"  {label:32s} {med.get(key, 0) / n * 1e3:6.3f}")
    writer, pool = med["t_cpu"] / n, med.get("t_pool_cpu", 0) / n
    print(f"  CPU: writer {writer * 1e3:.3f}, pool {pool * 1e3:.3f} (its processes' start-up not counted: "
          f"paid once), together {(writer + pool) * 1e3:.3f}; mail-parser {mp_cpu * 1e3:.3f}")
    print(f"  by CPU, on {os.cpu_count()} idle cores: the writer alone would allow {mp_cpu / writer:.2f}x "
          f"mail-parser, the whole import {os.cpu_count() * mp_cpu / (writer + pool):.2f}x")


def main() -> None:
    import mailparser

    from bench.corpus import generate
    from parsers.message import parse_email, parse_history

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    msgs = generate(n)
    with tempfile.TemporaryDirectory() as top:
        mbox_path = Path(top) / "history.mbox"
        box = mailbox.mbox(str(mbox_path), create=True)
        for raw in msgs:
            box.add(raw)
        box.close()
        print(f"corpus: {n} generated messages in one mbox, {sum(map(len, msgs)) / n / 1024:.1f} KiB average, "
              f"{os.cpu_count()} cores")
        rates: dict[str, list[float]] = {"mail-parser parse-only": [], "parse_email parse-only": [],
                                         "parse_history parse-only": [], "import, SQLite": [],
                                         "import, PostgreSQL": []}
        runs: dict[str, list[dict]] = {"SQLite": [], "PostgreSQL": []}
        mp_cpu: list[float] = []
        detail = {}
        for r in range(rounds):
            rate, cpu = parse_cpu(msgs, mailparser.parse_from_bytes)
            rates["mail-parser parse-only"].append(rate)
            mp_cpu.append(cpu)
            rates["parse_email parse-only"].append(parse_cpu(msgs, parse_email)[0])
            rates["parse_history parse-only"].append(parse_cpu(msgs, parse_history)[0])
            rate, detail = import_rate(mbox_path, Path(top) / f"sqlite{r}")
            rates["import, SQLite"].append(rate)
            runs["SQLite"].append(detail)
            pg = new_pg()
            if pg:
                try:
                    rate, got = import_rate(mbox_path, Path(top) / f"pg{r}", pg[1])
                    rates["import, PostgreSQL"].append(rate)
                    runs["PostgreSQL"].append(got)
                finally:
                    drop_pg(pg[0])
            # mail-parser again after the imports: the load of a shared machine moves within a round
            rate, cpu = parse_cpu(msgs, mailparser.parse_from_bytes)
            rates["mail-parser parse-only"].append(rate)
            mp_cpu.append(cpu)
        print(f"import counts: { {k: detail[k] for k in ('imported', 'tickets_created', 'conversations')} }")
        base = statistics.median(rates["mail-parser parse-only"])
        for name, xs in rates.items():
            if xs:
                m = statistics.median(xs)
                print(f"{name:26s}: {m:8.1f} msgs/s  ratio {m / base:4.2f}  (runs: {', '.join(f'{x:.0f}' for x in xs)})")
        for name, rs in runs.items():
            if rs:
                budget(name, rs, n, statistics.median(mp_cpu))
        print("target: import ratio >= 1.00 on both databases")


if __name__ == "__main__":
    main()
