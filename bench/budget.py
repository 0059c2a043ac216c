"""Where a message's CPU time goes, against the budget issue 26's ingest target allows.

The target: the whole pipeline at TARGET (0.30) or more of mail-parser's parse-only rate P.
On C cores that leaves C / (TARGET P) CPU seconds per message for everything: our
parse, the store stage and whatever joins them; and, since one process writes (the
store stage) while the pool parses, 1 / (TARGET P) for the store stage alone, the
tighter bound. This script measures, in one run:

- P, and the rate of our own parse (`parsers.message.parse_email`, built on mail-parser);
- the store stage's CPU per message (as bench/store.py), and the statements it sends;
- the cost of one single-row statement through SQLAlchemy Core, the leanest way the
  store stage could still speak to both databases;
- with py-spy on the PATH, the share of the store stage spent inside SQLAlchemy
  (and the driver it calls) against our own code: routing, templates, notifications,
  attachment files.

It then prints the least CPU a message could take if the database layer cost no
more than those Core statements, and the best ratio that allows on this machine, for
the whole CPU and for the writer alone.

    python bench/budget.py [N]
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import bindparam, create_engine, event, insert, select  # noqa: E402

from bench.corpus import generate  # noqa: E402
from bench.ingest import interleaved, parse_only_rate  # noqa: E402
from bench.store import parsed_ahead, store_cpu_ms  # noqa: E402
from parsers.message import parse_email  # noqa: E402
from storage.models import Base, ThreadId  # noqa: E402


TARGET = 0.30  # issue 26, item 1


def statements_per_message(msgs: list[bytes], parsed: dict) -> float:
    sent = [0]

    def count(app):
        event.listen(app.db.engine, "before_cursor_execute", lambda *a: sent.__setitem__(0, sent[0] + 1))

    store_cpu_ms(msgs, parsed, on_app=count)
    return sent[0] / len(msgs)


def core_statement_us(n: int = 4000) -> float:
    """CPU microseconds for one prepared single-row statement through SQLAlchemy Core on
    SQLite: the mean of an indexed SELECT and a one-row INSERT."""
    with tempfile.TemporaryDirectory() as d:
        engine = create_engine(f"sqlite:///{d}/core.db")
        Base.metadata.create_all(engine)
        find = select(ThreadId.ticket_id).where(ThreadId.message_id == bindparam("m")).limit(1)
        add = insert(ThreadId.__table__)
        with engine.begin() as conn:
            t = time.process_time()
            for i in range(n):
                conn.execute(find, {"m": f"<{i}@x>"}).first()
                conn.execute(add, [{"message_id": f"<{i}@x>", "ticket_id": 1, "outbound": False}])
            spent = time.process_time() - t
        engine.dispose()
        return spent / (2 * n) * 1e6


def sqlalchemy_share(n: int) -> float | None:
    """The share of the store stage's samples inside SQLAlchemy frames, by py-spy."""
    spy = shutil.which("py-spy") or (shutil.which("py-spy", path=str(Path(sys.executable).parent)))
    if spy is None:
        return None
    with tempfile.TemporaryDirectory() as d:
        out = Path(d, "store.raw")
        subprocess.run([spy, "record", "-r", "500", "-f", "raw", "-o", str(out), "--",
                        sys.executable, str(Path(__file__).with_name("store.py")), str(n), "1"],
                       check=True, capture_output=True)
        inside = total = 0
        for line in out.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if "process_entry (" not in stack:  # the store stage only, not corpus or parse
                continue
            total += int(count)
            if "(sqlalchemy/" in stack:
                inside += int(count)
        return inside / total if total else None


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    msgs = generate(n)
    theirs, ours, _ = interleaved(msgs, lambda m: (parse_only_rate(m, parse_email), None))
    p, q = statistics.median(theirs), statistics.median(ours)
    parsed = parsed_ahead(msgs)
    store_ms = min(store_cpu_ms(msgs, parsed) for _ in range(3))
    per_msg = statements_per_message(msgs, parsed)
    core_us = core_statement_us()
    share = sqlalchemy_share(n)

    budget_ms = cores / (TARGET * p) * 1000
    print(f"cores: {cores}; corpus: {n} generated messages")
    print(f"mail-parser parse-only    : {p:7.0f} msgs/s  {1000 / p:5.2f} ms/msg")
    print(f"our parse (parse_email)   : {q:7.0f} msgs/s  {1000 / q:5.2f} ms/msg  ({q / p:.2f} of mail-parser)")
    print(f"store stage               : {store_ms:5.2f} CPU ms/msg, {per_msg:.1f} statements/msg")
    print(f"one SQLAlchemy Core statement: {core_us:.0f} CPU us")
    print(f"target {TARGET} of parse-only : {TARGET * p:7.0f} msgs/s = {budget_ms:.2f} CPU ms/msg over {cores} cores, "
          f"{1000 / (TARGET * p):.2f} ms for the one writing process")
    print(f"the writer alone allows now: {1000 / store_ms / p:.2f} of parse-only")
    if share is None:
        print("(py-spy not found: pip install py-spy for the split of the store stage)")
        return
    own_ms = store_ms * (1 - share)
    floor_ms = 1000 / q + own_ms + per_msg * core_us / 1000
    print(f"store stage inside SQLAlchemy: {share:.0%}; our own code: {own_ms:.2f} ms/msg")
    print(f"least CPU per message with a Core-lean database layer: parse {1000 / q:.2f} + own code "
          f"{own_ms:.2f} + statements {per_msg * core_us / 1000:.2f} = {floor_ms:.2f} ms")
    lean_writer = own_ms + per_msg * core_us / 1000
    print(f"best ratio this allows on {cores} cores, perfectly balanced: "
          f"{cores * 1000 / floor_ms / p:.2f}; by the writer alone ({lean_writer:.2f} ms): "
          f"{1000 / lean_writer / p:.2f}   (target >= {TARGET})")


if __name__ == "__main__":
    main()
