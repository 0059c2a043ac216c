"""'Who was responsible when' (DOMAIN.md §5): `supportgw tickets show` answers it for every step.

Big Bank core-banking: primary alice, secondary bob, manager carol; the ManualClock starts
Monday 2026-03-02 01:00 UTC (09:00 Shanghai); the first response (P2) is due at 03:00 UTC.
"""

from __future__ import annotations

import json

import pytest

from gateway.desk import closure, handover, holding
from gateway.jobs import sla
from gateway.cli import main
from gateway.clock import ManualClock
from storage.models import Ticket
from tests.sla_kit import ALICE, ALICE_AWAY, BOB, CAROL, change, new_ticket, rules, ticket, utc


@pytest.fixture
def clock():
    return ManualClock(utc(2026, 3, 2, 1, 0))


def _show(app, tmp_path, ref, *extra, capsys):
    cfg = tmp_path / "cli.toml"
    cfg.write_text(f'[gateway]\ndata_dir = "{tmp_path / "var"}"\nsecret_key = "test-secret-key-0123456789abcdef"\n'
                   f'[database]\nurl = "{app.db.url}"\n', encoding="utf-8")
    assert main(["--config", str(cfg), "tickets", "show", ref, *extra]) == 0
    return capsys.readouterr().out


def test_tickets_show_says_who_held_it_from_when_to_when_and_why(make_app, clock, tmp_path, capsys):
    app = make_app(clock=clock)
    tid = new_ticket(app)
    clock.set(utc(2026, 3, 2, 3, 0))
    sla.run_sla_watch(app)  # alice silent: the SLA watch hands it to bob
    clock.set(utc(2026, 3, 2, 5, 0))
    sla.run_sla_watch(app)  # bob silent too: the manager takes it
    clock.set(utc(2026, 3, 2, 5, 40))
    change(app, tid, lambda a, s, t: closure.resolve(a, s, t, actor=CAROL, solution="Restarted the scheduler."))
    ref = ticket(app, tid).ref

    held = json.loads(_show(app, tmp_path, ref, "--json", capsys=capsys))["held_by"]
    assert [(h["handler"], h["owner"], h["from"][11:16], h["until"][11:16] if h["until"] else "now", h["step"], h["by"])
            for h in held] == [
        (ALICE, ALICE, "01:00", "03:00", "routed", "the routing rules"),
        (BOB, ALICE, "03:00", "05:00", "handover_sla", "system:sla"),
        (CAROL, CAROL, "05:00", "05:40", "manager_takeover", "system:sla"),
        (ALICE, ALICE, "05:40", "now", "handback", CAROL),
    ]
    assert held[0]["why"] == "the owner the rules gave the new ticket of project core-banking"
    assert held[1]["why"] == "first-response deadline missed"
    assert f"the secondary {BOB} missed the response deadline" in held[2]["why"]
    assert held[3]["why"] == "the incident is resolved"

    text = _show(app, tmp_path, ref, capsys=capsys)
    assert "Who held it" in text
    assert f"2026-03-02T03:00:00 → 2026-03-02T05:00:00  {BOB} (owner {ALICE})" in text
    assert "handover by the SLA watch (system:sla): first-response deadline missed" in text
    assert f"2026-03-02T05:00:00 → 2026-03-02T05:40:00  {CAROL}\n" in text
    assert "manager take-over (system:sla): the secondary" in text
    assert "2026-03-02T05:40:00 → now" in text and f"handback ({CAROL}): the incident is resolved" in text


def test_handover_by_command_and_tier_two_are_steps_too(make_app, clock):
    app = make_app(clock=clock)
    tid = new_ticket(app)
    clock.advance(minutes=20)
    change(app, tid, lambda a, s, t: handover.handover(a, s, t, reason="#handover by mail", actor=ALICE))
    clock.advance(minutes=30)
    change(app, tid, lambda a, s, t: handover.escalate(a, s, t, actor=BOB, note="lock waits"))  # to the manager
    clock.advance(minutes=10)
    change(app, tid, lambda a, s, t: handover.escalate(a, s, t, actor=CAROL, note="tier 2, please"))
    with app.db.session() as s:
        held = holding.holds(s, s.get(Ticket, tid))
    assert [(h.handler, h.step, h.by) for h in held[1:]] == [
        (BOB, "handover_command", ALICE), (CAROL, "manager_takeover", BOB),
        ("dave@support.example.com", "tier2_escalation", CAROL),
    ]
    assert "#escalate" in held[2].why and held[3].why == "tier-2 escalation to l2"
    assert held[1].until == held[2].since == utc(2026, 3, 2, 1, 50)
    assert held[2].until == held[3].since == utc(2026, 3, 2, 2, 0)


def test_out_of_office_primary_is_a_step_of_its_own(make_app, clock, tmp_path):
    app = make_app(clock=clock, routing=rules(tmp_path, ALICE_AWAY))
    tid = new_ticket(app)
    with app.db.session() as s:
        held = holding.holds(s, s.get(Ticket, tid))
    assert [(h.handler, h.owner, h.step, h.why) for h in held] == [
        (ALICE, ALICE, "routed", "the owner the rules gave the new ticket of project core-banking"),
        (BOB, ALICE, "handover_away", "the primary engineer is out of office"),
    ]
    assert held[0].since == held[0].until == held[1].since  # the handover happened at creation
