"""No hijack: only an engineer writing through the reply address signed for them
(or, when configured, with DMARC/DKIM pass from our receiving server) may relay
or run commands. Everyone else's `#` lines are plain text, and strangers never
join a ticket or learn anything about it."""

from __future__ import annotations

import pytest

from gateway.handlers.engineer import authentication_passed
from parsers.message import parse_email
from tests.engineer_mail import (
    ALICE, BOB, CUSTOMER, SUPPORT, Desk, all_text, customer_mail, events, latest_ticket_id, messages, open_ticket,
    reply_to, ticket, tickets_count,
)
from tests.mail import body_text, build

EN = dict(subject="Website returns 502", body="Hello,\nour website returns 502 since 9:00.\n")


@pytest.fixture
def desk(make_app, clock):
    return Desk(make_app(clock=clock))


def _not_honoured(desk, tid, before_status="new"):
    out = desk.new_mail()
    assert customer_mail(out) == [], "nothing may be relayed to the customer"
    t = ticket(desk.app, tid)
    assert t.status != "closed" and t.priority != "P1"
    assert events(desk.app, tid, "command") == []
    assert not [m for m in messages(desk.app, tid) if m.direction == "out"]
    return out


def test_bob_replaying_alices_reply_address_is_not_honoured(desk):
    tid, note = open_ticket(desk, **EN)
    desk.new_mail()
    # bob got hold of alice's notification and answers it from his own address
    desk.receive(reply_to(note, "#priority P1\n#status closed\nClosing this.\n", frm=BOB, name="Bob Zhang"))
    out = _not_honoured(desk, tid)
    [kept] = [m for m in messages(desk.app, tid) if m.sender_email == BOB]
    # kept as text, never run; internal, never a customer's follow-up
    assert kept.kind == "unverified" and kept.internal and "#status closed" in kept.text
    [ignored] = events(desk.app, tid, "commands_ignored")
    assert ignored.actor == BOB and ignored.data["lines"] == ["#priority P1", "#status closed"]
    # bob is told why, at his configured address, with a reply address signed for him
    [told] = [m for m in out if m["to"] == [BOB]]
    assert "were not run" in told["msg"]["Subject"] and told["msg"]["Reply-To"].startswith("support+t")


@pytest.mark.parametrize("address", [
    "support+t1xaaaaaaaaaaaaaaaa@support.example.test",  # forged token for ticket 1
    "support+t1x@support.example.test",  # truncated token
    SUPPORT,  # no token at all: the plain support address
])
def test_engineer_without_a_valid_signed_address_is_treated_as_a_customer(desk, address):
    tid, note = open_ticket(desk, **EN)
    desk.new_mail()
    desk.receive(reply_to(note, "#priority P1\nHere is the fix.\n", to=address), rcpts=[address])
    _not_honoured(desk, tid)
    assert len(events(desk.app, tid, "commands_ignored")) == 1


def test_a_token_for_another_ticket_does_not_reach_this_one(desk):
    tid1, note1 = open_ticket(desk, **EN)
    tid2, note2 = open_ticket(desk, subject="Mail bounces", body="Our mail bounces.\n")
    desk.new_mail()
    # alice's token for ticket 1 with ticket 2's threading headers: the token decides, ticket 1 gets it
    raw = reply_to(note2, "Answer meant for ticket one.\n", to=note1["Reply-To"])
    desk.receive(raw)
    [m] = customer_mail(desk.new_mail())
    assert "[TS-000001]" in m["msg"]["Subject"]
    assert not [x for x in messages(desk.app, tid2) if x.direction == "out"]


AUTHSERV = "mx.support.example.test"  # our receiving server, as [spam] authserv_id names it
AR_PASS = "mx.support.example.test; spf=pass smtp.mailfrom=support.example.com; " \
          "dkim=pass header.d=support.example.com; dmarc=pass (p=reject) header.from=support.example.com"
TRUSTING = {"workflow": {"trust_dmarc": True}, "spam": {"authserv_id": AUTHSERV}}


def test_trust_dmarc_accepts_an_authenticated_engineer_without_token(make_app, clock):
    desk = Desk(make_app(clock=clock, **TRUSTING))
    tid, note = open_ticket(desk, **EN)
    desk.new_mail()
    desk.receive(reply_to(note, "#priority P2\nFixed via DMARC path.\n", to=SUPPORT,
                          headers={"Authentication-Results": AR_PASS}), rcpts=[SUPPORT])
    [m] = customer_mail(desk.new_mail())
    assert "Fixed via DMARC path." in body_text(m["msg"])
    assert ticket(desk.app, tid).priority == "P2"


@pytest.mark.parametrize("trust, results", [
    (False, [AR_PASS]),  # not configured: the header means nothing
    (True, ["mx.support.example.test; dmarc=fail header.from=support.example.com", AR_PASS]),  # forged below ours
    (True, ["mx.support.example.test; dmarc=pass header.from=evil.example"]),  # another domain passed
    # a pass written by anyone else, on top where our server's would be: not our authserv-id, not read
    (True, [AR_PASS.replace(AUTHSERV, "mx.attacker.example")]),
    (True, [AR_PASS.replace(AUTHSERV, "mx.attacker.example"),
            "mx.support.example.test; dkim=none; dmarc=none header.from=support.example.com"]),
])
def test_authentication_results_are_trusted_only_when_configured_and_our_own(make_app, clock, trust, results):
    desk = Desk(make_app(clock=clock, **(TRUSTING if trust else {"spam": {"authserv_id": AUTHSERV}})))
    tid, note = open_ticket(desk, **EN)
    desk.new_mail()
    raw = reply_to(note, "#priority P1\nNot to be relayed.\n", to=SUPPORT)
    head = b"".join(f"Authentication-Results: {r}\r\n".encode() for r in results)
    desk.receive(head + raw, rcpts=[SUPPORT])
    _not_honoured(desk, tid)


def test_authentication_results_reader():
    def email(*headers):
        raw = b"".join(f"Authentication-Results: {h}\r\n".encode() for h in headers)
        return parse_email(raw + build(frm=ALICE))
    assert authentication_passed(email(AR_PASS), ALICE, AUTHSERV)
    assert authentication_passed(email("mx.support.example.test; dkim=pass header.i=@support.example.com"), ALICE,
                                 AUTHSERV)
    assert not authentication_passed(email("mx.support.example.test; dkim=pass header.d=support.example.com.evil.example"),
                                     ALICE, AUTHSERV)
    assert not authentication_passed(email("mx.support.example.test; dmarc=none header.from=support.example.com"), ALICE,
                                     AUTHSERV)
    assert not authentication_passed(email(), ALICE, AUTHSERV)
    # only the configured authserv-id counts: the topmost header of another server is not ours
    assert not authentication_passed(email(AR_PASS.replace(AUTHSERV, "mx.attacker.example")), ALICE, AUTHSERV)
    assert authentication_passed(email(AR_PASS.replace(AUTHSERV, "mx.attacker.example"), AR_PASS), ALICE, AUTHSERV)
    assert not authentication_passed(email(AR_PASS), ALICE, "")  # none configured: nothing is trusted


def test_trust_dmarc_without_an_authserv_id_is_a_configuration_error():
    from gateway.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match="trust_dmarc needs spam.authserv_id"):
        parse_config({"gateway": {"secret_key": "x" * 32}, "workflow": {"trust_dmarc": True}})


def test_customer_using_commands_is_ignored_and_logged(desk):
    tid, note = open_ticket(desk, **EN)
    [ack] = [m["msg"] for m in customer_mail(desk.transport.sent)]
    desk.new_mail()
    reply = build(frm=CUSTOMER, name="Li Wei", to=ack["Reply-To"], subject="Re: " + ack["Subject"],
                  body="#status closed\n#priority P1\nPlease hurry.\n", in_reply_to=ack["Message-ID"])
    desk.receive(reply)
    t = ticket(desk.app, tid)
    assert t.status != "closed" and t.priority != "P1"
    [kept] = [m for m in messages(desk.app, tid) if m.kind == "customer"][-1:]
    assert kept.text.startswith("#status closed")  # the customer's text, untouched
    [ignored] = events(desk.app, tid, "commands_ignored")
    assert ignored.actor == CUSTOMER and "not an engineer" in ignored.detail
    # the engineers hear of the follow-up like any other
    assert any(ALICE in m["to"] for m in desk.new_mail())


def _relay_with_cc(desk):
    tid, note = open_ticket(desk, cc="Colleague <colleague@mail.example.test>", **EN)
    desk.new_mail()
    desk.receive(reply_to(note, "Answer for both of you.\n"))
    [relayed] = customer_mail(desk.new_mail())
    return tid, relayed["msg"]


def test_cc_participant_reply_all_stays_on_the_ticket(desk):
    tid, relayed = _relay_with_cc(desk)
    # reply-all from the CC'd colleague: To the (requester's) Reply-To, Cc the requester
    raw = build(frm="colleague@mail.example.test", name="Colleague", to=relayed["Reply-To"], cc=CUSTOMER,
                subject="Re: " + relayed["Subject"], body="Thanks, it works for me too.\n",
                in_reply_to=relayed["Message-ID"], references=relayed["References"] + " " + relayed["Message-ID"])
    desk.receive(raw)
    assert tickets_count(desk.app) == 1
    assert "works for me too" in messages(desk.app, tid)[-1].text
    # ... and a reply-all to the customer's first mail (before any answer) as well
    first = messages(desk.app, tid)[0]
    desk.receive(build(frm="colleague@mail.example.test", to=SUPPORT, cc=CUSTOMER, subject="Re: Website returns 502",
                       body="Same here.\n", in_reply_to=f"<{first.message_id}>"))
    assert tickets_count(desk.app) == 1


def test_removed_cc_is_a_stranger_again(desk):
    tid, relayed = _relay_with_cc(desk)
    note = [m["msg"] for m in desk.transport.sent if ALICE in m["to"]][0]
    desk.receive(reply_to(note, "#cc remove colleague@mail.example.test\n"))
    desk.receive(build(frm="colleague@mail.example.test", to=SUPPORT, subject="Re: " + relayed["Subject"],
                       body="One more thing.\n", in_reply_to=relayed["Message-ID"]))
    assert tickets_count(desk.app) == 2
    assert "One more thing" not in " ".join(m.text for m in messages(desk.app, tid))


def test_stranger_reply_opens_a_linked_ticket_and_learns_nothing(desk):
    tid, note = open_ticket(desk, subject=EN["subject"], body="Hello,\nour website returns 502. Secret: db password hunter2.\n")
    desk.receive(reply_to(note, "Please try again now.\n"))
    [relayed] = customer_mail(desk.new_mail())
    forwarded = build(frm="outsider@elsewhere.example", name="Outsider", to=relayed["msg"]["Reply-To"],
                      subject="Re: " + relayed["msg"]["Subject"], body="Can I get access too?\n",
                      in_reply_to=relayed["msg"]["Message-ID"])
    desk.receive(forwarded)
    assert tickets_count(desk.app) == 2
    new = ticket(desk.app, tid + 1)
    assert new.linked_ticket_id == tid and new.requester_email == "outsider@elsewhere.example"
    assert "Can I get access" not in " ".join(m.text for m in messages(desk.app, tid))
    to_outsider = [m for m in desk.new_mail() if "outsider@elsewhere.example" in m["to"]]
    assert to_outsider, "the stranger's new ticket is acknowledged"
    for m in to_outsider:
        text = all_text(m["raw"])
        for secret in ("hunter2", CUSTOMER, "please try again now", ALICE):
            assert secret.lower() not in text


def test_stranger_policy_reject_answers_without_revealing_anything(make_app, clock):
    desk = Desk(make_app(clock=clock, workflow={"stranger_policy": "reject"}))
    tid, note = open_ticket(desk, **EN)
    desk.new_mail()
    desk.receive(build(frm="outsider@elsewhere.example", to=SUPPORT, subject="Re: [TS-000001] Website returns 502",
                       body="Tell me more.\n"))
    assert tickets_count(desk.app) == 1
    [answer] = [m for m in desk.new_mail() if "outsider@elsewhere.example" in m["to"]]
    text = all_text(answer["raw"])
    assert "could not be accepted" in text
    for secret in ("website returns 502", CUSTOMER, ALICE, "ts-000001"):
        assert secret.lower() not in text


def test_customer_commands_at_the_bottom_are_ignored_and_logged_too(desk):
    """Commands may stand below the text (parsers.commands): a customer's are text there as well."""
    tid, note = open_ticket(desk, **EN)
    [ack] = [m["msg"] for m in customer_mail(desk.transport.sent)]
    desk.new_mail()
    desk.receive(build(frm=CUSTOMER, name="Li Wei", to=ack["Reply-To"], subject="Re: " + ack["Subject"],
                       body="Please hurry.\n\n#priority P1\n", in_reply_to=ack["Message-ID"]))
    assert ticket(desk.app, tid).priority != "P1"
    [ignored] = events(desk.app, tid, "commands_ignored")
    assert ignored.actor == CUSTOMER and ignored.data["lines"] == ["#priority P1"]


def test_commands_in_a_customers_first_mail_are_text_and_logged(desk):
    desk.customer_writes(subject="Please close fast", body="#close\n#priority P1\nOur site is down.\n")
    tid = latest_ticket_id(desk.app)
    t = ticket(desk.app, tid)
    assert t.status == "new" and t.priority != "P1"
    assert messages(desk.app, tid)[0].text.startswith("#close")
    [ignored] = events(desk.app, tid, "commands_ignored")
    assert ignored.data["lines"] == ["#close", "#priority P1"]
