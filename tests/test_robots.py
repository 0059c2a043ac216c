"""Robots that are not bounces: challenge-responses, feedback loops, receipts, calendar replies.

`parsers.robots.classify` names the kind of robot behind a mail; a person who only
mentions an allowed list, or invites us to a meeting, stays a person. Fixtures in
tests/robots/ are written after real challenge mails (Boxbe, SpamArrest, home-made
"click to be added to my allowed list"); MDN and ARF come from the shared corpora.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from parsers.message import parse_email
from parsers.robots import classify
from tests.conftest import corpus

HERE = Path(__file__).parent / "robots"
OWN = ("support@support.example.test",)


def kind_of(raw: bytes) -> str | None:
    robot = classify(parse_email(raw, own_addresses=OWN), OWN)
    return robot.kind if robot else None


@pytest.mark.parametrize("name", ["boxbe-challenge.eml", "spamarrest-challenge.eml", "allowed-list-challenge.eml"])
def test_challenge_responses_are_recognised_with_or_without_automatic_headers(name):
    raw = (HERE / name).read_bytes()
    robot = classify(parse_email(raw, own_addresses=OWN), OWN)
    assert robot is not None and robot.kind == "challenge", (name, robot)
    assert robot.reasons  # the suspended area shows why


def test_a_challenge_without_any_automatic_header_is_still_automatic_mail():
    email = parse_email((HERE / "allowed-list-challenge.eml").read_bytes(), own_addresses=OWN)
    assert not email.automatic  # loops.py sees nothing: the wording is the only evidence
    assert classify(email, OWN).kind == "challenge"


def test_a_person_who_mentions_allowed_lists_is_not_a_challenge():
    assert kind_of((HERE / "person-mentions-allowed-list.eml").read_bytes()) is None


def test_calendar_auto_response_is_a_robot_but_an_invitation_is_a_person():
    assert kind_of((HERE / "calendar-accepted.eml").read_bytes()) == "calendar"
    assert kind_of((HERE / "calendar-invitation-from-person.eml").read_bytes()) is None


def test_read_receipt_is_a_receipt():
    assert kind_of(corpus("flanker", "disposition-notification.eml").read_bytes()) == "receipt"


@pytest.mark.parametrize("name", ["aol.eml", "yahoo.eml"])
def test_feedback_loop_reports_are_recognised(name):
    assert kind_of(corpus("flanker", "complaints", name).read_bytes()) == "feedback_report"


def test_our_own_mail_coming_back_is_a_loop():
    from tests.mail import build

    assert kind_of(build(frm="support@support.example.test", name="")) == "loop"


def test_a_subject_alone_does_not_make_a_robot():
    from tests.mail import build

    raw = build(subject="Out of office hours support: our portal is down", body="Who is on call tonight?\n")
    email = parse_email(raw, own_addresses=OWN)
    assert email.automatic  # loops.py is cautious the other way: never answer it
    assert classify(email, OWN) is None  # but it is not suspended on that alone
