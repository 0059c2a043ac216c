"""Two engineers answering the same customer at once: the second answer, written without
having seen the first, is held and its author asked to #send or #drop it."""

from __future__ import annotations

from storage.models import Message
from tests.engineer_mail import (
    ALICE, BOB, CUSTOMER, Desk, customer_mail, events, latest_ticket_id, open_ticket, reply_to,
)
from tests.desk_kit import WEBSITE_502 as EN, desk  # noqa: F401 (desk: the fixture)
from tests.mail import body_text


def _two_engineers(desk):
    """Alice has the new-ticket notification; Bob, assigned a minute later, answers at once."""
    tid, note_alice = open_ticket(desk, **EN)
    desk.clock.advance(minutes=1)
    desk.receive(reply_to(note_alice, f"#assign {BOB}", frm=ALICE))
    [note_bob] = [m["msg"] for m in desk.new_mail() if m["to"] == [BOB]]
    desk.clock.advance(minutes=1)
    desk.receive(reply_to(note_bob, "Please restart the nginx service.", frm=BOB, name="Bob Li"))
    assert len(customer_mail(desk.new_mail())) == 1  # bob's answer went out
    desk.clock.advance(minutes=3)
    return tid, note_alice


def _relayed(app, tid):
    with app.db.session() as s:
        return [m.text for m in s.query(Message).filter_by(ticket_id=tid, direction="out", kind="engineer")
                .order_by(Message.id)]


def test_an_answer_written_without_seeing_a_colleagues_is_held_and_its_author_told(desk):
    tid, note_alice = _two_engineers(desk)
    desk.receive(reply_to(note_alice, "#status pending\nTry clearing the browser cache.", frm=ALICE))
    mails = desk.new_mail()
    assert customer_mail(mails) == []  # nothing sent twice by accident
    [told] = [m["msg"] for m in mails if m["to"] == [ALICE]]
    text = body_text(told)
    assert "reply #send to send yours anyway, #drop to discard it".lower() in " ".join(text.lower().split())
    assert "> Please restart the nginx service." in text and "> Try clearing the browser cache." in text
    assert desk.app.signer.check_reply_token(told["Reply-To"].split("+", 1)[1].split("@")[0], ALICE) == tid
    assert "Commands go on the first or last lines" in text  # the commands footer
    assert events(desk.app, tid, "answer_held")[0].actor == ALICE
    assert _relayed(desk.app, tid) == ["Please restart the nginx service."]
    assert [e.data["name"] for e in events(desk.app, tid, "command")] == ["assign"]  # its #status did not run
    # #send: the held answer goes out as if it had just arrived, its commands too
    desk.receive(reply_to(told, "#send", frm=ALICE))
    [sent] = customer_mail(desk.new_mail())
    assert "Try clearing the browser cache." in body_text(sent["msg"])
    assert _relayed(desk.app, tid)[-1] == "Try clearing the browser cache."
    assert [e.data["name"] for e in events(desk.app, tid, "command")] == ["assign", "status"]
    # and a second #send does not send it twice
    desk.receive(reply_to(told, "#send", frm=ALICE))
    mails = desk.new_mail()
    assert customer_mail(mails) == [] and "already sent or dropped" in body_text(
        next(m["msg"] for m in mails if m["to"] == [ALICE]))


def test_drop_discards_the_held_answer_but_keeps_it_in_the_history(desk):
    tid, note_alice = _two_engineers(desk)
    desk.receive(reply_to(note_alice, "Try clearing the browser cache.", frm=ALICE))
    [told] = [m["msg"] for m in desk.new_mail() if m["to"] == [ALICE]]
    desk.receive(reply_to(told, "#drop", frm=ALICE))
    assert customer_mail(desk.new_mail()) == []
    assert events(desk.app, tid, "answer_dropped")
    with desk.app.db.session() as s:
        [held] = s.query(Message).filter_by(ticket_id=tid, kind="held_answer").all()
        assert held.internal and held.text == "Try clearing the browser cache."


def test_after_the_window_or_having_seen_the_first_answer_nothing_is_held(desk):
    tid, note_alice = _two_engineers(desk)
    desk.clock.advance(minutes=10)  # 15 minutes after bob's answer: past workflow.collision_minutes
    desk.receive(reply_to(note_alice, "Try clearing the browser cache.", frm=ALICE))
    assert len(customer_mail(desk.new_mail())) == 1


def test_an_answer_to_a_mail_newer_than_the_first_answer_is_not_held(desk):
    tid, note_alice = _two_engineers(desk)
    from tests.engineer_mail import SUPPORT
    from tests.mail import build

    desk.receive(build(frm=CUSTOMER, to=SUPPORT, subject="Re: [TS-000001] Website returns 502",
                       body="Restarted, still 502.", name="Li Wei"))
    [note_new] = [m["msg"] for m in desk.new_mail() if m["to"] == [BOB]]
    assert latest_ticket_id(desk.app) == tid
    # alice answers through her own reply address, in reply to that newer mail (she had seen it)
    raw = reply_to(note_alice, "Then please send the nginx error log.", frm=ALICE)
    raw = raw.replace(note_alice["Message-ID"].encode(), note_new["Message-ID"].encode())
    desk.receive(raw)
    assert len(customer_mail(desk.new_mail())) == 1
    assert not events(desk.app, tid, "answer_held")


def test_send_without_a_held_answer_is_an_error(desk):
    tid, note = open_ticket(desk, **EN)
    desk.receive(reply_to(note, "#send", frm=ALICE))
    mails = desk.new_mail()
    assert customer_mail(mails) == []
    assert "reply to that mail" in body_text(next(m["msg"] for m in mails if m["to"] == [ALICE]))


def test_collision_minutes_zero_turns_it_off(make_app, clock):
    desk = Desk(make_app(clock=clock, workflow={"collision_minutes": 0}))
    desk.clock = clock
    tid, note_alice = _two_engineers(desk)
    desk.receive(reply_to(note_alice, "Try clearing the browser cache.", frm=ALICE))
    assert len(customer_mail(desk.new_mail())) == 1
