"""Parsing a batch ahead in other processes (gateway/pipeline/parse_pool.py).

`supportgw ingest` and the benchmarks ask for it; a library caller of
`gateway.pipeline.process.ingest()` does not get it unless it asks, because spawned
processes import the caller's main module again.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from sqlalchemy import select

from bench.corpus import generate
from gateway.pipeline import parse_pool
from gateway.pipeline.process import Source, ingest
from storage.models import Message, Ticket

ROOT = Path(__file__).resolve().parent.parent


def _outcome(app) -> tuple[list, list]:
    with app.db.session() as s:
        tickets = [(t.ref, t.subject, t.requester_email, t.priority, t.category, t.language, t.status)
                   for t in s.execute(select(Ticket).order_by(Ticket.id)).scalars()]
        messages = [(m.ticket_id, m.message_id, m.sender_email, m.subject, m.text, m.reply_text, m.kind,
                     sorted(a.sha256 for a in m.attachments))
                    for m in s.execute(select(Message).where(Message.direction == "in").order_by(Message.id)).scalars()]
    return tickets, messages


def test_parsing_ahead_in_a_pool_gives_the_same_tickets_as_parsing_in_process(make_app, clock):
    msgs = generate(40)
    here, ahead = make_app(clock=clock), make_app(clock=clock)
    counts_here = ingest(here, [(raw, Source("file")) for raw in msgs])
    counts_ahead = ingest(ahead, [(raw, Source("file")) for raw in msgs], parse_ahead=True)
    assert parse_pool._pool is not None and not parse_pool._broken  # the pool really parsed them
    assert counts_here == counts_ahead and counts_here["created"] > 20 and counts_here["threaded"] > 5
    assert _outcome(here) == _outcome(ahead)


def test_a_script_without_a_main_guard_can_call_ingest(tmp_path):
    """No process pool unless asked: a script's top level must not run again in a spawned child."""
    script = tmp_path / "import_mail.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from pathlib import Path
        from bench.corpus import generate
        from gateway.app import build_app
        from gateway.config import parse_config
        from gateway.pipeline.process import Source, ingest

        d = Path({str(tmp_path)!r})
        cfg = parse_config({{"gateway": {{"data_dir": str(d), "secret_key": "script-secret-key-0123456789"}}}},
                           base_dir=d)
        counts = ingest(build_app(cfg), [(raw, Source("file")) for raw in generate(12)])
        print("created", counts["created"] + counts["threaded"])
    """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["created", "12"]
    assert "bootstrapping" not in out.stderr and "parse pool died" not in out.stderr, out.stderr
