"""Parsing a batch ahead in other processes (gateway/pipeline/parse_pool.py).

`supportgw ingest` and the benchmarks ask for it; a library caller of
`gateway.pipeline.process.ingest()` does not get it unless it asks, because spawned
processes import the caller's main module again.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
import time
from concurrent.futures import Future
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest
from sqlalchemy import select

from bench.corpus import generate
from gateway.pipeline import parse_pool
from gateway.pipeline.process import Source, ingest, spool
from storage import attachments as attachments_module
from storage.attachments import AttachmentStore
from storage.models import Message, OutboxRow, SpoolEntry, Ticket
from tests.mail import parser_raises_on

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
        from gateway.pipeline.process import Source, ingest, spool

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


def test_the_handlers_questions_of_a_mails_words_are_answered_in_the_pool_and_travel_with_it(monkeypatch):
    """Whether a mail asks for the sender's tickets, and its `#` lines, are answered where it was
    parsed; the answers go with the pickled mail, so the store stage does not ask again. A mail
    made again with other words asks again."""
    import dataclasses
    import pickle

    import parsers.model as model
    from tests.mail import build

    own = ("support@support.example.test",)
    status = build(frm="li.wei@customer.example.com", subject="Status of my tickets, please", body="Thanks\n")
    command = build(frm="li.wei@customer.example.com", subject="Re: [TS-000001] VPN", body="#priority P1\n")
    status, command = (pickle.loads(pickle.dumps(parse_pool.parse_ahead(raw, own)))[0] for raw in (status, command))
    asked = []
    monkeypatch.setattr(model, "is_status_request", lambda *a: asked.append("status") or False)
    monkeypatch.setattr(model, "parse_commands", lambda *a: asked.append("commands") or None)
    assert status.asks_status is True and command.asks_status is False
    assert [c.name for c in command.commands.commands] == ["priority"] and status.commands.commands == ()
    assert asked == []
    again = dataclasses.replace(status, subject="Printer jam", reply_text="It jams.\n")
    assert again.asks_status is False and again.commands is None and asked == ["status", "commands"]


def test_status_requests_and_command_lines_answered_in_the_pool_give_the_same_outcomes(make_app, clock, monkeypatch):
    """The store stage takes the pool's answers and must do with them what it does when it asks:
    the same status lists, the same tickets, the same ignored `#` lines."""
    import parsers.model as model
    from tests.mail import build

    asks = [build(frm=f"user{n}@customer.example.com", subject=s, body=b) for n, (s, b) in enumerate([
        ("Status of my tickets, please", "Thanks\n"), ("Hi", "What is the status of my tickets?\n"),
        ("Printer status light blinks", "#close\nIt blinks red.\n"), ("status", "请告诉我工单状态。\n")])]
    msgs = generate(20) + asks
    here, ahead = make_app(clock=clock), make_app(clock=clock)
    ingest(here, [(raw, Source("file")) for raw in msgs])
    asked = []
    real_status, real_commands = model.is_status_request, model.parse_commands
    monkeypatch.setattr(model, "is_status_request", lambda *a: asked.append(1) or real_status(*a))
    monkeypatch.setattr(model, "parse_commands", lambda *a: asked.append(1) or real_commands(*a))
    parse_pool._executor().submit(int).result(timeout=120)  # the pool's process is up before the batch
    ingest(ahead, [(raw, Source("file")) for raw in msgs], parse_ahead=True)
    assert parse_pool._pool is not None and not parse_pool._broken
    assert _spool_outcomes(here) == _spool_outcomes(ahead)
    assert _outcome(here) == _outcome(ahead)
    with here.db.session() as s1, ahead.db.session() as s2:
        def sent(s):
            return sorted((o.kind, o.rcpt, o.subject) for o in s.execute(select(OutboxRow)).scalars())
        assert sent(s1) == sent(s2)
        assert any(kind == "status_list" for kind, _, _ in sent(s1))
    assert len(asked) < len(msgs)  # most answered by the pool (one it had not started is parsed here)


def _with_attachment(content: bytes, *, frm="dana@customer.example.com", subject="Log attached", headers=None) -> bytes:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = frm, "support@support.example.test", subject
    m["Message-ID"] = make_msgid(domain="customer.example.com")
    for k, v in (headers or {}).items():
        m[k] = v
    m.set_content("The log is attached.\n")
    m.add_attachment(content, maintype="application", subtype="octet-stream", filename="trace.log")
    return m.as_bytes()


def _stage_files(app) -> list:
    tmp = app.attachments.root / "tmp"
    return sorted(p.name for p in tmp.iterdir()) if tmp.is_dir() else []


def test_the_pool_writes_attachments_ahead_and_leaves_no_stage_file_behind(make_app, clock):
    """The pool writes each attachment to a stage file (AttachmentStore.stage); the store stage
    renames the ones of stored mail into place. The same file staged twice in one batch, a
    duplicate mail, and a robot's mail that is suspended leave nothing behind in tmp/."""
    logs = [f"trace {i}\n".encode() * 500 for i in range(3)]
    twice = _with_attachment(logs[0])
    bounce = _with_attachment(logs[2], frm="mailer-daemon@customer.example.com", subject="Undelivered Mail",
                              headers={"Auto-Submitted": "auto-replied", "X-Failed-Recipients": "x@customer.example.com"})
    msgs = generate(12) + [twice, _with_attachment(logs[0], frm="erin@customer.example.com"),
                           _with_attachment(logs[1]), twice, bounce]
    app = make_app(clock=clock)
    real = parse_pool.parse_ahead
    parse_pool._executor().submit(int).result(timeout=120)  # the pool's process is up before the batch
    counts = ingest(app, [(raw, Source("file")) for raw in msgs], parse_ahead=True)
    assert parse_pool._pool is not None and not parse_pool._broken
    assert counts["duplicates"] == 1 and counts["suspended"] == 1, counts
    for content in logs[:2]:
        sha = hashlib.sha256(content).hexdigest()
        assert app.attachments.get(sha) == content
    assert not app.attachments.path_for(hashlib.sha256(logs[2]).hexdigest()).exists()  # the bounce's: not stored
    deadline = time.monotonic() + 30
    while _stage_files(app) and time.monotonic() < deadline:  # a parse still running is cleared when it ends
        time.sleep(0.05)
    assert _stage_files(app) == []
    # the pool really staged them: what it returns for such a mail names a stage file per attachment
    got = real(_with_attachment(b"fresh content\n" * 100), app.own_addresses, str(app.attachments.root))
    staged = list(got[2].values())
    assert len(staged) == 1 and Path(staged[0]).read_bytes() == b"fresh content\n" * 100
    assert Path(staged[0]).parent == app.attachments.root / "tmp"


def test_an_attachment_whose_stage_file_is_gone_is_written_by_the_store_stage(tmp_path):
    store = AttachmentStore(tmp_path / "attachments")
    content = b"report\n" * 10
    sha = hashlib.sha256(content).hexdigest()
    name = store.stage(sha, content)
    Path(name).unlink()  # a batch run again after its stage files were cleared
    assert store.put(sha, content, staged=name).read_bytes() == content
    assert store.stage(sha, content) is None  # stored already: nothing to stage
    other = b"other\n"
    osha = hashlib.sha256(other).hexdigest()
    name = store.stage(osha, other)
    assert store.put(osha, other, staged=name).read_bytes() == other and not Path(name).exists()


def test_a_message_that_fails_to_parse_fails_alone_in_its_chunk(make_app, clock, monkeypatch):
    """The pool parses ten messages a task (parse_pool.parse_chunk); one that raises is answered
    with its exception, which the store stage raises for it alone (and so quarantines it), while
    the others of its chunk are taken as parsed."""
    parser_raises_on(monkeypatch, b"BROKEN", "cannot parse this one")
    msgs = generate(2) + [_with_attachment(b"x", subject="BROKEN")]
    answers = parse_pool.parse_chunk(msgs, ("support@support.example.test",))
    assert [ok for ok, _ in answers] == [True, True, False]
    assert isinstance(answers[2][1], ValueError)

    app = make_app(clock=clock)
    entries = spool(app, [(raw, Source("file")) for raw in msgs])
    fut: Future = Future()
    fut.set_result(answers)
    handed = {sp.spool_id: (fut, n) for n, sp in enumerate(entries)}

    class Row:  # what take() reads of a spool row
        def __init__(self, sp):
            self.id = sp.spool_id

    email, _robot, staged = parse_pool.take(app, Row(entries[0]), handed)
    assert email.message_id == answers[0][1][0].message_id and staged == {}
    with pytest.raises(ValueError, match="cannot parse this one"):
        parse_pool.take(app, Row(entries[2]), handed)


def test_a_stored_attachments_folder_is_fsynced_before_its_row_commits(app, tmp_path, monkeypatch):
    """The rename that puts a file in place is made durable (its folder fsynced) before the
    transaction naming it commits: with others of that transaction, at the commit, not one by one."""
    synced = []
    real = attachments_module._fsync_dir
    monkeypatch.setattr(attachments_module, "_fsync_dir", lambda folder: synced.append(folder) or real(folder))
    store = AttachmentStore(tmp_path / "attachments")
    contents = [f"file {i}\n".encode() for i in range(3)]
    with app.db.session() as s:
        paths = [store.put(hashlib.sha256(c).hexdigest(), c, staged=store.stage(hashlib.sha256(c).hexdigest(), c),
                           session=s) for c in contents]
        assert synced == []  # not yet: at the commit
    assert sorted(map(str, synced)) == sorted({str(p.parent) for p in paths})
    assert [p.read_bytes() for p in paths] == contents
