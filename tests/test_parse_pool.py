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
from storage.models import Message, SpoolEntry, Ticket

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


def _spool_outcomes(app) -> list:
    with app.db.session() as s:
        return [(e.message_id, e.status, e.reason) for e in s.execute(select(SpoolEntry).order_by(SpoolEntry.id)).scalars()]


def test_robots_told_apart_in_the_pool_are_suspended_as_in_process(make_app, clock, monkeypatch):
    """The pool also asks which robot sent each mail (parsers.robots.classify); the store stage
    takes that answer and must suspend the same mails, for the same reasons, as when it asks."""
    from tests.mail import build

    robots = [
        build(frm="mailer-daemon@customer.example.com", subject="Undelivered Mail Returned to Sender",
              headers={"Auto-Submitted": "auto-replied", "X-Failed-Recipients": "nobody@customer.example.com"},
              name="Mail Delivery System", body="The mail could not be delivered.\n"),
        build(frm="carol@customer.example.com", subject="Out of office",
              headers={"Auto-Submitted": "auto-replied", "X-Autoreply": "yes"}, body="I am away until Monday.\n"),
        build(frm="loop@customer.example.com", subject="Copy", headers={"X-Loop": "support@support.example.test"}),
    ]
    msgs = generate(20) + robots
    here, ahead = make_app(clock=clock), make_app(clock=clock)
    asked = []
    real = parse_pool.classify
    ingest(here, [(raw, Source("file")) for raw in msgs])
    # the store stage must not ask again for mail the pool answered: counted in this process only
    import gateway.handlers.suspend as suspend_handler
    monkeypatch.setattr(suspend_handler, "classify", lambda *a, **k: asked.append(1) or real(*a, **k))
    parse_pool._executor().submit(int).result(timeout=120)  # the pool's process is up before the batch
    ingest(ahead, [(raw, Source("file")) for raw in msgs], parse_ahead=True)
    assert parse_pool._pool is not None and not parse_pool._broken
    outcomes = _spool_outcomes(here)
    assert outcomes == _spool_outcomes(ahead)
    suspended = [o for o in outcomes if o[1] == "suspended"]
    assert {o[2] for o in suspended} >= {"bounce", "auto_reply", "loop"}, outcomes
    assert len(asked) < len(msgs)  # most answered by the pool (one it had not started is parsed here)
