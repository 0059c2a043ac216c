"""The spine, end to end over real sockets: SMTP in -> ticket -> acknowledgement
relayed over SMTP -> the customer's reply to it threads onto the same ticket."""

from __future__ import annotations

import smtplib

import pytest
from sqlalchemy import select

from storage.models import Message, OutboxRow, SpoolEntry, Ticket
from tests.conftest import wait_for
from tests.mail import body_text, build, parse, send

CUSTOMER = "alice@customer.example.com"
SUPPORT = "support@support.example.test"


def _tickets(app):
    with app.db.session() as s:
        return list(s.execute(select(Ticket).order_by(Ticket.id)).scalars())


def _messages(app, ticket_id):
    with app.db.session() as s:
        return list(s.execute(select(Message).where(Message.ticket_id == ticket_id).order_by(Message.id)).scalars())


def test_mail_becomes_ticket_and_acknowledgement_and_reply_threads(running, relay):
    gw = running()
    app = gw.app
    send(gw.smtp_port, build(subject="Printer on fire", msgid="<first@customer.example.com>"), CUSTOMER, [SUPPORT])

    ticket = wait_for(lambda: (_tickets(app) or [None])[0], what="ticket")
    assert ticket.ref.startswith("TS-")
    assert ticket.requester_email == CUSTOMER
    assert ticket.subject == "Printer on fire"

    ack_env = wait_for(lambda: relay.messages and relay.messages[0], what="acknowledgement at the relay")
    ack = parse(ack_env["raw"])
    assert ack_env["to"] == [CUSTOMER]
    assert ack_env["from"].startswith("bounces+")  # VERP envelope sender
    assert ticket.ref in ack["Subject"]
    assert ack["In-Reply-To"] == "<first@customer.example.com>"
    assert "<first@customer.example.com>" in ack["References"]
    assert ack["Auto-Submitted"] == "auto-replied"
    assert ack["Reply-To"].startswith("support+t")
    assert ticket.priority in body_text(ack)

    # the customer answers the acknowledgement: same ticket, found by In-Reply-To
    reply = build(subject=f"Re: {ack['Subject']}", body="It is still burning.\n",
                  msgid="<second@customer.example.com>", in_reply_to=ack["Message-ID"], references=ack["Message-ID"])
    send(gw.smtp_port, reply, CUSTOMER, [SUPPORT])
    wait_for(lambda: len(_messages(app, ticket.id)) == 2, what="reply threaded")
    assert len(_tickets(app)) == 1
    assert "still burning" in _messages(app, ticket.id)[1].text


def test_relay_attempt_is_refused_with_550(running):
    gw = running()
    with smtplib.SMTP("127.0.0.1", gw.smtp_port) as s:
        s.ehlo()
        s.mail("spammer@evil.example")
        code, msg = s.rcpt("victim@elsewhere.example")
        assert code == 550
        assert b"relay" in msg.lower()
        code, _ = s.rcpt(SUPPORT)
        assert code == 250


def test_oversized_message_is_refused_with_552_and_not_spooled(running):
    gw = running(smtp={"max_message_size": 2000})
    big = build(body=("x" * 70 + "\n") * 80)
    # a client that declares SIZE is refused at MAIL FROM ...
    with pytest.raises(smtplib.SMTPSenderRefused) as err:
        send(gw.smtp_port, big, CUSTOMER, [SUPPORT])
    assert err.value.smtp_code == 552
    # ... and one that does not is refused after DATA
    with smtplib.SMTP("127.0.0.1", gw.smtp_port) as s:
        s.ehlo()
        assert s.mail(CUSTOMER)[0] == 250
        assert s.rcpt(SUPPORT)[0] == 250
        code, msg = s.data(big)
    assert code == 552
    with gw.app.db.session() as s:
        assert s.execute(select(SpoolEntry)).first() is None


def test_250_only_after_spool_commit_and_451_when_storage_broken(running):
    gw = running()
    app = gw.app
    send(gw.smtp_port, build(msgid="<a@x>"), CUSTOMER, [SUPPORT])
    with app.db.session() as s:  # 250 came back: the bytes must already be in the spool
        assert s.execute(select(SpoolEntry).where(SpoolEntry.message_id == "a@x")).scalar_one()

    # break the database: the listener must answer 451 (retry later), not 250 and not 5xx
    real_url = app.db.url
    if app.db.is_sqlite:
        app.db.engine.dispose()
        from sqlalchemy import event

        @event.listens_for(app.db.engine, "connect")
        def _readonly(dbapi_conn, _rec):
            dbapi_conn.execute("PRAGMA query_only=ON")
    else:
        from storage.db import Database

        broken = Database(real_url.rsplit("/", 1)[0] + "/no_such_database_here")
        app.db.engine, app.db.Session = broken.engine, broken.Session
    with pytest.raises(smtplib.SMTPDataError) as err:
        send(gw.smtp_port, build(msgid="<b@x>"), CUSTOMER, [SUPPORT])
    assert err.value.smtp_code == 451


def test_duplicate_message_is_recognised_and_not_processed_twice(app):
    from gateway.pipeline.process import Source, ingest

    raw = build(msgid="<dup@customer.example.com>")
    first = ingest(app, [(raw, Source("file"))])
    second = ingest(app, [(raw, Source("smtp"))])
    assert first["created"] == 1
    assert second["duplicates"] == 1
    assert len(_tickets(app)) == 1
    with app.db.session() as s:
        acks = s.execute(select(OutboxRow).where(OutboxRow.kind == "acknowledgement")).scalars().all()
        assert len(acks) == 1


def test_many_concurrent_smtp_clients_all_spooled(running):
    import concurrent.futures

    gw = running()
    n = 60

    def one(i):
        send(gw.smtp_port, build(msgid=f"<c{i}@customer.example.com>", subject=f"case {i}",
                                 frm=f"user{i}@customer.example.com"), f"user{i}@customer.example.com", [SUPPORT])

    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        list(ex.map(one, range(n)))
    wait_for(lambda: len(_tickets(gw.app)) == n, timeout=30, what=f"{n} tickets")
    refs = [t.ref for t in _tickets(gw.app)]
    assert len(set(refs)) == n
