"""Merge and split by mail (and by CLI): `#merge TS-000001` folds this ticket into that one,
`#split` turns the message a notification was about into a ticket of its own."""

from __future__ import annotations


import pytest
from sqlalchemy import select

from storage.models import Message, Participant
from tests.engineer_mail import (
    ALICE, CUSTOMER, Desk, all_text, customer_mail, events, latest_ticket_id, reply_to, ticket,
)
from tests.desk_kit import cli_desk  # noqa: F401 (the fixture)
from tests.mail import body_text, build

OTHER = "zhou.min@mail.example.test"  # a colleague of the customer, writing on their own


@pytest.fixture
def desk(make_app, clock):
    return Desk(make_app(clock=clock))


def _new(desk, subject, body, frm=CUSTOMER, name="Li Wei"):
    desk.customer_writes(subject=subject, body=body, frm=frm, name=name)
    mails = desk.new_mail()
    tid = latest_ticket_id(desk.app)
    [note] = [m["msg"] for m in mails if m["to"] == [ALICE]]
    acks = [m["msg"] for m in mails if frm in m["to"]]
    return tid, note, acks[0] if acks else None


def _customer_replies(desk, mail, body, frm=CUSTOMER):
    raw = build(frm=frm, to=mail["Reply-To"], subject="Re: " + mail["Subject"], body=body, name="Li Wei",
                in_reply_to=mail["Message-ID"], references=mail["Message-ID"])
    desk.receive(raw, rcpts=[mail["Reply-To"].split("<")[-1].rstrip(">")])
    return desk.new_mail()


def _rows(app, model, **where):
    with app.db.session() as s:
        stmt = select(model)
        for k, v in where.items():
            stmt = stmt.where(getattr(model, k) == v)
        return list(s.execute(stmt).scalars())


def test_merge_by_mail_moves_everything_tells_the_customer_once_and_old_addresses_lead_to_the_survivor(
        desk, clock):
    first, _, _ = _new(desk, "Website returns 502", "Since 9:00 the website returns 502.")
    clock.advance(hours=1)
    second, note2, ack2 = _new(desk, "Login page broken too", "Also the login page shows an error.")
    clock.advance(minutes=5)
    desk.receive(reply_to(note2, "#time 20m\n#merge TS-000001", frm=ALICE))
    mails = desk.new_mail()
    src, dst = ticket(desk.app, second), ticket(desk.app, first)
    assert (src.status, src.merged_into_id) == ("closed", first)
    assert {m.ticket_id for m in _rows(desk.app, Message, ticket_id=second)} == set()
    assert {m.subject for m in _rows(desk.app, Message, ticket_id=first)} >= {"Login page broken too"}
    assert [e.data["minutes"] for e in events(desk.app, first, "time")] == [20]  # the time log moved
    assert events(desk.app, first, "merged_from")[0].data["source"] == "TS-000002"
    assert dst.resolution_due is not None and dst.created_at < src.created_at  # the older's SLA kept
    # the customer hears once, about their own request only, from the support address
    [told] = [m for m in customer_mail(mails)]
    assert told["msg"]["Subject"].startswith("[TS-000001] Your request TS-000002 continues as TS-000001")
    assert ALICE not in all_text(told["raw"]) and "#merge" not in all_text(told["raw"])
    assert not [m for m in mails if m["to"] == [CUSTOMER] and m is not told]
    # a reply to the old ticket's acknowledgement (its signed Reply-To names TS-000002) lands on TS-000001
    _customer_replies(desk, ack2, "Any news on the login page?")
    assert latest_ticket_id(desk.app) == 2
    assert _rows(desk.app, Message, ticket_id=first)[-1].reply_text.startswith("Any news on the login page?")


def test_merging_the_older_ticket_into_the_newer_gives_the_survivor_the_older_deadlines(desk, clock):
    first, note1, _ = _new(desk, "Website returns 502", "Since 9:00 the website returns 502.")
    clock.advance(hours=3)
    second, _, _ = _new(desk, "Still 502", "It still returns 502.")
    due1 = ticket(desk.app, first).first_response_due
    assert ticket(desk.app, second).first_response_due != due1
    desk.receive(reply_to(note1, "#merge TS-000002", frm=ALICE))
    assert ticket(desk.app, second).first_response_due == due1


def test_merge_of_another_customers_ticket_makes_them_a_cc_and_tells_only_them(desk):
    first, _, _ = _new(desk, "Website returns 502", "Since 9:00 the website returns 502.")
    second, note2, _ = _new(desk, "502 here too", "Our site returns 502 as well.", frm=OTHER, name="Zhou Min")
    desk.receive(reply_to(note2, "#merge TS-000001", frm=ALICE))
    mails = desk.new_mail()
    assert [m["to"] for m in mails if m["to"] != [ALICE]] == [[OTHER]]
    told = [m for m in mails if OTHER in m["to"]][0]
    assert "Website returns 502" not in all_text(told["raw"])  # nothing of the other customer's request
    roles = {(p.email, p.role) for p in _rows(desk.app, Participant, ticket_id=first)}
    assert (OTHER, "cc") in roles and (CUSTOMER, "requester") in roles


def test_a_bad_merge_is_an_error_mail_and_nothing_is_applied(desk):
    first, note1, _ = _new(desk, "Website returns 502", "Since 9:00 the website returns 502.")
    desk.receive(reply_to(note1, "#merge TS-000099\nWe are looking into it.", frm=ALICE))
    mails = desk.new_mail()
    [err] = [m["msg"] for m in mails if m["to"] == [ALICE]]
    assert "there is no ticket TS-000099" in body_text(err)
    assert not customer_mail(mails) and ticket(desk.app, first).merged_into_id is None
    desk.receive(reply_to(note1, "#merge TS-000001", frm=ALICE))
    assert "that is this ticket" in body_text([m["msg"] for m in desk.new_mail() if m["to"] == [ALICE]][0])


def test_split_by_mail_turns_the_notified_message_into_a_linked_ticket(desk):
    first, _, ack1 = _new(desk, "Website returns 502", "Since 9:00 the website returns 502.")
    mails = _customer_replies(desk, ack1, "Another thing: how do I add a user to the admin group?")
    [note] = [m["msg"] for m in mails if m["to"] == [ALICE]]
    desk.receive(reply_to(note, "#split", frm=ALICE))
    mails = desk.new_mail()
    new = ticket(desk.app, latest_ticket_id(desk.app))
    assert new.id != first and new.linked_ticket_id == first and new.requester_email == CUSTOMER
    assert [m.reply_text.split("\n")[0] for m in _rows(desk.app, Message, ticket_id=new.id)] == [
        "Another thing: how do I add a user to the admin group?"]
    assert all("admin group" not in m.text for m in _rows(desk.app, Message, ticket_id=first))
    assert events(desk.app, first, "split")[0].data["into"] == new.ref
    [ack] = [m for m in customer_mail(mails)]  # the customer learns the new question's own reference
    assert new.ref in ack["msg"]["Subject"]
    # the customer's next reply on that thread reaches the new ticket
    _customer_replies(desk, ack["msg"], "Thanks, and it is for the user bob.")
    assert "user bob" in _rows(desk.app, Message, ticket_id=new.id)[-1].text


def test_split_of_the_first_message_is_refused(desk):
    first, note1, _ = _new(desk, "Website returns 502", "Since 9:00 the website returns 502.")
    desk.receive(reply_to(note1, "#split", frm=ALICE))
    [err] = [m["msg"] for m in desk.new_mail() if m["to"] == [ALICE]]
    assert "first message" in body_text(err) and latest_ticket_id(desk.app) == first


def test_supportgw_tickets_merge_and_split(cli_desk, capsys):
    desk, run = cli_desk()
    _, _, ack1 = _new(desk, "Website returns 502", "Since 9:00 the website returns 502.")
    _customer_replies(desk, ack1, "Also: the mail server rejects our invoices.")
    second, _, _ = _new(desk, "Login page broken too", "Also the login page shows an error.")
    assert run("tickets", "merge", "ts-000002", "TS-000001") == 0
    assert "TS-000002 merged into TS-000001" in capsys.readouterr().out
    assert ticket(desk.app, second).merged_into_id == 1
    assert run("tickets", "show", "TS-000002") == 0
    assert "merged into TS-000001" in capsys.readouterr().out
    assert run("tickets", "merge", "TS-000002", "TS-000001") == 2
    assert "already merged" in capsys.readouterr().err
    [msg] = [m for m in _rows(desk.app, Message, ticket_id=1) if "invoices" in m.text]
    assert run("tickets", "split", "TS-000001", str(msg.id)) == 0
    assert "is now TS-000003, linked to TS-000001" in capsys.readouterr().out
    assert ticket(desk.app, 3).requester_email == CUSTOMER
    assert run("tickets", "split", "TS-000001", "9999") == 2
    assert "has no message #9999" in capsys.readouterr().err
