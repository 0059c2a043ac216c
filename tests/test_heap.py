"""gateway.runtime.heap: a process that stores mail settles its garbage collector once it has started."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import gc
import gateway.app  # what a gateway imports at start
from gateway.runtime import heap
before = gc.get_threshold()
heap.settle()
frozen = gc.get_freeze_count()
kept = [[i] for i in range(1000)]
heap.settle()  # a second call changes nothing
print(before[0], gc.get_threshold()[0], frozen, gc.get_freeze_count() == frozen, gc.isenabled())
"""


def test_settle_freezes_what_start_built_and_collects_the_young_less_often():
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True)
    default, young, frozen, once, enabled = out.stdout.split()
    from gateway.runtime.heap import YOUNG

    assert (int(default), int(young)) == (700, YOUNG)
    assert int(frozen) > 50_000  # the objects of the modules imported so far
    assert once == "True" and enabled == "True"  # cycles are still collected
