"""Send later: `#send-at` / `#send-in` hold an answer until then; the customer writing first
cancels it and its author is told."""

from __future__ import annotations

import pytest

from gateway.runtime.dispatch import dispatch_due
from tests.engineer_mail import ALICE, CUSTOMER, SUPPORT, customer_mail, events, open_ticket, reply_to, ticket
from tests.desk_kit import WEBSITE_502 as EN, desk  # noqa: F401 (desk: the fixture)
from tests.mail import body_text, build


def _due(desk):
    dispatch_due(desk.app, desk.transport)
    return customer_mail(desk.new_mail())


def test_send_in_holds_the_answer_until_then(desk):
    tid, note = open_ticket(desk, **EN)
    desk.receive(reply_to(note, "#send-in 2h\nThe fix is deployed; please try again after 11:00.", frm=ALICE))
    assert customer_mail(desk.new_mail()) == []
    desk.clock.advance(hours=1, minutes=59)
    assert _due(desk) == []
    desk.clock.advance(minutes=2)
    [sent] = _due(desk)
    assert "please try again after 11:00" in body_text(sent["msg"]) and ALICE not in sent["raw"].decode()
    assert events(desk.app, tid, "send_later")


def test_the_first_response_counts_when_the_held_answer_goes(desk):
    tid, note = open_ticket(desk, **EN)
    desk.receive(reply_to(note, "#send-in 2h\nThe fix is deployed; please try again after 11:00.", frm=ALICE))
    assert ticket(desk.app, tid).first_responded_at is None  # not yet: the customer has nothing
    desk.clock.advance(hours=2, minutes=1)
    assert _due(desk)
    assert ticket(desk.app, tid).first_responded_at == desk.clock.now()  # so no first-response breach follows
    assert [e.actor for e in events(desk.app, tid, "first_response")] == [ALICE]


def test_the_status_an_answer_sets_waits_for_the_held_answer_to_go(desk):
    tid, note = open_ticket(desk, **EN)
    desk.receive(reply_to(note, "#send-in 2h\nThe fix is deployed; please try again after 11:00.", frm=ALICE))
    assert ticket(desk.app, tid).status == "new"  # the customer has nothing yet: still waiting on us
    desk.clock.advance(hours=2, minutes=1)
    assert _due(desk)
    assert ticket(desk.app, tid).status == desk.app.config.workflow.status_after_reply == "pending"
    [ev] = events(desk.app, tid, "status")
    assert (ev.actor, ev.data["old"], ev.data["new"]) == (ALICE, "new", "pending")


def test_a_status_chosen_meanwhile_or_with_the_command_is_left_as_it_is(desk):
    tid, note = open_ticket(desk, **EN)
    desk.receive(reply_to(note, "#send-in 2h\n#status open\nWe are on it; details follow.", frm=ALICE))
    assert ticket(desk.app, tid).status == "open"  # the engineer's own #status applies at once
    desk.clock.advance(hours=2, minutes=1)
    assert _due(desk)
    assert ticket(desk.app, tid).status == "open"  # and the answer going does not override it


def test_send_at_is_read_on_the_teams_clock(desk):
    tid, note = open_ticket(desk, **EN)  # the clock starts at 2026-03-02 09:00 in Asia/Shanghai
    desk.receive(reply_to(note, "We will call you this evening.\n\n#send-at 2026-03-02 18:00", frm=ALICE))
    desk.clock.advance(hours=8, minutes=59)  # 17:59 there
    assert _due(desk) == []
    desk.clock.advance(minutes=2)
    [sent] = _due(desk)
    assert "We will call you this evening." in body_text(sent["msg"])


def test_the_customer_writing_first_cancels_it_and_its_author_is_told(desk):
    tid, note = open_ticket(desk, **EN)
    desk.receive(reply_to(note, "#send-in 2h\nPlease restart the router tonight.", frm=ALICE))
    desk.new_mail()
    desk.clock.advance(minutes=30)
    desk.receive(build(frm=CUSTOMER, to=SUPPORT, subject="Re: [TS-000001] Website returns 502",
                       body="It works again, someone restarted the proxy.", name="Li Wei"))
    mails = desk.new_mail()
    [told] = [m["msg"] for m in mails if m["to"] == [ALICE] and "not sent" in m["msg"]["Subject"]]
    assert "> Please restart the router tonight." in body_text(told)
    assert desk.app.signer.check_reply_token(told["Reply-To"].split("+", 1)[1].split("@")[0], ALICE) == tid
    assert events(desk.app, tid, "send_later_cancelled")[0].data["author"] == ALICE
    desk.clock.advance(hours=3)
    assert _due(desk) == []  # never sent
    # an answer now goes out, and names nothing of the cancelled one
    desk.receive(reply_to(note, "Glad it works again.", frm=ALICE))
    [answer] = customer_mail(desk.new_mail())
    cancelled = events(desk.app, tid, "send_later_cancelled")[0].data["message_id"]
    assert cancelled not in (answer["msg"]["References"] or "")


@pytest.mark.parametrize("text, problem", [
    ("#send-at 2026-03-01 09:00\nToo late.", "is in the past"),
    ("#send-in 2h\n#close\nDone.", "does not go with them"),
    ("#send-in 2h", "need the answer to send"),
    ("#send-in 2h\n#send-at 2026-12-02 09:00\nBoth.", "not both"),
])
def test_send_later_mistakes_are_an_error_mail_and_nothing_is_sent(desk, text, problem):
    tid, note = open_ticket(desk, **EN)
    desk.receive(reply_to(note, text, frm=ALICE))
    mails = desk.new_mail()
    assert customer_mail(mails) == []
    assert problem in body_text(next(m["msg"] for m in mails if m["to"] == [ALICE]))
