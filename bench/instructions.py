"""The store stage's instructions per message, counted by Valgrind: a figure a busy machine
cannot move, for telling whether a change to the store stage gained anything.

On a shared machine the CPU time of identical code moves by a third between runs
(`bench/store.py`), and its count of Python calls misses what C does (SQLite's work, the
interpreter's own loops) and counts a cheap built-in call as much as a query. Valgrind's
callgrind counts every instruction the process runs in user space, the same from run to run
to a fraction of a percent, whatever else the machine does.

    python bench/instructions.py [N]

It runs two child processes under `valgrind --tool=callgrind`, side by side: both generate and
parse the same N messages and build a gateway; one stores all N through the store stage (as
`bench/store.py` does), the other stores one. The difference over N - 1 is the store stage's
instructions per message. Not counted: the kernel's part (fsync, creating attachment files),
which `bench/store.py`'s CPU time does include. A child takes a few minutes (Python runs about
fifty times slower under Valgrind). Compare two commits by running it in each (a worktree).

Needs Valgrind (Debian: `apt-get install valgrind`).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _child(n: int, store: int) -> None:
    """Generate and parse `n` messages, then store the first `store` of them."""
    from bench.corpus import generate
    from bench.store import parsed_ahead, store_cpu_ms
    from gateway.runtime import heap

    heap.settle()  # as the gateway's worker does once started
    msgs = generate(n)
    parsed = parsed_ahead(msgs)
    store_cpu_ms(msgs[:store], parsed)


def _counted(n: int, store: int, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, __file__,
         "--child", str(n), str(store)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _collected(proc: subprocess.Popen) -> int:
    _, err = proc.communicate()
    found = re.findall(r"Collected : (\d+)", err)
    if proc.returncode != 0 or not found:
        tail = "\n".join(err.strip().splitlines()[-5:])
        raise SystemExit(f"bench/instructions.py: a child under valgrind failed (exit {proc.returncode}):\n{tail}")
    return int(found[-1])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(int(sys.argv[2]), int(sys.argv[3]))
        return
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    if n < 2:
        raise SystemExit("bench/instructions.py: N must be at least 2 (the figure is the difference of N and 1)")
    if shutil.which("valgrind") is None:
        raise SystemExit("bench/instructions.py needs valgrind: apt-get install valgrind")
    with tempfile.TemporaryDirectory() as d:
        every, one = _counted(n, n, Path(d) / "every.out"), _counted(n, 1, Path(d) / "one.out")
        total, base = _collected(every), _collected(one)
    print(f"instructions, {n} messages stored: {total:,}; one stored: {base:,}")
    print(f"store stage: {(total - base) / (n - 1):,.0f} instructions/msg (valgrind callgrind, user space)")


if __name__ == "__main__":
    main()
