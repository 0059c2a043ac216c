"""supportgw beside two established Python helpdesks, on one corpus, in one run.

Runs ../shared/peers/peer_roundup.sh and peer_django_helpdesk.sh (each installs
its helpdesk from PyPI into a venv under /tmp the first time and writes the
shared corpus /tmp/corpus_N), then ingests the same files through supportgw's
pipeline into a fresh SQLite database, and measures mail-parser's parse-only
rate on them in the same run. Prints each rate, its share of the parse-only
rate, supportgw's multiple of each peer, and how supportgw threaded the replies
against the corpus's In-Reply-To ground truth.

    python bench/peers.py [N] [--peers DIR]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from bench import bench_config  # noqa: E402
from bench.ingest import interleaved  # noqa: E402
from gateway.app import build_app  # noqa: E402
from gateway.pipeline.process import Source, ingest  # noqa: E402
from parsers import quick  # noqa: E402
from storage.models import Message  # noqa: E402

_RATE = re.compile(r"([\d.]+) msgs/s")


def run_peer(script: Path, n: int) -> tuple[float | None, str]:
    out = subprocess.run(["bash", str(script), str(n)], capture_output=True, text=True, timeout=3600)
    text = out.stdout + out.stderr
    m = _RATE.search(out.stdout)
    return (float(m.group(1)) if m and out.returncode == 0 else None), text


def ours(raws: list[bytes]) -> tuple[float, dict[str, int]]:
    with tempfile.TemporaryDirectory() as d:
        cfg = bench_config(d)
        app = build_app(cfg)
        t = time.perf_counter()
        for i in range(0, len(raws), 200):
            ingest(app, [(raw, Source("file")) for raw in raws[i:i + 200]], parse_ahead=True)
        rate = len(raws) / (time.perf_counter() - t)
        with app.db.session() as s:
            placed = dict(s.execute(select(Message.message_id, Message.ticket_id)
                                    .where(Message.direction == "in")).all())
        app.db.dispose()
        return rate, placed


def threading_check(raws: list[bytes], placed: dict[str, int]) -> dict[str, int]:
    """Each reply against its thread's root (followed through In-Reply-To in the corpus)."""
    parent: dict[str, str | None] = {}
    sender: dict[str, str] = {}
    for raw in raws:
        head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
        irt = re.search(rb"(?im)^In-Reply-To:\s*<([^>]+)>", head)
        frm = re.search(rb"(?im)^From:.*?<?([^<>\s]+@[^<>\s]+)>?\s*$", head)
        mid = quick.message_id(raw)
        parent[mid] = irt.group(1).decode() if irt else None
        sender[mid] = frm.group(1).decode().lower() if frm else ""

    def root(mid: str) -> str:
        for _ in range(1000):
            if not parent.get(mid):
                break
            mid = parent[mid]
        return mid

    threads_of: dict[int, set[str]] = {}
    senders_of: dict[int, set[str]] = {}
    for mid, ticket in placed.items():
        threads_of.setdefault(ticket, set()).add(root(mid))
        senders_of.setdefault(ticket, set()).add(sender.get(mid, ""))
    out = {"replies": 0, "correct": 0, "new ticket": 0, "of which strangers": 0, "wrong ticket": 0,
           "missing": 0}
    for mid, par in parent.items():
        if not par:
            continue
        out["replies"] += 1
        ticket, root_ticket = placed.get(mid), placed.get(root(mid))
        if ticket is None:
            out["missing"] += 1
        elif ticket == root_ticket:
            out["correct"] += 1
        elif threads_of[ticket] == {root(mid)}:
            out["new ticket"] += 1
            # the sender wrote nothing on the thread's ticket: opened apart by design (DOMAIN.md,
            # confidentiality), linked to it and held for its owner
            out["of which strangers"] += sender.get(mid, "") not in senders_of.get(root_ticket, set())
        else:
            out["wrong ticket"] += 1
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", nargs="?", type=int, default=1000)
    ap.add_argument("--peers", type=Path, default=ROOT.parent / "shared" / "peers")
    args = ap.parse_args()
    peers = {}
    for name, script in (("Roundup 2.x mail gateway", "peer_roundup.sh"),
                         ("django-helpdesk process_email", "peer_django_helpdesk.sh")):
        print(f"running {script} {args.n} ...", flush=True)
        rate, text = run_peer(args.peers / script, args.n)
        peers[name] = rate
        if rate is None:
            print(f"  {script} failed:\n{text[-2000:]}")
        else:
            for line in text.splitlines():
                if "result:" in line or "ground truth" in line or line.startswith("  "):
                    print("  " + line.strip())
    corpus = Path(f"/tmp/corpus_{args.n}")
    raws = [p.read_bytes() for p in sorted(corpus.glob("*.eml"))]
    if len(raws) != args.n:
        sys.exit(f"expected {args.n} messages in {corpus}, found {len(raws)}: did the peer scripts run?")
    parse_rates, our_rates, placed = interleaved(raws, ours)
    p, q = statistics.median(parse_rates), statistics.median(our_rates)
    print(f"\ncorpus: {len(raws)} messages from {args.peers / 'make_corpus.py'}")
    print(f"{'mail-parser parse-only':32s} {p:8.1f} msgs/s")
    print(f"{'supportgw pipeline':32s} {q:8.1f} msgs/s  {q / p:5.3f} of parse-only")
    for name, rate in peers.items():
        if rate:
            print(f"{name:32s} {rate:8.1f} msgs/s  {rate / p:5.3f} of parse-only; supportgw is {q / rate:5.1f}x")
    check = threading_check(raws, placed)
    print(f"supportgw threading of {check['replies']} replies: {check['correct']} on their thread's ticket, "
          f"{check['new ticket']} split to a new ticket ({check['of which strangers']} of them from a sender "
          f"with no part in that ticket: held apart by design), {check['wrong ticket']} on another thread's ticket, "
          f"{check['missing']} missing")


if __name__ == "__main__":
    main()
