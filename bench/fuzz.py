"""The parser fuzz harness of tests/test_parse_fuzz.py, with a longer budget.

    SUPPORTGW_CORPORA=/work/shared/corpora python bench/fuzz.py [EXAMPLES]

Runs each property with EXAMPLES hypothesis examples (default 5000), seeded from the
shared corpora: parse_email never raises and keeps control characters out of what it
stores, on arbitrary bytes, header garbage and mutated real messages; and the large-mail
path reaches the same verdict as the small one on mutated real messages. Prints the
examples run and the time per property; a failure prints hypothesis' minimal example.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests import test_parse_fuzz as fuzz  # noqa: E402


def _arbitrary(raw: bytes) -> None:
    fuzz.check(fuzz.parse_email(raw))
    fuzz.parse_dsn(raw)


def run(examples: int) -> int:
    long = settings(max_examples=examples, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))
    properties = {
        "arbitrary bytes": given(st.binary(max_size=4096))(_arbitrary),
        "header garbage": given(st.lists(fuzz.header_lines, max_size=12), st.binary(max_size=1024))(
            lambda headers, body: fuzz.check(fuzz.parse_email(b"".join(headers) + b"\r\n" + body))),
    }
    if fuzz.SAMPLE:
        properties["mutated corpus messages"] = given(st.data())(fuzz.check_mutated)
        properties["large path, same verdict"] = given(st.data())(fuzz.check_both_paths)
    else:
        print("SUPPORTGW_CORPORA is not set: the corpus-seeded properties are skipped")
    failed = 0
    for name, prop in properties.items():
        started = time.perf_counter()
        try:
            long(prop)()
            verdict = "ok"
        except Exception as exc:  # hypothesis has printed the minimal failing example
            failed += 1
            notes = "\n".join(getattr(exc, "__notes__", []))
            verdict = f"FAILED: {type(exc).__name__}: {str(exc)[:2000]}\n{notes[:20000]}"
        print(f"{name:28} {examples:>7} examples  {time.perf_counter() - started:7.1f}s  {verdict}", flush=True)
    return failed


if __name__ == "__main__":
    if not os.environ.get("SUPPORTGW_CORPORA"):
        print("note: set SUPPORTGW_CORPORA to seed from the shared corpora")
    sys.exit(1 if run(int(sys.argv[1]) if len(sys.argv) > 1 else 5000) else 0)
