"""The reply relay over real sockets: customer mail -> notification to the engineer
-> the engineer's reply (built as Outlook, Gmail and Foxmail build them, and real
client replies from the talon corpus) -> the customer's answer from the support
address, quotes stripped, no engineer address anywhere -> the customer's reply
threads back onto the same ticket."""

from __future__ import annotations

import email
from email import encoders
from email.policy import compat32
from pathlib import Path

import pytest

from tests.conftest import corpus, wait_for
from tests.engineer_mail import (
    ALICE, CUSTOMER, SUPPORT, all_text, latest_ticket_id, messages, reply_to, ticket, tickets_count,
)
from tests.mail import body_text, build, parse, send

TALON_REPLIES = ["android", "aol", "apple_mail", "apple_mail_2", "comcast", "gmail", "hotmail", "iphone",
                 "outlook", "sparrow", "thunderbird", "yahoo"]


def _mails_to(relay, rcpt):
    return [m for m in list(relay.messages) if rcpt in m["to"]]


def _open(gw, relay, msgid="<q1@mail.example.test>"):
    send(gw.smtp_port, build(frm=CUSTOMER, name="Li Wei", subject="Website returns 502",
                             body="Hello,\nour website returns 502 since 9:00.\n", msgid=msgid),
         CUSTOMER, [SUPPORT])
    note = wait_for(lambda: _mails_to(relay, ALICE), what="notification to alice")[0]
    ack = wait_for(lambda: _mails_to(relay, CUSTOMER), what="acknowledgement")[0]
    return parse(note["raw"]), parse(ack["raw"])


def _engineer_sends(gw, raw, msg):
    rcpt = msg["To"].addresses[0].addr_spec if hasattr(msg["To"], "addresses") else msg["To"]
    send(gw.smtp_port, raw, ALICE, [rcpt])


def _answer(relay):
    env = wait_for(lambda: _mails_to(relay, CUSTOMER)[1:], what="relayed answer to the customer")[0]
    return env, parse(env["raw"])


def _assert_clean_relay(env, msg, ack, expected_text, gw):
    text = body_text(msg)
    assert text.split("\n--\n")[0].strip() == expected_text
    assert msg["From"].addresses[0].display_name == "Alice (Support)"
    assert msg["From"].addresses[0].addr_spec == SUPPORT
    assert msg["To"].addresses[0].addr_spec == CUSTOMER
    # the customer's thread: In-Reply-To their mail, References over what they have seen
    assert msg["In-Reply-To"] == "<q1@mail.example.test>"
    refs = msg["References"].split()
    assert refs[0] == "<q1@mail.example.test>" and ack["Message-ID"].strip() in refs
    assert msg["Thread-Index"] == ack["Thread-Index"]
    token = msg["Reply-To"].split("+", 1)[1].split("@")[0]
    assert gw.app.signer.check_reply_token(token, CUSTOMER) == latest_ticket_id(gw.app)
    # the engineer's personal address (and domain, and full name) appear nowhere, headers included
    everything = all_text(env["raw"]) + env["from"].lower()
    for leak in (ALICE, "@support.example.com", "alice wang", "王爱丽"):
        assert leak not in everything, leak


@pytest.mark.parametrize("style", ["outlook", "gmail", "foxmail"])
def test_engineer_reply_round_trip(running, relay, style):
    gw = running()
    note, ack = _open(gw, relay)
    raw = reply_to(note, "Hello Li Wei,\n\nplease restart nginx and tell me if the 502 persists.",
                   style=style, signature="Alice Wang\nSenior Engineer\nalice@support.example.com\n+86 21 5555 0100")
    _engineer_sends(gw, raw, parse(raw))
    env, msg = _answer(relay)
    _assert_clean_relay(env, msg, ack,
                        "Hello Li Wei,\n\nplease restart nginx and tell me if the 502 persists.", gw)
    assert "Example Support <support@" not in body_text(msg)  # the notification quote is gone
    tid = latest_ticket_id(gw.app)
    [out] = [m for m in messages(gw.app, tid) if m.direction == "out"]
    assert out.kind == "engineer" and "please restart nginx" in out.text and "Senior Engineer" not in out.text
    assert ticket(gw.app, tid).first_responded_at is not None

    # the customer answers the relayed mail: same ticket, and alice hears of it
    reply = build(frm=CUSTOMER, name="Li Wei", to=str(msg["Reply-To"]), subject="Re: " + msg["Subject"],
                  body="Restarted, it works now. Thanks!\n\n> Hello Li Wei,\n> please restart nginx\n",
                  msgid="<q2@mail.example.test>", in_reply_to=msg["Message-ID"],
                  references=msg["References"] + " " + msg["Message-ID"])
    send(gw.smtp_port, reply, CUSTOMER, [str(msg["Reply-To"])])
    follow = wait_for(lambda: _mails_to(relay, ALICE)[1:], what="follow-up notification")[0]
    assert "Restarted, it works now." in body_text(parse(follow["raw"]))
    assert tickets_count(gw.app) == 1
    assert messages(gw.app, tid)[-1].reply_text == "Restarted, it works now. Thanks!"


def _corpus_reply(path: Path, note) -> bytes:
    msg = email.message_from_bytes(path.read_bytes())
    for h in ("From", "To", "Cc", "Subject", "Message-ID", "Message-Id", "In-Reply-To", "References", "Date"):
        del msg[h]
    msg["From"] = f"Alice Wang <{ALICE}>"
    msg["To"] = str(note["Reply-To"])
    msg["Subject"] = "Re: " + note["Subject"]
    msg["Message-ID"] = f"<{path.stem}.corpus@support.example.com>"
    msg["In-Reply-To"] = note["Message-ID"]
    msg["References"] = f"{note['References']} {note['Message-ID']}"
    for part in msg.walk():  # as a client would send it: no line over SMTP's 998 limit
        if not part.is_multipart():
            data = part.get_payload(decode=True)
            del part["Content-Transfer-Encoding"]
            part.set_payload(data)
            encoders.encode_quopri(part)
    return msg.as_bytes(policy=compat32.clone(linesep="\r\n"))


@pytest.mark.parametrize("sample", TALON_REPLIES)
def test_real_client_replies_from_the_talon_corpus_are_relayed_without_their_quotes(running, relay, sample):
    path = corpus("talon", "standard_replies", f"{sample}.eml")
    gw = running()
    note, ack = _open(gw, relay)
    send(gw.smtp_port, _corpus_reply(path, note), ALICE, [str(note["Reply-To"])])
    env, msg = _answer(relay)
    _assert_clean_relay(env, msg, ack, "Hello", gw)
