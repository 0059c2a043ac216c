"""`workflow.stranger_policy = "hold"`: a stranger's mail about someone else's ticket waits,
unacknowledged, until an engineer of the held ticket's team releases it (`#release` by mail,
or `supportgw tickets release REF`); the acknowledgement goes out then, naming nothing of
the ticket the stranger wrote about."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gateway.tokens import reply_address
from storage.models import OutboxRow, Ticket
from tests.closure_kit import text_of
from tests.engineer_mail import ALICE, Desk, all_text, events, open_ticket, reply_to, ticket
from tests.desk_kit import cli_desk  # noqa: F401 (the fixture)
from tests.mail import build

MALLORY = "mallory@evil.example"
DAVE = "dave@support.example.com"  # team l2; the held ticket is routed to team support
SUPPORT = "support@support.example.test"


def _held(desk: Desk):
    """Li Wei's ticket, then Mallory's mail about it: returns (original, held id, held notification)."""
    original, _ = open_ticket(desk, subject="Website down", body="Our website returns a blank page.\n")
    ref = ticket(desk.app, original).ref
    counts = desk.receive(build(frm=MALLORY, name="Mallory", msgid="<m1@evil.example>", subject=f"Re: [{ref}] hello",
                                body="What is going on with this ticket?\n", to=SUPPORT))
    assert counts["held"] == 1, counts
    with desk.app.db.session() as s:
        held = s.execute(select(Ticket).order_by(Ticket.id.desc())).scalars().first()
    assert held.held and held.team == "support"
    mails = desk.new_mail()
    assert not [m for m in mails if MALLORY in m["to"]], "a held ticket got mail out before release"
    [note] = [m["msg"] for m in mails if held.ref in (m["msg"]["Subject"] or "") and ALICE in m["to"]]
    assert "#release" in text_of(note)
    return ticket(desk.app, original), held.id, note


@pytest.fixture
def desk(make_app):
    return Desk(make_app(workflow={"stranger_policy": "hold"}))


def test_release_by_mail_sends_the_held_acknowledgement(desk):
    original, held_id, note = _held(desk)
    held = ticket(desk.app, held_id)

    desk.receive(reply_to(note, "#release"))
    [ack] = [m for m in desk.new_mail() if MALLORY in m["to"]]
    assert held.ref in ack["msg"]["Subject"]
    assert ack["msg"]["In-Reply-To"] == "<m1@evil.example>"
    assert ack["msg"]["Auto-Submitted"] == "auto-replied"
    # the stranger learns nothing of the ticket they wrote about (whose reference they wrote
    # themselves): not its subject, its text or its Message-IDs
    seen = all_text(ack["raw"])
    assert "website down" not in seen and "blank page" not in seen
    with desk.app.db.session() as s:
        for mid in s.execute(select(OutboxRow.message_id).where(OutboxRow.ticket_id == original.id)).scalars():
            assert mid.lower() not in seen
    assert not ticket(desk.app, held_id).held
    [released] = events(desk.app, held_id, "released")
    assert released.actor == ALICE


def test_release_by_mail_from_outside_the_team_is_refused(desk):
    _, held_id, _ = _held(desk)
    held = ticket(desk.app, held_id)
    # Dave (team l2) got hold of a reply address signed for him on this ticket
    to = reply_address(SUPPORT, desk.app.signer.reply_token(held_id, DAVE))
    desk.receive(build(frm=DAVE, name="Dave", to=to, subject=f"Re: [{held.ref}] hello", body="#release\n"))
    mails = desk.new_mail()
    assert not [m for m in mails if MALLORY in m["to"]]
    [error] = [m for m in mails if DAVE in m["to"]]
    assert "only an engineer of team support" in text_of(error["msg"])
    assert ticket(desk.app, held_id).held


def test_release_of_a_ticket_that_is_not_held_is_a_command_error(desk):
    _, note = open_ticket(desk, subject="Website down", body="Our website returns a blank page.\n")
    desk.receive(reply_to(note, "#release"))
    [error] = [m for m in desk.new_mail() if ALICE in m["to"]]
    assert "is not held" in text_of(error["msg"])


def test_supportgw_tickets_release(cli_desk, capsys):
    from gateway.runtime.dispatch import dispatch_due

    desk, run = cli_desk('[workflow]\nstranger_policy = "hold"\n')
    _, held_id, _ = _held(desk)
    ref = ticket(desk.app, held_id).ref

    assert run("tickets", "release", ref.lower()) == 0
    assert f"{ref} released" in capsys.readouterr().out
    dispatch_due(desk.app, desk.transport)
    [ack] = [m for m in desk.new_mail() if MALLORY in m["to"]]
    assert ref in ack["msg"]["Subject"]
    assert [e.actor for e in events(desk.app, held_id, "released")] == ["cli"]

    assert run("tickets", "release", ref) == 2
    assert "is not held" in capsys.readouterr().err
    assert run("tickets", "release", "TS-999999") == 2
    assert "no ticket TS-999999" in capsys.readouterr().err
