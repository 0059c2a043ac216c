"""Import throughput: `supportgw import` (gateway/edges/importer.py) of a generated history in an
mbox, into a fresh SQLite database and a fresh PostgreSQL database, beside mail-parser's own
parse-only rate on the same messages, measured in the same run and in turns.

Also printed: parse_email's own parse-only rate, one process: the import parses every message
with it, so the cores times that rate is the ceiling no writer can pass.

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


def import_rate(mbox: Path, d: Path, url: str = "") -> tuple[float, dict]:
    from bench import bench_config
    from gateway.app import build_app
    from gateway.edges.import_sources import FileSource
    from gateway.edges.importer import Importer

    cfg = bench_config(d, **({"database": {"url": url}} if url else {}))
    app = build_app(cfg)
    src = FileSource(str(mbox))
    t = time.perf_counter()
    counts = Importer(app, [src], close_after=timedelta(days=30)).run()
    rate = counts["imported"] / (time.perf_counter() - t)
    src.close()
    app.db.dispose()
    return rate, dict(counts)


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


def main() -> None:
    from bench.corpus import generate
    from bench.ingest import parse_only_rate
    from parsers.message import parse_email

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
                                         "import, SQLite": [], "import, PostgreSQL": []}
        detail = {}
        for r in range(rounds):
            rates["mail-parser parse-only"].append(parse_only_rate(msgs))
            rates["parse_email parse-only"].append(parse_only_rate(msgs, parse_email))
            d = Path(top) / f"sqlite{r}"
            rate, detail = import_rate(mbox_path, d)
            rates["import, SQLite"].append(rate)
            pg = new_pg()
            if pg:
                try:
                    rates["import, PostgreSQL"].append(import_rate(mbox_path, Path(top) / f"pg{r}", pg[1])[0])
                finally:
                    drop_pg(pg[0])
        print(f"import counts: { {k: detail[k] for k in ('imported', 'tickets_created', 'conversations')} }")
        base = statistics.median(rates["mail-parser parse-only"])
        for name, xs in rates.items():
            if xs:
                m = statistics.median(xs)
                print(f"{name:24s}: {m:8.1f} msgs/s  ratio {m / base:4.2f}  (runs: {', '.join(f'{x:.0f}' for x in xs)})")
        ceiling = os.cpu_count() * statistics.median(rates["parse_email parse-only"]) / base
        print(f"target: import ratio >= 1.00 on both databases; the import parses every message with\n"
              f"parse_email (mail-parser and more), so {os.cpu_count()} cores doing nothing but parse would "
              f"reach {ceiling:.2f}")


if __name__ == "__main__":
    main()
