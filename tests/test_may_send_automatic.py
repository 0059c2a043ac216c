"""May we send automatic mail to this address now? Every kind of automatic mail, every
reason it may not go, in one table (gateway/desk/automatic.py), asked of a real database."""

from __future__ import annotations

import pytest

from gateway import outbox
from gateway.desk.automatic import CHECKS, REASONS, may_send_automatic
from parsers.message import parse_email
from storage.models import Message
from templates import Rendered
from tests.hardening import push
from tests.mail import build

CUSTOMER = "alice@customer.example.com"
BUSY = "busy@customer.example.com"  # sent RATE automatic mails in the last hour
OWN = "support+t1xabcdefghijklmnop@support.example.test"
ENGINEER = "alice@support.example.com"  # routing/sample_rules.toml
INVALID = "bob@localhost"
REPEATER = "helpdesk@partner.example.org"  # a robot repeating itself, without automatic headers
RATE = 2

# What the mail answers, when it answers one.
PERSON = "a person's mail"
ROBOT = "an auto-reply"
REPEATED = "the robot's mail again"
HELD_ROBOT = "a stored automatic message"
# The mail's spool verdict.
QUIET = {"spam": {"quiet": True, "reasons": ["rspamd: add header"]}}
QUIET_RELEASED = {"spam": {"quiet": True, "reasons": ["rspamd: add header"]}, "released": True}

CASES = [
    # kind, rcpt, answering, verdict -> the reason it may not go (None: it may)
    ("acknowledgement", CUSTOMER, PERSON, None, None),
    ("acknowledgement", CUSTOMER, ROBOT, None, "automatic"),
    ("acknowledgement", CUSTOMER, PERSON, QUIET, "possible spam"),
    ("acknowledgement", CUSTOMER, PERSON, QUIET_RELEASED, None),
    ("acknowledgement", "", PERSON, None, "no address"),
    ("acknowledgement", OWN, PERSON, None, "own address"),
    ("acknowledgement", INVALID, PERSON, None, "invalid address"),
    ("acknowledgement", REPEATER, REPEATED, None, "content repetition"),
    ("acknowledgement", BUSY, PERSON, None, "rate limit"),
    ("acknowledgement", ENGINEER, PERSON, None, None),  # an engineer writing in as a customer is one
    ("acknowledgement_on_release", CUSTOMER, PERSON, None, None),
    ("acknowledgement_on_release", CUSTOMER, HELD_ROBOT, None, "automatic"),
    ("acknowledgement_on_release", OWN, PERSON, None, "own address"),
    ("acknowledgement_on_release", BUSY, PERSON, None, "rate limit"),
    ("acknowledgement_on_release", CUSTOMER, PERSON, QUIET, None),  # released by an engineer who read it
    ("rejection", CUSTOMER, PERSON, None, None),
    ("rejection", CUSTOMER, ROBOT, None, "automatic"),
    ("rejection", OWN, PERSON, None, "own address"),
    ("rejection", BUSY, PERSON, None, "rate limit"),
    ("status_list", CUSTOMER, PERSON, None, None),
    ("status_list", CUSTOMER, ROBOT, None, "automatic"),
    ("status_list", "", PERSON, None, "no address"),
    ("status_list", OWN, PERSON, None, "own address"),
    ("status_list", ENGINEER, PERSON, None, "staff"),
    ("status_list", BUSY, PERSON, None, "rate limit"),
    ("customer_takeover", CUSTOMER, None, None, None),
    ("customer_takeover", "", None, None, "no address"),
    ("customer_takeover", OWN, None, None, "own address"),
    ("customer_takeover", BUSY, None, None, "rate limit"),
    ("merged", CUSTOMER, None, None, None),
    ("merged", OWN, None, None, "own address"),
    ("merged", ENGINEER, None, None, "staff"),
    ("merged", BUSY, None, None, "rate limit"),
    ("closure", CUSTOMER, None, None, None),
    ("closure", "", None, None, "no address"),
    ("closure", OWN, None, None, "own address"),
    ("closure", BUSY, None, None, None),  # one per resolution, an engineer's doing: not rate limited
    ("pending_reminder", OWN, None, None, "own address"),
    ("pending_reminder", BUSY, None, None, None),
    ("auto_resolved", "", None, None, "no address"),
    ("auto_resolved", BUSY, None, None, None),
    ("command_help", ENGINEER, PERSON, None, None),
    ("command_help", ENGINEER, ROBOT, None, "automatic"),
    ("command_help", BUSY, PERSON, None, "rate limit"),
    ("command_unverified", ENGINEER, None, None, None),
    ("command_unverified", BUSY, None, None, "rate limit"),
    ("delivery_notice", ENGINEER, None, None, None),
    ("delivery_notice", BUSY, None, None, "rate limit"),
]


def _answering(what):
    if what == PERSON:
        return parse_email(build(subject="Printer on fire", body="It is on fire again.\n"))
    if what == ROBOT:
        return parse_email(build(subject="Out of office", body="I am away.\n",
                                 headers={"Auto-Submitted": "auto-replied"}))
    if what == REPEATED:
        return parse_email(build(frm=REPEATER, subject="Re: Ticket #4713 received", body="Your request #4713 was "
                                 "received at 10:33.\n"))
    if what == HELD_ROBOT:
        return Message(direction="in", automatic=True)
    return None


@pytest.fixture
def busy_app(make_app):
    """RATE automatic mails to BUSY in the last hour; the repeater's mail stored twice."""
    app = make_app(outbound={"rate_limit_per_hour": RATE, "repeat_limit_per_hour": 1})
    with app.db.session() as s:
        for i in range(RATE):
            outbox.queue(app, s, kind="acknowledgement", ticket=None, rendered=Rendered(f"ack {i}", "ack\n", ""),
                         to=[BUSY], automatic="auto-replied")
        s.commit()
    for n in (4711, 4712):
        push(app, build(frm=REPEATER, subject=f"Re: Ticket #{n} received",
                        body=f"Your request #{n} was received at 10:{n - 4680}.\n"))
    return app


@pytest.mark.parametrize("kind,rcpt,answering,verdict,reason", CASES,
                         ids=[f"{c[0]}-{c[1] or 'nobody'}-{c[2] or 'no mail'}-{c[4] or 'yes'}" for c in CASES])
def test_may_send_automatic(busy_app, kind, rcpt, answering, verdict, reason):
    assert ENGINEER in busy_app.engineer_addresses()
    with busy_app.db.session() as s:
        answer = may_send_automatic(busy_app, s, rcpt, kind, answering=_answering(answering), verdict=verdict)
    assert bool(answer) is (reason is None)
    assert answer.reason == (reason or "")
    if reason is not None:
        assert answer.detail or reason == "automatic", answer  # the history can say why


def test_every_kind_names_known_checks_and_is_in_the_table():
    from gateway.desk import automatic

    assert all(name in automatic._CHECK for checks in CHECKS.values() for name in checks)
    assert {c[0] for c in CASES} == set(CHECKS)
    assert {c[4] for c in CASES} - {None} == set(REASONS)


def test_an_unknown_kind_of_mail_is_a_mistake_not_a_yes(app):
    with app.db.session() as s, pytest.raises(KeyError):
        may_send_automatic(app, s, CUSTOMER, "acknowledgment")
