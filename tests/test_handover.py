"""The handover rule (DOMAIN.md §5), branch by branch, on a ManualClock.

Big Bank core-banking: primary alice, secondary bob, manager carol; the first
response (P2) is due two business hours after 09:00 Shanghai, i.e. 03:00 UTC.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from gateway.desk import handover, ticket_ops
from gateway.jobs import sla
from gateway.clock import ManualClock
from storage.history import record_event
from storage.models import Ticket
from tests.sla_kit import (ALICE, ALICE_AWAY, BOB, BOB_AWAY, CAROL, CUSTOMER, DAVE, ERIN, SECONDARY_IS_PRIMARY, change, copies, events,
                           mails, marks, new_ticket, reply_to_is_signed_for, rules, text_of, ticket, utc)

FIRST_RESPONSE_DUE = utc(2026, 3, 2, 3, 0)
SECONDARY_DUE = utc(2026, 3, 2, 5, 0)  # two business hours after the handover at 11:00 Shanghai


@pytest.fixture
def clock():
    return ManualClock(utc(2026, 3, 2, 1, 0))


def _handed_over(app, clock) -> int:
    tid = new_ticket(app)
    clock.set(FIRST_RESPONSE_DUE)
    assert sla.run_sla_watch(app)["handover"] == 1
    return tid


def test_ticket_starts_with_the_primary_as_owner_and_handler(make_app, clock):
    app = make_app(clock=clock)
    t = ticket(app, new_ticket(app))
    assert (t.owner, t.handler, t.project) == (ALICE, ALICE, "core-banking")
    assert t.first_response_due == FIRST_RESPONSE_DUE


def test_primary_silent_past_first_response_hands_over_to_the_secondary(make_app, clock):
    app = make_app(clock=clock)
    tid = new_ticket(app)
    clock.set(FIRST_RESPONSE_DUE - timedelta(seconds=1))
    sla.run_sla_watch(app)
    assert ticket(app, tid).handler == ALICE and not mails(app, "handover")

    clock.set(FIRST_RESPONSE_DUE)
    assert sla.run_sla_watch(app)["handover"] == 1
    t = ticket(app, tid)
    assert (t.owner, t.handler) == (ALICE, BOB)  # the secondary handles this incident; alice stays the owner
    assert t.handover_reason == "first-response deadline missed"
    [ev] = events(app, tid, "handover")
    assert ev.data["primary"] == ALICE and ev.data["secondary"] == BOB and ev.data["manager"] == CAROL
    assert ev.data["expected_by"] == SECONDARY_DUE.isoformat()

    by = copies(app, "handover")
    assert sorted(by) == sorted([BOB, CAROL])  # the secondary, the manager on CC, nobody else
    for reader, copy in by.items():
        assert copy.to == [BOB] and copy.cc == [CAROL]
        assert reply_to_is_signed_for(app, copy, reader, tid)  # whoever answers, the commands are theirs
    mail = by[BOB]
    body = text_of(mail)
    assert "first-response deadline missed" in body  # why
    assert "2026-03-02 13:00" in body  # what is expected by when (Shanghai time)
    assert "the nightly batch takes hours" in body  # the full history
    assert t.ref in mail.subject and "P2" in mail.subject


def test_customer_is_told_a_colleague_took_over_without_internal_detail(make_app, clock):
    app = make_app(clock=clock)
    tid = _handed_over(app, clock)
    [notice] = mails(app, "customer_takeover")
    assert notice.to == [CUSTOMER] and notice.cc == []
    body = text_of(notice)
    assert ticket(app, tid).ref in notice.subject
    assert "taken over" in body
    for internal in ("deadline missed", "first-response", ALICE, BOB, CAROL, "Alice", "manager", "handover"):
        assert internal not in body, internal


def test_handover_command_from_the_primary(make_app, clock):
    app = make_app(clock=clock)
    tid = new_ticket(app)
    clock.advance(minutes=20)
    result = {}
    change(app, tid, lambda a, s, t: result.setdefault("r", handover.handover(a, s, t, reason="#handover by mail",
                                                                                actor=ALICE)))
    assert result["r"]
    t = ticket(app, tid)
    assert (t.owner, t.handler, t.handover_reason) == (ALICE, BOB, "#handover by mail")
    by = copies(app, "handover")
    assert sorted(by) == sorted([BOB, CAROL])
    mail = by[BOB]
    assert mail.to == [BOB] and mail.cc == [CAROL]
    assert events(app, tid, "handover")[0].actor == ALICE
    assert len(mails(app, "customer_takeover")) == 1


def test_out_of_office_primary_hands_over_at_creation(make_app, clock, tmp_path):
    app = make_app(clock=clock, routing=rules(tmp_path, ALICE_AWAY))
    tid = new_ticket(app)
    t = ticket(app, tid)
    assert (t.owner, t.handler) == (ALICE, BOB)
    assert t.handover_reason == "the primary engineer is out of office"
    by = copies(app, "handover")
    assert sorted(by) == sorted([BOB, CAROL])
    mail = by[BOB]
    assert mail.to == [BOB] and mail.cc == [CAROL]
    assert "out of office" in text_of(mail)
    [told] = mails(app, "handover_primary")  # she reads it when she is back: she still coordinates
    assert told.to == [ALICE] and reply_to_is_signed_for(app, told, ALICE, tid)


def test_secondary_resolves_handback_to_primary_with_manager_cc_and_handler_returns(make_app, clock):
    app = make_app(clock=clock)
    tid = _handed_over(app, clock)
    clock.advance(minutes=30)

    def work(a, s, t):
        record_event(s, t, "time", a.now(), "45 minutes logged", actor=BOB, minutes=45)
        record_event(s, t, "time", a.now(), "30 minutes logged", actor=BOB, minutes=30)
        t.solution = "Rebuilt the batch index; the run takes 20 minutes again."
        ticket_ops.set_status(a, s, t, "resolved", actor=BOB)
        handover.on_resolved(a, s, t, actor=BOB)

    change(app, tid, work)
    t = ticket(app, tid)
    assert (t.owner, t.handler, t.handover_reason) == (ALICE, ALICE, "")  # coordination returns to the primary
    by = copies(app, "handback")
    assert sorted(by) == sorted([ALICE, CAROL])
    for reader, copy in by.items():
        assert copy.to == [ALICE] and copy.cc == [CAROL]
        assert reply_to_is_signed_for(app, copy, reader, tid)
    mail = by[ALICE]
    body = text_of(mail)
    assert "Rebuilt the batch index" in body and "75 minutes" in body
    [ev] = events(app, tid, "handback")
    assert (ev.data["secondary"], ev.data["primary"], ev.data["minutes"]) == (BOB, ALICE, 75)
    # the history answers "who was responsible when"
    kinds = [e.kind for e in events(app, tid) if e.kind in ("handover", "handback")]
    assert kinds == ["handover", "handback"]


def test_secondary_who_answers_in_time_is_not_escalated(make_app, clock):
    app = make_app(clock=clock)
    tid = _handed_over(app, clock)
    clock.advance(minutes=40)
    change(app, tid, lambda a, s, t: ticket_ops.mark_first_response(a, t))
    clock.set(SECONDARY_DUE + timedelta(minutes=5))
    assert sla.run_sla_watch(app)["manager"] == 0
    assert ticket(app, tid).handler == BOB and not mails(app, "manager_alert")


def test_secondary_silent_too_goes_to_the_manager(make_app, clock):
    app = make_app(clock=clock)
    tid = _handed_over(app, clock)
    clock.set(SECONDARY_DUE - timedelta(seconds=1))
    assert sla.run_sla_watch(app)["manager"] == 0
    clock.set(SECONDARY_DUE)
    assert sla.run_sla_watch(app)["manager"] == 1
    t = ticket(app, tid)
    assert (t.owner, t.handler, t.manager_escalated) == (CAROL, CAROL, True)
    [mail] = mails(app, "manager_alert")
    assert mail.to == [CAROL] and mail.cc == []
    assert "missed the response deadline" in text_of(mail)
    [ev] = events(app, tid, "manager_escalation")
    assert ev.data["previous"] == BOB
    # the manager took it because both engineers missed; resolved, it goes back to the primary
    # as after the secondary's resolution (see test_manager_resolution_hands_back_to_the_primary)


def test_secondary_cannot_goes_to_the_manager(make_app, clock):
    app = make_app(clock=clock)
    tid = _handed_over(app, clock)
    out = {}
    change(app, tid, lambda a, s, t: out.setdefault("r", handover.cannot(a, s, t, actor=BOB)))
    assert out["r"]
    t = ticket(app, tid)
    assert (t.owner, t.handler) == (CAROL, CAROL)
    [mail] = mails(app, "manager_alert")
    assert mail.to == [CAROL] and mail.cc == []
    assert "#cannot" in text_of(mail)


def test_cannot_without_a_handover_leaves_the_primary_responsible(make_app, clock):
    app = make_app(clock=clock)
    tid = new_ticket(app)
    out = {}
    change(app, tid, lambda a, s, t: out.setdefault("r", handover.cannot(a, s, t, actor=ALICE)))
    assert not out["r"] and "no handover" in out["r"].detail
    assert ticket(app, tid).handler == ALICE and not mails(app, "manager_alert")
    [ev] = events(app, tid, "cannot_refused")
    assert ALICE in ev.detail and "stays responsible" in ev.detail


def test_rules_refuse_a_secondary_who_is_the_primary(make_app, clock, tmp_path):
    from gateway.config import ConfigError

    with pytest.raises(ConfigError, match="two different engineers"):
        make_app(clock=clock, routing=rules(tmp_path, SECONDARY_IS_PRIMARY))


@pytest.mark.parametrize("edits, reassign, why", [
    ((BOB_AWAY,), None, "out of office too"),
    ((), ERIN, "not the project primary"),
])
def test_ambiguous_handover_by_command_leaves_the_primary_responsible(make_app, clock, tmp_path, edits, reassign,
                                                                      why):
    app = make_app(clock=clock, routing=rules(tmp_path, *edits))
    tid = new_ticket(app)
    if reassign:  # someone else handles it now (owner stays alice): a handover would be unclear
        change(app, tid, lambda a, s, t: ticket_ops.assign(a, s, t, reassign, actor=CAROL, owner_too=False))
    out = {}
    change(app, tid, lambda a, s, t: out.setdefault("r", handover.handover(a, s, t, reason="#handover by mail",
                                                                             actor=ALICE)))
    assert not out["r"] and why in out["r"].detail
    t = ticket(app, tid)
    assert (t.owner, t.handler, t.handover_reason) == (ALICE, reassign or ALICE, "")
    assert not mails(app, "handover") and not mails(app, "customer_takeover")
    [ev] = events(app, tid, "handover_refused")
    assert why in ev.detail and "stays responsible" in ev.detail


def test_both_out_of_office_at_creation_primary_stays(make_app, clock, tmp_path):
    app = make_app(clock=clock, routing=rules(tmp_path, ALICE_AWAY, BOB_AWAY))
    tid = new_ticket(app)
    assert ticket(app, tid).handler == ALICE
    [ev] = events(app, tid, "handover_refused")
    assert "out of office too" in ev.detail and ev.data["reason"] == "the primary engineer is out of office"
    assert not mails(app, "handover")


def test_ambiguous_breach_handover_keeps_primary_and_tells_her(make_app, clock, tmp_path):
    app = make_app(clock=clock, routing=rules(tmp_path, BOB_AWAY))
    tid = new_ticket(app)
    clock.set(FIRST_RESPONSE_DUE)
    counts = sla.run_sla_watch(app)
    assert counts["breach"] == 1 and counts["handover"] == 0 and counts["refused"] == 1
    assert ticket(app, tid).handler == ALICE
    [notice] = mails(app, "sla_warning")  # the breach notice (template sla_warning, breached)
    assert notice.to == [ALICE] and "SLA breached" in notice.subject


def test_ticket_without_project_has_no_handover(make_app, clock):
    app = make_app(clock=clock)
    tid = new_ticket(app, frm="someone@unknown.example")
    out = {}
    change(app, tid, lambda a, s, t: out.setdefault("r", handover.handover(a, s, t, reason="#handover by mail",
                                                                             actor=ALICE)))
    assert not out["r"] and "no customer project" in out["r"].detail


def test_second_handover_is_refused(make_app, clock):
    app = make_app(clock=clock)
    tid = _handed_over(app, clock)
    out = {}
    change(app, tid, lambda a, s, t: out.setdefault("r", handover.handover(a, s, t, reason="#handover by mail",
                                                                             actor=ALICE)))
    assert not out["r"] and "already handed over" in out["r"].detail
    assert len(mails(app, "handover")) == 2  # the first handover's two copies (secondary, manager) only


def test_chinese_ticket_gets_every_mail_of_the_rule_in_chinese(make_app, clock):
    app = make_app(clock=clock)
    tid = new_ticket(app, subject="核心系统批处理很慢", body="您好，\n夜间批处理需要好几个小时。\n")
    assert ticket(app, tid).language == "zh-CN"
    clock.set(FIRST_RESPONSE_DUE - timedelta(minutes=30))
    sla.run_sla_watch(app)  # warning
    clock.set(FIRST_RESPONSE_DUE)
    sla.run_sla_watch(app)  # handover + customer notice
    # the secondary's #escalate goes to the manager (第五条), who brings in tier 2
    change(app, tid, lambda a, s, t: handover.escalate(a, s, t, actor=BOB, note="重启过批处理"))
    change(app, tid, lambda a, s, t: handover.escalate(a, s, t, actor=CAROL, note="请二线处理"))

    def resolve(a, s, t):
        t.solution = "重建了索引"
        ticket_ops.set_status(a, s, t, "resolved", actor=DAVE)
        handover.on_resolved(a, s, t, actor=DAVE)

    change(app, tid, resolve)
    tid2 = _handed_over_again(app)
    change(app, tid2, lambda a, s, t: handover.cannot(a, s, t, actor=BOB))
    expected = {"sla_warning": "时限提醒", "handover": "移交", "handover_primary": "转交", "customer_takeover": "接手",
                "escalation_tier2": "二线", "tier2_report": "二线已解决", "handback": "交回", "manager_alert": "经理"}
    for kind, word in expected.items():
        rows = mails(app, kind)
        assert rows, kind
        assert word in rows[0].subject, (kind, rows[0].subject)
        assert "夜间批处理" in text_of(rows[0]) or kind in ("customer_takeover", "tier2_report", "handback",
                                                          "sla_warning"), kind


def _handed_over_again(app):
    tid = new_ticket(app, subject="另一个问题", body="夜间批处理又慢了。\n")
    with app.db.session() as s:
        t = s.get(Ticket, tid)
        handover.handover(app, s, t, reason="#handover by mail", actor=ALICE)
    return tid


# ---------------------------------------------------------------- issue 17: the rest of the rule

def _handover_by_command(app, tid, actor=ALICE):
    out = {}
    change(app, tid, lambda a, s, t: out.setdefault("r", handover.handover(a, s, t, reason="#handover by mail",
                                                                             actor=actor)))
    assert out["r"], out["r"].detail
    [ev] = events(app, tid, "handover")
    return datetime.fromisoformat(ev.data["expected_by"])


def test_handover_near_the_deadline_waits_for_the_secondarys_own_deadline(make_app, clock):
    """第五条: the manager is told when the second cannot handle it either, not at the primary's deadline."""
    app = make_app(clock=clock)
    tid = new_ticket(app)
    clock.set(utc(2026, 3, 2, 2, 0))  # 10:00 Shanghai, an hour before the first response is due
    secondary_due = _handover_by_command(app, tid)
    assert secondary_due == utc(2026, 3, 2, 4, 0)  # bob was told: respond by 12:00 Shanghai

    clock.set(utc(2026, 3, 2, 2, 35))  # 3/4 of the original term: that warning is not bob's
    assert sla.run_sla_watch(app)["warning"] == 0
    assert not mails(app, "sla_warning")

    clock.set(FIRST_RESPONSE_DUE)  # the original deadline passes while bob holds it
    counts = sla.run_sla_watch(app)
    assert counts["breach"] == 1 and counts["manager"] == 0
    t = ticket(app, tid)
    assert (t.owner, t.handler, t.manager_escalated) == (ALICE, BOB, False)
    assert not mails(app, "manager_alert") and not mails(app, "sla_warning")
    assert [m.kind for m in marks(app, tid)] == ["first_response_breach"]  # the figures still count it
    assert "secondary's own response deadline governs" in events(app, tid, "sla_breach")[0].detail

    clock.set(utc(2026, 3, 2, 3, 30))  # 3/4 of bob's own term: he is warned about his deadline
    assert sla.run_sla_watch(app)["warning"] == 1
    [warn] = mails(app, "sla_warning")
    assert warn.to == [BOB] and "2026-03-02 12:00" in text_of(warn)

    clock.set(secondary_due - timedelta(seconds=1))
    assert sla.run_sla_watch(app)["manager"] == 0
    clock.set(secondary_due)
    assert sla.run_sla_watch(app)["manager"] == 1
    t = ticket(app, tid)
    assert (t.owner, t.handler, t.manager_escalated) == (CAROL, CAROL, True)
    [alert] = mails(app, "manager_alert")
    assert alert.to == [CAROL] and "missed the response deadline" in text_of(alert)


def test_secondary_answering_by_her_own_deadline_is_never_escalated(make_app, clock):
    app = make_app(clock=clock)
    tid = new_ticket(app)
    clock.set(utc(2026, 3, 2, 2, 0))
    secondary_due = _handover_by_command(app, tid)
    clock.set(utc(2026, 3, 2, 3, 30))  # after the original deadline, before bob's
    change(app, tid, lambda a, s, t: ticket_ops.mark_first_response(a, t))
    clock.set(secondary_due + timedelta(hours=1))
    counts = sla.run_sla_watch(app)
    assert counts["manager"] == 0 and counts["breach"] == 1  # the original first response was missed, once
    assert ticket(app, tid).handler == BOB and not mails(app, "manager_alert")


RESOLUTION_DUE = utc(2026, 3, 2, 10, 0)  # 18:00 Shanghai: 9 business hours after 09:00


def test_resolution_breach_during_a_handover_goes_to_the_manager_not_tier_two(make_app, clock):
    """第五条 (the second cannot handle it either: tell the manager) and 第四条 (anyone beyond the
    project's first and second engineers needs the manager's approval)."""
    app = make_app(clock=clock)
    tid = _handed_over(app, clock)
    clock.advance(minutes=30)
    change(app, tid, lambda a, s, t: ticket_ops.mark_first_response(a, t))  # bob answered in time
    clock.set(RESOLUTION_DUE - timedelta(seconds=1))
    assert sla.run_sla_watch(app)["manager"] == 0
    clock.set(RESOLUTION_DUE)
    counts = sla.run_sla_watch(app)
    assert counts["manager"] == 1 and counts["escalated"] == 0
    t = ticket(app, tid)
    assert (t.tier, t.owner, t.handler, t.manager_escalated) == (1, CAROL, CAROL, True)
    assert not mails(app, "escalation_tier2")
    [alert] = mails(app, "manager_alert")
    assert alert.to == [CAROL] and alert.cc == []
    assert reply_to_is_signed_for(app, alert, CAROL, tid)
    assert "missed the resolution deadline" in text_of(alert)
    [ev] = events(app, tid, "manager_escalation")
    assert ev.data["previous"] == BOB and ev.actor == "system:sla"


def test_resolution_breach_while_the_primary_holds_it_still_goes_to_tier_two(make_app, clock):
    app = make_app(clock=clock)
    tid = new_ticket(app)
    clock.advance(minutes=30)
    change(app, tid, lambda a, s, t: ticket_ops.mark_first_response(a, t))
    clock.set(RESOLUTION_DUE)
    assert sla.run_sla_watch(app)["escalated"] == 1
    assert ticket(app, tid).tier == 2 and not mails(app, "manager_alert")


def test_sla_handover_tells_the_primary_who_stays_responsible_for_coordination(make_app, clock):
    """第六条: after the handover the project's coordination stays with the first engineer."""
    app = make_app(clock=clock)
    tid = _handed_over(app, clock)
    [note] = mails(app, "handover_primary")
    assert note.to == [ALICE] and note.cc == [] and note.envelope_to == [ALICE]
    assert reply_to_is_signed_for(app, note, ALICE, tid)
    body = text_of(note)
    assert "Bob Zhang" in body and "first-response deadline missed" in body
    assert "2026-03-02 13:00" in body  # when bob must respond
    assert "coordinating" in body
    assert ticket(app, tid).ref in note.subject
    # engineers only: the customer got the takeover notice and nothing else of the handover
    for row in mails(app):
        if CUSTOMER in row.envelope_to:
            assert row.kind in ("acknowledgement", "customer_takeover"), row.kind


def test_primary_handing_over_herself_is_not_told_what_she_did(make_app, clock):
    app = make_app(clock=clock)
    tid = new_ticket(app)
    _handover_by_command(app, tid, actor=ALICE)
    assert not mails(app, "handover_primary")


def test_manager_handover_command_tells_the_primary(make_app, clock):
    app = make_app(clock=clock)
    tid = new_ticket(app)
    _handover_by_command(app, tid, actor=CAROL)
    [note] = mails(app, "handover_primary")
    assert note.to == [ALICE] and reply_to_is_signed_for(app, note, ALICE, tid)


def test_primary_notice_is_in_chinese_for_a_chinese_ticket(make_app, clock):
    app = make_app(clock=clock)
    tid = new_ticket(app, subject="核心系统批处理很慢", body="您好，\n夜间批处理需要好几个小时。\n")
    clock.set(FIRST_RESPONSE_DUE)
    sla.run_sla_watch(app)
    [note] = mails(app, "handover_primary")
    assert "转交" in note.subject and ticket(app, tid).ref in note.subject
    body = text_of(note)
    assert "协调" in body and "2026-03-02 13:00" in body and "Bob Zhang" in body


def test_manager_resolution_hands_back_to_the_primary(make_app, clock):
    """Both engineers missed, the manager took it; resolved, the project's ticket is the primary's again."""
    from gateway.desk import closure

    app = make_app(clock=clock)
    tid = _handed_over(app, clock)
    clock.set(SECONDARY_DUE)
    assert sla.run_sla_watch(app)["manager"] == 1
    clock.advance(minutes=40)

    def work(a, s, t):
        record_event(s, t, "time", a.now(), "20 minutes logged", actor=CAROL, minutes=20)
        closure.resolve(a, s, t, actor=CAROL, solution="Restarted the batch scheduler; runs in 20 minutes.")

    change(app, tid, work)
    t = ticket(app, tid)
    assert (t.owner, t.handler, t.handover_reason, t.manager_escalated) == (ALICE, ALICE, "", False)
    by = copies(app, "handback")
    assert sorted(by) == sorted([ALICE, CAROL])
    for reader, copy in by.items():
        assert copy.to == [ALICE] and copy.cc == [CAROL]
        assert reply_to_is_signed_for(app, copy, reader, tid)
    back = by[ALICE]
    body = text_of(back)
    assert "Restarted the batch scheduler" in body and "20 minutes" in body
    assert "first-response deadline missed" in body  # why it was handed over
    assert "missed the response deadline" in body  # why the manager took it
    [ev] = events(app, tid, "handback")
    assert (ev.data["secondary"], ev.data["primary"], ev.data["after_manager"]) == (CAROL, ALICE, True)
    kinds = [e.kind for e in events(app, tid) if e.kind in ("handover", "manager_escalation", "handback")]
    assert kinds == ["handover", "manager_escalation", "handback"]
    assert CUSTOMER not in back.envelope_to


def test_resolution_breach_while_the_manager_holds_it_tells_her_and_moves_nothing(make_app, clock):
    """After a take-over the manager decides whether anyone else comes in (第四条)."""
    app = make_app(clock=clock)
    tid = _handed_over(app, clock)
    clock.set(SECONDARY_DUE)
    assert sla.run_sla_watch(app)["manager"] == 1
    clock.set(RESOLUTION_DUE)
    counts = sla.run_sla_watch(app)
    assert counts["breach"] == 1 and counts["escalated"] == 0
    t = ticket(app, tid)
    assert (t.tier, t.owner, t.handler) == (1, CAROL, CAROL)
    assert not mails(app, "escalation_tier2")
    [notice] = mails(app, "sla_warning")
    assert notice.to == [CAROL] and "SLA breached" in notice.subject
    assert reply_to_is_signed_for(app, notice, CAROL, tid)


def test_manager_handback_of_a_chinese_ticket_is_in_chinese(make_app, clock):
    from gateway.desk import closure

    app = make_app(clock=clock)
    tid = new_ticket(app, subject="核心系统批处理很慢", body="您好，\n夜间批处理需要好几个小时。\n")
    clock.set(FIRST_RESPONSE_DUE)
    sla.run_sla_watch(app)
    clock.set(SECONDARY_DUE)
    assert sla.run_sla_watch(app)["manager"] == 1
    [alert] = mails(app, "manager_alert")
    assert "交回项目第一负责人" in text_of(alert)
    change(app, tid, lambda a, s, t: closure.resolve(a, s, t, actor=CAROL, solution="重启了调度程序"))
    back = copies(app, "handback")[ALICE]
    assert "交回" in back.subject and back.to == [ALICE] and back.cc == [CAROL]
    body = text_of(back)
    assert "之后经理接手" in body and "重启了调度程序" in body
