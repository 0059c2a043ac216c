"""Catching up after an outage, against the real Dovecot: `supportgw imap backfill NAME --since
DATE` takes every message since then that the gateway lacks, read or not, as live mail
(acknowledged unless old), exactly once with what the poller took, and leaves the mailbox as it was."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from gateway.edges.backfill import backfill
from gateway.pipeline.process import Source, ingest
from storage.models import Message, OutboxRow, Ticket
from tests.dovecot import dovecot  # noqa: F401
from tests.imap_kit import imap_gateway, inbound_by_message_id, seen_flags  # noqa: F401
from tests.conftest import wait_for
from tests.mail import build, redate, toml_value


def acks(app) -> list[str]:
    with app.db.session() as s:
        return sorted(s.scalars(select(OutboxRow.rcpt).where(OutboxRow.kind == "acknowledgement")))


def old(raw: bytes, days: int) -> bytes:
    when = datetime.now(timezone.utc) - timedelta(days=days)
    return redate(raw, when, [when], hop="from mx by imap.support.example.test")


def test_backfill_takes_what_the_gateway_lacks_seen_or_not_once(make_app, dovecot):
    app = make_app(imap=[dovecot.mailbox_config()])
    had = build(frm="ann@customer.example.com", msgid="<had@customer.example.com>", subject="Before the outage")
    ingest(app, [(had, Source("imap:helpdesk"))])  # taken before the gateway went down
    other_bytes = had.replace(b"Subject: Before the outage", b"X-Copy: resent\r\nSubject: Before the outage")
    unseen = build(frm="ben@customer.example.com", msgid="<b@customer.example.com>", subject="During the outage")
    read = build(frm="cat@customer.example.com", msgid="<c@customer.example.com>", subject="Read in webmail")
    stale = old(build(frm="dan@customer.example.com", msgid="<d@customer.example.com>", subject="Moved in"), 40)
    dovecot.append(had, other_bytes, unseen)
    dovecot.append(read, flags=[b"\\Seen"])
    dovecot.append(stale)
    c = dovecot.client()
    c.append("INBOX", build(frm="eve@customer.example.com", msgid="<e@customer.example.com>", subject="Last year"),
             msg_time=datetime.now(timezone.utc) - timedelta(days=60))
    c.logout()
    flags_before = seen_flags(dovecot)

    report = backfill(app, app.config.imap[0], (datetime.now(timezone.utc) - timedelta(days=3)).date())

    assert report["found"] == 5 and report["already_had"] == 2 and report["taken"] == 3
    assert {m["message_id"] for m in report["messages"]} == {"b@customer.example.com", "c@customer.example.com",
                                                            "d@customer.example.com"}
    assert all(m["ticket"] for m in report["messages"])
    assert report["created"] == 2 and report["history"] == 1  # the old one is filed, not acknowledged
    assert acks(app) == ["ann@customer.example.com", "ben@customer.example.com", "cat@customer.example.com"]
    assert seen_flags(dovecot) == flags_before  # the mailbox is as it was

    again = backfill(app, app.config.imap[0], (datetime.now(timezone.utc) - timedelta(days=3)).date())
    assert again["taken"] == 0 and again["already_had"] == 5
    assert set(inbound_by_message_id(app).values()) == {1}


def test_the_poller_after_a_backfill_takes_nothing_twice(make_app, dovecot, imap_gateway):  # noqa: F811
    app = make_app(imap=[dovecot.mailbox_config()])
    raws = [build(frm=f"c{i}@customer.example.com", msgid=f"<p{i}@customer.example.com>", subject=f"Outage {i}")
            for i in range(4)]
    dovecot.append(*raws)
    report = backfill(app, app.config.imap[0], datetime.now(timezone.utc).date())
    assert report["taken"] == 4
    imap_gateway(app=app)
    wait_for(lambda: all(seen_flags(dovecot)), timeout=30, what="the poller to go over the folder")
    with app.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Message).where(Message.direction == "in")) == 4
    assert len(acks(app)) == 4


def test_backfill_command_reports_what_it_took(tmp_path, dovecot, capsys):
    from gateway.cli import main
    from tests.conftest import drop_database, fresh_database_url

    url = fresh_database_url(tmp_path)
    key = tmp_path / "secret.key"
    key.write_text("backfill-test-secret-0123456789abcdef\n")
    key.chmod(0o600)
    mb = dovecot.mailbox_config()
    cfg = tmp_path / "supportgw.toml"
    cfg.write_text(f'[gateway]\ndata_dir = "{tmp_path / "var"}"\nsecret_key = {{ file = "{key}" }}\n'
                   f'[database]\nurl = "{url}"\n[[imap]]\n'
                   + "".join(f"{k} = {toml_value(v)}\n" for k, v in mb.items()))
    dovecot.append(build(msgid="<cli@customer.example.com>", subject="Down since noon"))
    try:
        code = main(["--config", str(cfg), "imap", "backfill", "helpdesk", "--since",
                     datetime.now(timezone.utc).date().isoformat(), "--json"])
        out = json.loads(capsys.readouterr().out)
        assert code == 0 and out["taken"] == 1 and out["messages"][0]["message_id"] == "cli@customer.example.com"
        code = main(["--config", str(cfg), "imap", "backfill", "nosuch", "--since", "2026-01-01"])
        assert code == 2 and "no [[imap]] mailbox named 'nosuch'" in capsys.readouterr().err
    finally:
        drop_database(url)


def test_a_poller_first_connected_to_a_folder_of_old_mail_files_it_without_a_word(make_app, dovecot,
                                                                                imap_gateway):  # noqa: F811
    app = make_app(imap=[dovecot.mailbox_config()])
    dovecot.append(*[old(build(frm=f"x{i}@customer.example.com", msgid=f"<old{i}@customer.example.com>",
                               subject=f"From last month {i}"), 30 + i) for i in range(3)])
    dovecot.append(build(frm="new@customer.example.com", msgid="<new@customer.example.com>", subject="Today"))
    imap_gateway(app=app)
    wait_for(lambda: sum(inbound_by_message_id(app).values()) == 4, timeout=30, what="the four mails stored")
    assert acks(app) == ["new@customer.example.com"]
    with app.db.session() as s:  # no engineer was notified of the old ones either
        assert s.scalar(select(func.count()).select_from(OutboxRow).join(Ticket, Ticket.id == OutboxRow.ticket_id)
                        .where(Ticket.requester_email.like("x%"))) == 0


def test_import_from_an_imap_inbox_and_its_sent_folder_keeps_our_answers_in_each_conversation(
        tmp_path, dovecot, capsys):
    from bench import history_corpus
    from gateway.cli import main
    from tests.conftest import drop_database, fresh_database_url

    inbox, sent, truth = [], [], {}
    for conv, where, mid, raw, deleted in history_corpus.conversations(24):
        if not deleted:
            truth.setdefault(mid, conv)
            (inbox if where == "inbox" else sent).append(raw)
    dovecot.append(*inbox)
    dovecot.append(*sent, folder="Sent", flags=[b"\\Seen"])
    flags_before = seen_flags(dovecot)
    url = fresh_database_url(tmp_path)
    key = tmp_path / "secret.key"
    key.write_text("import-imap-secret-0123456789abcdef\n")
    key.chmod(0o600)
    cfg = tmp_path / "supportgw.toml"
    cfg.write_text(f'[gateway]\ndata_dir = "{tmp_path / "var"}"\nsecret_key = {{ file = "{key}" }}\n'
                   f'[database]\nurl = "{url}"\n[[imap]]\n'
                   + "".join(f"{k} = {toml_value(v)}\n" for k, v in dovecot.mailbox_config().items()))
    try:
        code = main(["--config", str(cfg), "import", "--imap", "helpdesk", "--folder", "INBOX", "--folder", "Sent",
                     "--json"])
        counts = json.loads(capsys.readouterr().out)
        assert code == 0
        assert counts["imported"] == len(truth) and counts["outbound"] == 24
        assert counts["tickets_created"] == len(set(truth.values()))
        from sqlalchemy import create_engine

        eng = create_engine(url)
        with eng.connect() as c:
            assert c.scalar(select(func.count()).select_from(OutboxRow)) == 0
            groups: dict = {}
            for mid, tid in c.execute(select(Message.message_id, Message.ticket_id)).all():
                groups.setdefault(tid, set()).add(truth[mid])
        eng.dispose()
        assert all(len(g) == 1 for g in groups.values())
        assert seen_flags(dovecot) == flags_before  # read-only: the team's mailbox is untouched
    finally:
        drop_database(url)
