"""Live ingest never mistakes old mail for new: a mail older than workflow.history_age_days
(by its Date and Received headers, against the gateway's clock) is filed as history, with no
acknowledgement, notification or SLA clock, and the ticket's history says why."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from gateway.clock import ManualClock
from gateway.pipeline.process import Source, ingest
from storage.models import Event, Message, OutboxRow, Ticket
from tests.mail import build, redate

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)


def dated(when: datetime, received: list[datetime] = (), **kw) -> bytes:
    return redate(build(**kw), when, received)


def outbox_count(app) -> int:
    with app.db.session() as s:
        return s.scalar(select(func.count()).select_from(OutboxRow))


def test_a_mail_from_2019_is_filed_as_history_with_its_own_date_and_no_mail_out(make_app):
    app = make_app(clock=ManualClock(T0))
    when = datetime(2019, 3, 14, 9, 30, tzinfo=timezone.utc)
    counts = ingest(app, [(dated(when, [when + timedelta(minutes=1)], subject="Printer jam, 2019"),
                           Source("file"))])
    assert counts["history"] == 1 and counts["created"] == 0
    assert outbox_count(app) == 0  # no acknowledgement, no engineer notification
    with app.db.session() as s:
        t = s.scalars(select(Ticket)).one()
        assert t.created_at == when
        assert t.first_response_due is None and t.resolution_due is None  # no SLA clock
        assert s.scalars(select(Message.created_at)).one() == when
        why = s.scalars(select(Event.detail).where(Event.kind == "history")).one()
    assert "no acknowledgement" in why and "2019-03-14" in why and "history_age_days = 7" in why


def test_age_is_judged_against_the_gateways_clock_at_the_configured_limit(make_app):
    clock = ManualClock(T0)
    app = make_app(clock=clock)
    c = ingest(app, [(dated(T0 - timedelta(days=6, hours=23), subject="six days"), Source("file")),
                     (dated(T0 - timedelta(days=7, hours=1), subject="seven days", frm="bob@customer.example.com"),
                      Source("file"))])
    assert c["created"] == 1 and c["history"] == 1
    with app.db.session() as s:
        acked = s.scalars(select(OutboxRow.rcpt).where(OutboxRow.kind == "acknowledgement")).all()
    assert acked == ["alice@customer.example.com"]

    lenient = make_app(clock=clock, workflow={"history_age_days": 30})
    assert ingest(lenient, [(dated(T0 - timedelta(days=20)), Source("file"))])["created"] == 1
    off = make_app(clock=clock, workflow={"history_age_days": 0})
    assert ingest(off, [(dated(datetime(2019, 1, 1, tzinfo=timezone.utc)), Source("file"))])["created"] == 1


def test_a_mail_without_any_date_is_new(make_app):
    app = make_app(clock=ManualClock(T0))
    raw = b"\r\n".join(ln for ln in build().split(b"\r\n") if not ln.lower().startswith(b"date:"))
    assert ingest(app, [(raw, Source("file"))])["created"] == 1
    assert outbox_count(app) > 0


def test_a_wrong_sender_clock_is_overruled_by_a_recent_received_hop(make_app):
    """The customer's clock says 2019, but our MX received it an hour ago: they are owed an answer."""
    app = make_app(clock=ManualClock(T0))
    raw = dated(datetime(2019, 1, 1, tzinfo=timezone.utc), [T0 - timedelta(hours=1)])
    assert ingest(app, [(raw, Source("smtp"))])["created"] == 1
    with app.db.session() as s:
        assert s.scalars(select(OutboxRow.kind).where(OutboxRow.kind == "acknowledgement")).all()


def test_an_old_reply_joins_its_ticket_without_notifying_anyone(make_app):
    clock = ManualClock(T0 - timedelta(days=30))
    app = make_app(clock=clock)
    first = build(msgid="<q1@customer.example.com>", subject="VPN drops")
    ingest(app, [(first, Source("file"))])
    before = outbox_count(app)
    clock.set(T0)
    reply = dated(T0 - timedelta(days=20), msgid="<q2@customer.example.com>", subject="Re: VPN drops",
                  in_reply_to="<q1@customer.example.com>", references="<q1@customer.example.com>")
    assert ingest(app, [(reply, Source("imap:support"))])["history"] == 1
    assert outbox_count(app) == before
    with app.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Ticket)) == 1
        assert s.scalar(select(func.count()).select_from(Message)) == 2
        assert s.scalars(select(Event.kind).where(Event.kind == "history")).all() == ["history"]


def test_ingest_json_counts_the_mail_filed_as_history(tmp_path, capsys):
    from gateway.cli import main
    from tests.conftest import drop_database, fresh_database_url

    url = fresh_database_url(tmp_path)
    key = tmp_path / "secret.key"
    key.write_text("history-test-secret-0123456789abcdef\n")
    key.chmod(0o600)
    cfg = tmp_path / "supportgw.toml"
    cfg.write_text(f'[gateway]\ndata_dir = "{tmp_path / "var"}"\nsecret_key = {{ file = "{key}" }}\n'
                   f'[database]\nurl = "{url}"\n')
    (tmp_path / "old.eml").write_bytes(dated(datetime(2019, 3, 14, tzinfo=timezone.utc), subject="old"))
    (tmp_path / "new.eml").write_bytes(build(subject="new"))
    try:
        code = main(["--config", str(cfg), "ingest", "--json", str(tmp_path / "old.eml"), str(tmp_path / "new.eml")])
        counts = json.loads(capsys.readouterr().out)
    finally:
        drop_database(url)
    assert code == 0
    assert counts["history"] == 1 and counts["tickets_created"] == 1


def test_old_mail_is_filed_as_history_and_the_log_says_so_for_each_one(make_app, caplog):
    clock = ManualClock(T0 - timedelta(days=30))
    app = make_app(clock=clock)
    ingest(app, [(build(msgid="<q1@customer.example.com>", subject="VPN drops"), Source("file"))])
    clock.set(T0)
    old_reply = dated(T0 - timedelta(days=20), msgid="<q2@customer.example.com>", subject="Re: VPN drops",
                      in_reply_to="<q1@customer.example.com>", references="<q1@customer.example.com>")
    old_new = dated(datetime(2019, 3, 14, tzinfo=timezone.utc), msgid="<q3@customer.example.com>",
                    frm="bob@customer.example.com", subject="Printer jam, 2019")
    new = build(msgid="<q4@customer.example.com>", frm="carol@customer.example.com", subject="Today's question")
    with caplog.at_level("INFO", logger="supportgw.history"):
        counts = ingest(app, [(old_reply, Source("file")), (old_new, Source("file")), (new, Source("file"))])
    assert counts["history"] == 2 and counts["created"] == 1 and counts["threaded"] == 0
    with app.db.session() as s:
        refs = dict(s.execute(select(Message.message_id, Ticket.ref)
                              .join(Ticket, Message.ticket_id == Ticket.id)).all())
    said = [r.getMessage() for r in caplog.records if r.name == "supportgw.history"]
    assert len(said) == 2, said
    for mid, line in zip(("q2@customer.example.com", "q3@customer.example.com"), said):
        assert f"({mid}) filed as history on {refs[mid]}:" in line
        assert "older than workflow.history_age_days = 7" in line
    assert not any("q4@customer.example.com" in line for line in said)
