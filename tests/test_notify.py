"""Notifications to engineers: who gets them, what they carry, and how they thread."""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP

import pytest
from sqlalchemy import select

from storage.models import Participant
from tests.engineer_mail import (
    ALICE, BOB, CAROL, CUSTOMER, SUPPORT, Desk, customer_mail, events, latest_ticket_id, open_ticket,
)
from tests.mail import body_text, build

EN = dict(subject="Website returns 502", body="Hello,\nour website returns 502 since 9:00.\n")


@pytest.fixture
def desk(make_app, clock):
    return Desk(make_app(clock=clock))


def _token(msg) -> str:
    return msg["Reply-To"].split("+", 1)[1].split("@", 1)[0]


def test_new_ticket_notifies_the_owner_with_fields_and_a_reply_address_signed_for_them(desk):
    desk.customer_writes(msgid="<first@mail.example.test>", **EN)
    mails = desk.new_mail()
    tid = latest_ticket_id(desk.app)
    [ack] = [m["msg"] for m in customer_mail(mails)]
    [note] = [m["msg"] for m in mails if m["to"] == [ALICE]]
    text = body_text(note)
    for expected in ("TS-000001", "Website returns 502", "Priority:", "Li Wei <li.wei@mail.example.test>",
                     "our website returns 502 since 9:00.", "Respond by:"):
        assert expected in text
    assert note["From"].addresses[0].addr_spec == SUPPORT
    assert "[TS-000001]" in note["Subject"]
    # the token is alice's alone: it proves nothing for bob or the customer
    assert desk.app.signer.check_reply_token(_token(note), ALICE) == tid
    assert desk.app.signer.check_reply_token(_token(note), BOB) is None
    assert desk.app.signer.check_reply_token(_token(note), CUSTOMER) is None
    # one conversation: the customer's mail is in References, and Outlook's thread headers agree
    assert "<first@mail.example.test>" in note["References"]
    assert note["Thread-Topic"] == "Website returns 502"
    assert note["Thread-Index"] == ack["Thread-Index"]
    assert note["Auto-Submitted"] == "auto-generated"  # out-of-office replies stay away
    assert [e.data["to"] for e in events(desk.app, tid, "notified")] == [[ALICE]]


def test_notification_names_the_customer_and_their_organisation_as_people_read_them(desk):
    desk.customer_writes(msgid="<noname@mail.example.test>", name="", **EN)  # a From with no display name
    [note] = [m["msg"] for m in desk.new_mail() if m["to"] == [ALICE]]
    text = body_text(note)
    # the bare address (not " <li.wei@...>"), and the directory's name for the organisation, not its id
    assert "Customer:     li.wei@mail.example.test, 李伟工作室" in text
    assert "#assign bob@support.example.com" in text  # a real teammate in the commands example


def test_follow_up_notification_collapses_the_quoted_history(desk):
    tid, _note = open_ticket(desk, **EN)
    [ack] = [m["msg"] for m in customer_mail(desk.transport.sent)]
    quoted = "".join(f"> {ln}\n" for ln in body_text(ack).splitlines())
    desk.receive(build(frm=CUSTOMER, to=ack["Reply-To"], subject="Re: " + ack["Subject"],
                       body="It is back since 10:30, logs below.\n\nOn Mon, 2 Mar 2026 at 09:01, Example Support "
                            "<support@support.example.test> wrote:\n" + quoted, in_reply_to=ack["Message-ID"]))
    [follow] = [m["msg"] for m in desk.new_mail() if m["to"] == [ALICE]]
    text = body_text(follow)
    assert "It is back since 10:30" in text
    assert "wrote again" in text
    assert "We received your request" not in text and "Thank you for contacting" not in text
    assert "lines of quoted history hidden" in text
    # same subject, longer References: the engineer's client keeps one thread
    assert follow["Subject"] == _note["Subject"]
    assert _note["Message-ID"] in follow["References"]


def test_watchers_and_manager_are_notified_each_with_their_own_token(desk):
    # bigbank is a strategic customer: the project manager (carol) watches its tickets
    desk.customer_writes(frm="ops@bigbank.example", name="Ops", **EN)
    mails = desk.new_mail()
    tid = latest_ticket_id(desk.app)
    by_rcpt = {m["to"][0]: m["msg"] for m in mails if m["to"][0].endswith("@support.example.com")}
    assert set(by_rcpt) == {ALICE, CAROL}
    assert _token(by_rcpt[ALICE]) != _token(by_rcpt[CAROL])
    assert desk.app.signer.check_reply_token(_token(by_rcpt[CAROL]), CAROL) == tid


def test_ticket_without_owner_goes_to_the_team(desk):
    # a sender outside the customer directory: no project, so no primary to own it
    desk.customer_writes(frm="someone@unknown.example", name="Someone", **EN)
    engineers = {m["to"][0] for m in desk.new_mail() if m["to"][0].endswith("@support.example.com")}
    team = {e.email for e in desk.app.rules.current.engineers.values() if e.team == "support"}
    assert engineers == team and {ALICE, BOB} <= engineers


def test_new_watcher_hears_of_follow_ups(desk):
    tid, _ = open_ticket(desk, **EN)
    with desk.app.db.session() as s:
        s.add(Participant(ticket_id=tid, email=BOB, role="watcher"))
    [ack] = [m["msg"] for m in customer_mail(desk.transport.sent)]
    desk.receive(build(frm=CUSTOMER, to=ack["Reply-To"], subject="Re: x", body="More details.\n",
                       in_reply_to=ack["Message-ID"]))
    assert sorted(m["to"][0] for m in desk.new_mail()) == [ALICE, BOB]
    with desk.app.db.session() as s:
        s.execute(select(Participant).where(Participant.email == BOB)).scalar_one().active = False
    desk.receive(build(frm=CUSTOMER, to=ack["Reply-To"], subject="Re: x", body="Even more.\n",
                       in_reply_to=ack["Message-ID"]))
    assert [m["to"][0] for m in desk.new_mail()] == [ALICE]


def _with_attachments(files) -> bytes:
    m = EmailMessage()
    m["From"] = f"Li Wei <{CUSTOMER}>"
    m["To"] = SUPPORT
    m["Subject"] = "Website returns 502, logs attached"
    m["Message-ID"] = "<att@mail.example.test>"
    m.set_content("Logs attached.\n")
    for name, data in files:
        m.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return m.as_bytes(policy=SMTP)


def test_small_attachments_are_forwarded_and_large_ones_referenced(make_app, clock):
    desk = Desk(make_app(clock=clock, workflow={"attachment_link_over": 2000}))
    small, big = b"error 502 upstream\n" * 10, bytes(range(256)) * 40
    desk.receive(_with_attachments([("error.log", small), ("core.dump", big)]))
    [note] = [m["msg"] for m in desk.new_mail() if m["to"] == [ALICE]]
    attached = {p.get_filename(): p.get_payload(decode=True) for p in note.iter_attachments()}
    assert attached == {"error.log": small}
    text = body_text(note)
    import hashlib

    assert "core.dump" in text and hashlib.sha256(big).hexdigest() in text and "too large" in text
