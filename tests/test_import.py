"""`supportgw import`: a team's history comes in with its own dates and conversations, our
past answers recognised as ours, and not one mail written to anyone; interrupted (kill -9)
and run again, every message is there exactly once."""

from __future__ import annotations

import fcntl
import json
import re
import os
import signal
import struct
import subprocess
import sys
import termios
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from bench import history_corpus
from gateway.cli import main
from gateway.pipeline.process import Source, ingest
from storage.models import Event, Message, OutboxRow, Participant, SpoolEntry, ThreadId, Ticket
from tests.conftest import drop_database, fresh_database_url
from tests.mail import build, mbox_entry, redate

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def cfgfile(tmp_path):
    url = fresh_database_url(tmp_path)
    key = tmp_path / "secret.key"
    key.write_text("import-test-secret-0123456789abcdef\n")
    key.chmod(0o600)
    path = tmp_path / "supportgw.toml"
    path.write_text(f'[gateway]\ndata_dir = "{tmp_path / "var"}"\nsecret_key = {{ file = "{key}" }}\n'
                    f'[database]\nurl = "{url}"\n')
    yield path
    drop_database(url)


def run(cfg, *args, capsys):
    code = main(["--config", str(cfg), *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def db(cfg):
    from gateway.config import load_config

    return create_engine(load_config(cfg).database_url)


def test_a_history_comes_in_with_its_dates_answers_and_conversations_and_nothing_is_sent(cfgfile, tmp_path, capsys):
    truth = history_corpus.write(tmp_path / "hist", 400)
    code, out, err = run(cfgfile, "import", "--json", str(tmp_path / "hist" / "inbox.mbox"),
                         str(tmp_path / "hist" / "Sent"), capsys=capsys)
    assert code == 0, err
    counts = json.loads(out)
    assert counts["imported"] == len(truth) and counts["outbox_rows_queued"] == 0
    assert counts["duplicates"] == 400 // 8  # the inbox copies of answers also in Sent
    eng = db(cfgfile)
    with eng.connect() as c:
        assert c.scalar(select(func.count()).select_from(OutboxRow)) == 0  # not one mail to anyone
        assert c.scalar(select(func.count()).select_from(SpoolEntry).where(SpoolEntry.status != "imported")) == 0
        # every conversation of the ground truth is one ticket, exactly
        by_ticket = c.execute(select(Message.message_id, Message.ticket_id)).all()
        assert len(by_ticket) == len(truth)
        groups: dict = {}
        for mid, tid in by_ticket:
            groups.setdefault(tid, set()).add(truth[mid])
        assert all(len(g) == 1 for g in groups.values())
        assert len(groups) == len(set(truth.values()))
        # our past answers are ours: outbound, by the engineer, recorded as such for threading
        out_rows = c.execute(select(Message.sender_email, Message.kind).where(Message.direction == "out")).all()
        assert len(out_rows) == 400 and {k for _, k in out_rows} == {"engineer"}
        assert {s for s, _ in out_rows} == {"alice@support.example.com", "bob@support.example.com"}
        assert c.scalar(select(func.count()).select_from(ThreadId).where(ThreadId.outbound.is_(True))) == 400
        # the mail's own dates; no SLA clock; closed, years later
        t = c.execute(select(Ticket).where(Ticket.requester_email == "customer0@client0.example.net")).one()
        assert t.created_at == datetime(2016, 1, 4, 9, 0, tzinfo=timezone.utc)
        assert t.first_response_due is None and t.resolution_due is None
        assert t.status == "closed" and t.updated_at > t.created_at
        assert t.first_responded_at is not None
        # routing rules apply: the database topic went to the DBA team
        teams = Counter(c.execute(select(Ticket.team).where(Ticket.subject.like("Database deadlock%"))).scalars())
        assert set(teams) == {"dba"}
        kinds = set(c.execute(select(Event.kind)).scalars())
        assert {"created", "routed", "imported", "closed"} <= kinds
        assert not kinds & {"notified", "acknowledged", "sla_warning"}


def test_recent_conversations_stay_open_and_a_live_reply_threads_onto_the_imported_ticket(cfgfile, tmp_path, capsys):
    q = build(msgid="<fresh-q@customer.example.com>", subject="Database deadlock again")
    (tmp_path / "q.eml").write_bytes(q)
    code, out, _ = run(cfgfile, "import", "--json", str(tmp_path / "q.eml"), capsys=capsys)
    assert json.loads(out)["open"] == 1
    from gateway.app import build_app
    from gateway.config import load_config

    app = build_app(load_config(cfgfile), migrate=False)
    try:
        reply = build(msgid="<fresh-r@customer.example.com>", subject="Re: Database deadlock again",
                      in_reply_to="<fresh-q@customer.example.com>", references="<fresh-q@customer.example.com>")
        assert ingest(app, [(reply, Source("smtp"))])["threaded"] == 1
    finally:
        app.db.dispose()
    with db(cfgfile).connect() as c:
        assert c.scalar(select(func.count()).select_from(Ticket)) == 1
        assert c.execute(select(Ticket.status)).scalar_one() == "open"
        # the live reply notified as live mail does; the import itself queued nothing before it
        assert c.scalar(select(func.count()).select_from(OutboxRow).where(OutboxRow.kind == "acknowledgement")) == 0


def test_the_same_command_again_imports_nothing_twice(cfgfile, tmp_path, capsys):
    history_corpus.write(tmp_path / "hist", 40)
    args = ["import", "--json", str(tmp_path / "hist" / "inbox.mbox"), str(tmp_path / "hist" / "Sent")]
    first = json.loads(run(cfgfile, *args, capsys=capsys)[1])
    again = json.loads(run(cfgfile, *args, capsys=capsys)[1])
    assert again["imported"] == 0 and again["already_imported"] == first["imported"]


def _interrupt_then_finish(cfgfile, tmp_path, sig):
    truth = history_corpus.write(tmp_path / "hist", 1500)
    cmd = [sys.executable, "-m", "gateway.cli", "--config", str(cfgfile), "import", "--json", "--batch", "100",
           str(tmp_path / "hist" / "inbox.mbox"), str(tmp_path / "hist" / "Sent")]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    eng = db(cfgfile)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with eng.connect() as c:
                if c.scalar(select(func.count()).select_from(Message)) >= 300:
                    break
        except Exception:
            pass
        time.sleep(0.05)
    if proc.poll() is None:
        os.killpg(proc.pid, sig)  # the whole group, as a terminal's Ctrl-C does
    _, err = proc.communicate(timeout=120)
    with eng.connect() as c:
        half = c.scalar(select(func.count()).select_from(Message))
    assert 0 < half < len(truth), "the interruption should land mid-import"
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    counts = json.loads(done.stdout)
    assert counts["already_imported"] == half and counts["imported"] == len(truth) - half
    with eng.connect() as c:
        mids = Counter(c.execute(select(Message.message_id)).scalars())
        assert set(mids) == set(truth) and set(mids.values()) == {1}
        groups: dict = {}
        for mid, tid in c.execute(select(Message.message_id, Message.ticket_id)).all():
            groups.setdefault(tid, set()).add(truth[mid])
        assert all(len(g) == 1 for g in groups.values()) and len(groups) == len(set(truth.values()))
        assert c.scalar(select(func.count()).select_from(OutboxRow)) == 0
    eng.dispose()
    return proc.returncode, err.decode()


def test_killed_mid_import_then_run_again_every_message_is_there_once(cfgfile, tmp_path):
    _interrupt_then_finish(cfgfile, tmp_path, signal.SIGKILL)


def test_ctrl_c_stops_with_one_line_and_the_same_command_finishes(cfgfile, tmp_path):
    code, err = _interrupt_then_finish(cfgfile, tmp_path, signal.SIGINT)
    assert code == 130 and "run the same command again" in err and "Traceback" not in err, (code, err)


def test_bad_paths_and_dates_are_one_line_errors(cfgfile, tmp_path, capsys):
    code, _, err = run(cfgfile, "import", str(tmp_path / "nope.mbox"), capsys=capsys)
    assert code == 2 and "no such file or folder" in err and "Traceback" not in err
    code, _, err = run(cfgfile, "import", "--since", "last tuesday", str(tmp_path), capsys=capsys)
    assert code == 2 and "--since" in err
    code, _, err = run(cfgfile, "import", capsys=capsys)
    assert code == 2 and "PATH" in err


def test_since_and_until_keep_to_the_dates_asked(cfgfile, tmp_path, capsys):
    history_corpus.write(tmp_path / "hist", 40)  # one conversation every 7 hours from 2016-01-04 09:00
    code, out, _ = run(cfgfile, "import", "--json", "--since", "2016-01-05", "--until", "2016-01-06",
                       str(tmp_path / "hist" / "inbox.mbox"), str(tmp_path / "hist" / "Sent"), capsys=capsys)
    counts = json.loads(out)
    assert code == 0 and counts["imported"] > 0 and counts["outside_dates"] > 0
    with db(cfgfile).connect() as c:
        dates = c.execute(select(Message.created_at)).scalars().all()
    assert min(dates) >= datetime(2016, 1, 5, tzinfo=timezone.utc)
    assert max(dates) < datetime(2016, 1, 6, tzinfo=timezone.utc)


def test_two_different_mails_sharing_a_message_id_are_both_kept_in_one_conversation(cfgfile, tmp_path, capsys):
    d = tmp_path / "eml"
    d.mkdir()
    (d / "1.eml").write_bytes(build(frm="ann@customer.example.com", msgid="<same@broken.client>", subject="One"))
    (d / "2.eml").write_bytes(build(frm="bob@customer.example.com", msgid="<same@broken.client>", subject="Two"))
    (d / "3.eml").write_bytes(build(frm="ann@customer.example.com", msgid="<reply@customer.example.com>",
                                    subject="Re: One", in_reply_to="<same@broken.client>"))
    code, out, err = run(cfgfile, "import", "--json", str(d), capsys=capsys)
    assert code == 0, err
    counts = json.loads(out)
    assert counts["imported"] == 3 and counts["tickets_created"] == 1
    with db(cfgfile).connect() as c:
        assert c.scalar(select(func.count()).select_from(ThreadId)) == 2


def test_the_old_helpdesks_acknowledgement_is_ours_but_not_the_first_response(cfgfile, tmp_path, capsys):
    d = tmp_path / "eml"
    d.mkdir()
    (d / "1.eml").write_bytes(build(msgid="<q@customer.example.com>", subject="Printer"))
    (d / "2.eml").write_bytes(build(frm="support@support.example.test", name="Support", msgid="<ack@old.helpdesk>",
                                    to="alice@customer.example.com", subject="[#42] Printer",
                                    in_reply_to="<q@customer.example.com>",
                                    headers={"Auto-Submitted": "auto-replied"}))
    code, out, err = run(cfgfile, "import", "--json", str(d), capsys=capsys)
    assert code == 0, err
    with db(cfgfile).connect() as c:
        assert c.execute(select(Message.direction, Message.kind).where(Message.message_id == "ack@old.helpdesk")
                         ).one() == ("out", "automatic")
        assert c.execute(select(Ticket.first_responded_at)).scalar_one() is None


def test_a_mail_without_a_date_takes_its_delivery_date_from_the_mbox(cfgfile, tmp_path, capsys):
    box = tmp_path / "old.mbox"
    box.write_bytes(mbox_entry(redate(build(subject="Undated")), "alice@customer.example.com",
                               datetime(2019, 3, 14, 9, 30)))
    code, out, err = run(cfgfile, "import", "--json", str(box), capsys=capsys)
    assert code == 0, err
    assert json.loads(out)["closed"] == 1
    with db(cfgfile).connect() as c:
        assert c.execute(select(Ticket.created_at)).scalar_one() == datetime(2019, 3, 14, 9, 30, tzinfo=timezone.utc)


def test_someone_else_answering_in_the_conversation_joins_it_as_a_cc_not_as_a_stranger(cfgfile, tmp_path, capsys):
    # Carol was on no To or Cc: in live mail, without a reply token, she would be a stranger
    d = tmp_path / "eml"
    d.mkdir()
    q = "<q@customer.example.com>"
    (d / "1.eml").write_bytes(redate(build(msgid=q, subject="Printer"), datetime(2019, 3, 1, 9, tzinfo=timezone.utc)))
    (d / "2.eml").write_bytes(redate(build(frm="carol@elsewhere.example.org", name="Carol Colleague",
                                           msgid="<carol@elsewhere.example.org>", subject="Re: Printer",
                                           in_reply_to=q, references=q),
                                     datetime(2019, 3, 1, 11, tzinfo=timezone.utc)))
    code, out, err = run(cfgfile, "import", "--json", str(d), capsys=capsys)
    assert code == 0, err
    assert json.loads(out)["tickets_created"] == 1
    with db(cfgfile).connect() as c:
        tid = c.execute(select(Ticket.id)).scalar_one()
        assert c.execute(select(Message.ticket_id, Message.kind).where(
            Message.sender_email == "carol@elsewhere.example.org")).one() == (tid, "customer")
        roles = set(c.execute(select(Participant.email, Participant.role)).all())
        assert roles == {("alice@customer.example.com", "requester"), ("carol@elsewhere.example.org", "cc")}
        kinds = set(c.execute(select(Event.kind)).scalars())
        assert not kinds & {"stranger", "stranger_rejected", "held"}


def test_someone_answering_in_a_later_import_joins_the_existing_ticket_as_a_cc(cfgfile, tmp_path, capsys):
    """A second folder imported later (or an overlapping history) threads onto the ticket the
    first made: its new people join as cc there too, and nobody already on it is added twice."""
    q = "<q@customer.example.com>"
    first, later = tmp_path / "first", tmp_path / "later"
    first.mkdir()
    later.mkdir()
    (first / "1.eml").write_bytes(redate(build(msgid=q, subject="Printer", cc="Ops <ops@customer.example.com>"),
                                         datetime(2019, 3, 1, 9, tzinfo=timezone.utc)))
    assert run(cfgfile, "import", "--json", str(first), capsys=capsys)[0] == 0
    for i, (frm, name) in enumerate([("carol@elsewhere.example.org", "Carol Colleague"),
                                     ("alice@customer.example.com", "Alice Customer")]):
        (later / f"{i}.eml").write_bytes(redate(build(frm=frm, name=name, msgid=f"<later{i}@elsewhere.example.org>",
                                                      subject="Re: Printer", in_reply_to=q, references=q,
                                                      cc="Ops <ops@customer.example.com>"),
                                                datetime(2019, 3, 1, 11 + i, tzinfo=timezone.utc)))
    code, out, err = run(cfgfile, "import", "--json", str(later), capsys=capsys)
    assert code == 0, err
    assert json.loads(out)["tickets_created"] == 0
    with db(cfgfile).connect() as c:
        roles = sorted(c.execute(select(Participant.email, Participant.role)).all())
    assert roles == [("alice@customer.example.com", "requester"), ("carol@elsewhere.example.org", "cc"),
                     ("ops@customer.example.com", "cc")]


def test_a_follow_up_months_after_the_close_stays_on_its_ticket_without_reopening_or_linking(cfgfile, tmp_path,
                                                                                             capsys):
    # live mail would open a linked ticket: the reopen window (14 days) is long past
    d = tmp_path / "eml"
    d.mkdir()
    q, a = "<q@customer.example.com>", "<a@support.example.test>"
    (d / "1.eml").write_bytes(redate(build(msgid=q, subject="Printer"), datetime(2019, 1, 7, 9, tzinfo=timezone.utc)))
    (d / "2.eml").write_bytes(redate(build(frm="support@support.example.test", name="Support", msgid=a,
                                           to="alice@customer.example.com", subject="Re: Printer",
                                           in_reply_to=q, references=q),
                                     datetime(2019, 1, 7, 12, tzinfo=timezone.utc)))
    (d / "3.eml").write_bytes(redate(build(msgid="<again@customer.example.com>", subject="Re: Printer",
                                           body="Hello,\nit is on fire again, a new question.\n",
                                           in_reply_to=a, references=f"{q} {a}"),
                                     datetime(2019, 6, 3, 9, tzinfo=timezone.utc)))
    code, out, err = run(cfgfile, "import", "--json", str(d), capsys=capsys)
    assert code == 0, err
    counts = json.loads(out)
    assert counts["imported"] == 3 and counts["tickets_created"] == 1 and counts["closed"] == 1
    with db(cfgfile).connect() as c:
        t = c.execute(select(Ticket.id, Ticket.status)).one()
        assert t.status == "closed"
        assert set(c.execute(select(Message.ticket_id)).scalars()) == {t.id}
        kinds = set(c.execute(select(Event.kind)).scalars())
        assert not kinds & {"reopened", "linked", "linked_ticket"}
        assert c.scalar(select(func.count()).select_from(Event).where(Event.kind == "created")) == 1


def _import_on_a_terminal(cfgfile, tmp_path, *extra):
    """`supportgw import` with its stderr on a pseudo-terminal, as at a shell: (code, stdout, terminal)."""
    history_corpus.write(tmp_path / "hist", 40)
    master, slave = os.openpty()
    # a real terminal has a size; a new pseudo-terminal's is 0x0, in which tqdm draws an empty line
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    cmd = [sys.executable, "-m", "gateway.cli", "--config", str(cfgfile), "import", *extra,
           str(tmp_path / "hist" / "inbox.mbox"), str(tmp_path / "hist" / "Sent")]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    seen = b""
    while True:  # until the child's end of the terminal closes
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: every writer has gone
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    out = proc.stdout.read().decode()
    return proc.wait(timeout=120), out, seen.decode(errors="replace")


def test_on_a_terminal_the_import_shows_a_progress_bar_with_messages_rate_and_eta(cfgfile, tmp_path):
    code, out, term = _import_on_a_terminal(cfgfile, tmp_path)
    assert code == 0, term
    assert "importing" in term and "Traceback" not in term
    assert re.search(r"importing: 100%\|.*\| (\d+)/\1 ", term), term  # messages done of messages planned
    assert re.search(r"\[\d\d:\d\d<\d\d:\d\d, *[\d.]+msg/s\]", term), term  # elapsed<ETA, rate
    assert "imported:" in out  # the summary still goes to stdout


def test_with_json_or_without_a_terminal_the_import_prints_no_bar(cfgfile, tmp_path, capsys):
    code, out, term = _import_on_a_terminal(cfgfile, tmp_path, "--json")
    assert code == 0, term
    assert json.loads(out)["imported"] > 0
    assert "msg/s" not in term and "importing" not in term
    # stderr not a terminal (a pipe, cron, a log file)
    history_corpus.write(tmp_path / "hist2", 10)
    done = subprocess.run([sys.executable, "-m", "gateway.cli", "--config", str(cfgfile), "import",
                           str(tmp_path / "hist2" / "inbox.mbox")], cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert done.returncode == 0, done.stderr
    assert "msg/s" not in done.stderr and "importing" not in done.stderr and "imported:" in done.stdout


def test_imported_tickets_keep_the_brand_the_customer_wrote_to(cfgfile, tmp_path, capsys):
    # an [[address]]: its tickets answer From it, in its language, on its team (as live tickets)
    cfgfile.write_text(cfgfile.read_text() + '[[address]]\naddress = "help@brand-b.example"\n'
                       'language = "zh-CN"\nteam = "brand-b"\n')
    to_brand = build(msgid="<b1@customer.example.com>", to="help@brand-b.example", subject="Invoice question")
    to_us = build(msgid="<d1@customer.example.com>", subject="Website returns 502")
    for name, raw in (("b.eml", to_brand), ("d.eml", to_us)):
        (tmp_path / name).write_bytes(raw)
    code, out, _ = run(cfgfile, "import", "--json", str(tmp_path / "b.eml"), str(tmp_path / "d.eml"), capsys=capsys)
    assert code == 0 and json.loads(out)["imported"] == 2
    with db(cfgfile).connect() as c:
        got = {r.subject: (r.address, r.language, r.team) for r in c.execute(
            select(Ticket.subject, Ticket.address, Ticket.language, Ticket.team))}
    assert got["Invoice question"] == ("help@brand-b.example", "zh-CN", "brand-b")
    assert got["Website returns 502"][0] == "" and got["Website returns 502"][2] != "brand-b"
