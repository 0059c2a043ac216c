"""Commands by mail: every command applied from an authorised engineer's reply,
malformed commands answered with an error and nothing applied, and the text
around the commands relayed (or kept internal with #note)."""

from __future__ import annotations

import pytest

from gateway.desk import closure, handover
from parsers.commands import VALID_COMMANDS
from tests.engineer_mail import (
    ALICE, BOB, CUSTOMER, Desk, all_text, customer_mail, events, messages, open_ticket, reply_to, ticket,
)
from tests.mail import body_text

EN = dict(subject="Website returns 502", body="Hello,\nour website returns 502 since 9:00.\n")


@pytest.fixture
def desk(make_app, clock):
    return Desk(make_app(clock=clock))


def _relayed(desk):
    return customer_mail(desk.new_mail())


def test_commands_are_applied_and_stripped_from_the_relayed_text(desk):
    tid, note = open_ticket(desk, **EN)
    desk.receive(reply_to(note, "#priority P1\n#time 45m\n#status open\nHello Li Wei,\nplease restart nginx.\n"))
    t = ticket(desk.app, tid)
    assert (t.priority, t.status) == ("P1", "open")  # #status wins over workflow.status_after_reply
    [time_ev] = events(desk.app, tid, "time")
    assert time_ev.data["minutes"] == 45 and time_ev.actor == ALICE
    assert [e.data["name"] for e in events(desk.app, tid, "command")] == ["priority", "time", "status"]
    [prio] = events(desk.app, tid, "priority")
    assert prio.data["new"] == "P1"
    [mail] = [m for m in customer_mail(desk.transport.sent)[1:]]  # [0] is the acknowledgement
    text = body_text(mail["msg"])
    assert "please restart nginx." in text
    assert "#" not in text.split("--")[0]  # no command line reaches the customer


def test_first_relay_satisfies_first_response_and_sets_status_after_reply(make_app, clock):
    desk = Desk(make_app(clock=clock, workflow={"status_after_reply": "open"}))
    tid, note = open_ticket(desk, **EN)
    assert ticket(desk.app, tid).first_responded_at is None
    desk.receive(reply_to(note, "We are on it.\n"))
    t = ticket(desk.app, tid)
    first = t.first_responded_at
    assert first is not None and t.status == "open"
    assert len(events(desk.app, tid, "first_response")) == 1
    clock.advance(hours=2)
    desk.receive(reply_to(note, "Still on it.\n"))
    assert ticket(desk.app, tid).first_responded_at == first  # only the first reply counts
    assert len(events(desk.app, tid, "first_response")) == 1


def test_default_status_after_reply_is_pending_and_pauses_the_clock(desk):
    tid, note = open_ticket(desk, **EN)
    desk.receive(reply_to(note, "Could you send the nginx error log?\n"))
    t = ticket(desk.app, tid)
    assert t.status == "pending" and t.paused_at is not None


def test_commands_only_reply_relays_nothing(desk):
    tid, note = open_ticket(desk, **EN)
    desk.new_mail()
    desk.receive(reply_to(note, "#priority P4\n#time 1h30m\n"))
    assert _relayed(desk) == []
    t = ticket(desk.app, tid)
    assert t.priority == "P4" and t.status == "new" and t.first_responded_at is None
    assert events(desk.app, tid, "time")[0].data["minutes"] == 90
    assert not [m for m in messages(desk.app, tid) if m.direction == "out"]


def test_assign_moves_the_ticket_and_the_new_engineer_can_answer(desk):
    tid, note = open_ticket(desk, **EN)
    desk.new_mail()
    desk.receive(reply_to(note, "#assign bob@support.example.com\n"))
    t = ticket(desk.app, tid)
    assert (t.owner, t.handler) == (BOB, BOB)
    [to_bob] = [m["msg"] for m in desk.new_mail() if BOB in m["to"]]
    assert "assigned to you" in body_text(to_bob)
    assert desk.app.signer.check_reply_token(to_bob["Reply-To"].split("+")[1].split("@")[0], BOB) == tid
    desk.receive(reply_to(to_bob, "Bob here, I take over.\n", frm=BOB, name="Bob Zhang"))
    [relayed] = _relayed(desk)
    assert "Bob here" in body_text(relayed["msg"])
    assert relayed["msg"]["From"].addresses[0].display_name == "Bob (Support)"


def test_note_is_stored_internal_and_sent_to_engineers_only(desk):
    tid, note = open_ticket(desk, **EN)
    desk.new_mail()
    desk.receive(reply_to(note, "#assign bob@support.example.com\n#note\nCustomer runs the 2019 firmware, "
                                "see KB-77 before answering.\n"))
    out = desk.new_mail()
    assert customer_mail(out) == []
    to_bob = [m for m in out if BOB in m["to"]]
    assert any("2019 firmware" in body_text(m["msg"]) and "Internal note" in body_text(m["msg"]) for m in to_bob)
    [stored] = [m for m in messages(desk.app, tid) if m.kind == "note"]
    assert stored.internal and "2019 firmware" in stored.text
    # a later relay does not carry the note either
    desk.receive(reply_to(note, "Please upgrade the firmware.\n"))
    for m in customer_mail(desk.transport.sent):
        assert "2019 firmware" not in all_text(m["raw"])


def test_cc_add_and_remove_control_who_receives_the_relay(desk):
    tid, note = open_ticket(desk, **EN)
    desk.new_mail()
    desk.receive(reply_to(note, "#cc add boss@mail.example.test\nLooping in your manager.\n"))
    [first] = _relayed(desk)
    assert "boss@mail.example.test" in first["to"] and first["msg"]["Cc"] == "boss@mail.example.test"
    desk.receive(reply_to(note, "#cc remove boss@mail.example.test\nJust the two of us again.\n"))
    [second] = _relayed(desk)
    assert second["to"] == [CUSTOMER] and second["msg"]["Cc"] is None
    assert [(e.data["op"], e.data["address"]) for e in events(desk.app, tid, "cc")] == [
        ("add", "boss@mail.example.test"), ("remove", "boss@mail.example.test")]


def test_customer_ccs_receive_relays_unless_configured_off(make_app, clock):
    for relay_to_cc, expect in ((True, ["colleague@mail.example.test"]), (False, [])):
        desk = Desk(make_app(clock=clock, workflow={"relay_to_cc": relay_to_cc}))
        tid, note = open_ticket(desk, cc="Colleague <colleague@mail.example.test>", **EN)
        desk.new_mail()
        desk.receive(reply_to(note, "Answer for both of you.\n"))
        [m] = _relayed(desk)
        assert sorted(m["to"]) == sorted([CUSTOMER] + expect)


MALFORMED = [
    "#status done",
    "#priority P9",
    "#frobnicate now",
    "#time forever",
    "#assign nobody",
    "#cc add",
    "#status:open",
    "#close now",
    "#assign stranger@elsewhere.example",  # well-formed, but not an engineer
    "#cc remove nobody@mail.example.test",  # not on the CC list
    "#priority P1\n#status bogus",  # one bad line: the good one is not applied either
    "#status pending\n#close",  # contradiction
    "#note\n#solution",
]


@pytest.mark.parametrize("commands", MALFORMED)
def test_malformed_commands_get_an_error_mail_and_nothing_is_applied(desk, commands):
    tid, note = open_ticket(desk, **EN)
    before = ticket(desk.app, tid)
    desk.new_mail()
    desk.receive(reply_to(note, commands + "\nHello, this must not be sent yet.\n"))
    out = desk.new_mail()
    assert customer_mail(out) == []
    [err] = [m["msg"] for m in out if ALICE in m["to"]]
    text = body_text(err)
    assert "NOT sent" in text
    for form in VALID_COMMANDS.values():
        assert form in text
    after = ticket(desk.app, tid)
    assert (after.priority, after.status, after.owner) == (before.priority, before.status, before.owner)
    assert events(desk.app, tid, "command") == []
    assert len(events(desk.app, tid, "command_rejected")) == 1
    assert not [m for m in messages(desk.app, tid) if m.direction == "out" or m.internal]
    # the engineer corrects it by replying to the error mail: now it goes out
    desk.receive(reply_to(err, "#priority P2\nHello, corrected.\n"))
    [relayed] = _relayed(desk)
    assert "Hello, corrected." in body_text(relayed["msg"])
    assert ticket(desk.app, tid).priority == "P2"


class Calls:
    def __init__(self):
        self.calls = []

    def recorder(self, name):
        def fn(app, session, ticket, **kw):
            self.calls.append((name, ticket.id, kw))
        return fn


@pytest.fixture
def workflow_calls(monkeypatch):
    """Escalation and closure belong to other modules; here we check what we hand them."""
    calls = Calls()
    for name in ("escalate", "handover", "cannot"):
        monkeypatch.setattr(handover, name, calls.recorder(name))
    monkeypatch.setattr(closure, "resolve", calls.recorder("resolve"))
    return calls


@pytest.mark.parametrize("commands, expected", [
    ("#escalate", ("escalate", {"actor": ALICE, "note": "Tried a restart, no change."})),
    ("#handover", ("handover", {"actor": ALICE, "reason": "#handover by mail"})),
    ("#cannot", ("cannot", {"actor": ALICE})),
    ("#status resolved", ("resolve", {"actor": ALICE, "solution": "", "kb_tags": None, "status": "resolved"})),
    ("#close", ("resolve", {"actor": ALICE, "solution": "", "kb_tags": None, "status": "closed"})),
    ("#status closed", ("resolve", {"actor": ALICE, "solution": "", "kb_tags": None, "status": "closed"})),
])
def test_workflow_commands_call_their_owner_module_after_the_relay(desk, workflow_calls, commands, expected):
    tid, note = open_ticket(desk, **EN)
    desk.new_mail()
    desk.receive(reply_to(note, commands + "\nTried a restart, no change.\n"))
    name, kw = expected
    assert workflow_calls.calls == [(name, tid, kw)]
    [relayed] = _relayed(desk)
    assert "Tried a restart" in body_text(relayed["msg"])
    # a relay sets workflow.status_after_reply, unless closure (the owner module) decides the status
    assert ticket(desk.app, tid).status == ("new" if name == "resolve" else "pending")


def test_solution_goes_to_closure_not_to_a_separate_relay(desk, workflow_calls):
    tid, note = open_ticket(desk, **EN)
    desk.new_mail()
    desk.receive(reply_to(note, "#solution\n#kb nginx 502\nRaise proxy_read_timeout to 120s.\n"))
    assert workflow_calls.calls == [("resolve", tid, {"actor": ALICE, "solution": "Raise proxy_read_timeout to 120s.",
                                                      "kb_tags": ("nginx", "502"), "status": "resolved"})]
    assert _relayed(desk) == []


def test_out_of_office_from_an_engineer_never_reaches_the_customer(desk):
    tid, note = open_ticket(desk, **EN)
    desk.new_mail()
    desk.receive(reply_to(note, "I am out of the office until Monday.\n",
                          headers={"Auto-Submitted": "auto-replied"}))
    assert _relayed(desk) == []
    assert [m.kind for m in messages(desk.app, tid) if m.internal] == ["automatic"]


def test_the_same_reply_delivered_twice_is_relayed_once(desk):
    tid, note = open_ticket(desk, **EN)
    desk.new_mail()
    raw = reply_to(note, "Only once, please.\n")
    desk.receive(raw)
    desk.receive(b"Received: from imap.example by mx; Mon, 2 Mar 2026 10:21:00 +0800\r\n" + raw)
    assert len(_relayed(desk)) == 1


def test_chinese_ticket_relays_in_chinese(desk):
    tid, note = open_ticket(desk)  # the default mail is Chinese
    desk.new_mail()
    desk.receive(reply_to(note, "李先生您好，请重启 nginx。\n", style="foxmail"))
    [m] = _relayed(desk)
    msg = m["msg"]
    assert "李先生您好" in body_text(msg) and "原始邮件" not in body_text(msg)
    assert "技术支持" in msg["From"] and "<support@support.example.test>" in msg["From"]


def test_a_reply_with_an_attachment_forwards_it_to_the_customer(desk):
    tid, note = open_ticket(desk, **EN)
    desk.new_mail()
    desk.receive(reply_to(note, "The patched config is attached.\n",
                          attachments=[("nginx.conf", "text/plain", b"proxy_read_timeout 120s;\n")]))
    [m] = _relayed(desk)
    [att] = [p for p in m["msg"].iter_attachments()]
    assert att.get_filename() == "nginx.conf" and att.get_content() == "proxy_read_timeout 120s;\n"
    [out] = [m for m in messages(desk.app, tid) if m.direction == "out"]
    assert [a.filename for a in _attachments(desk.app, out.id)] == ["nginx.conf"]


def _attachments(app, message_id):
    from sqlalchemy import select

    from storage.models import AttachmentRow

    with app.db.session() as s:
        return list(s.execute(select(AttachmentRow).where(AttachmentRow.message_id == message_id)).scalars())



def test_engineer_address_typed_into_the_text_is_replaced_by_the_support_address(desk):
    tid, note = open_ticket(desk, **EN)
    desk.new_mail()
    desk.receive(reply_to(note, "If it happens again, write to Alice@Support.Example.com or "
                                "bob@support.example.com directly.\n"))
    [m] = _relayed(desk)
    text = all_text(m["raw"])
    assert "@support.example.com" not in text
    assert "write to support@support.example.test or support@support.example.test directly." in body_text(m["msg"])


# ---- with the real escalation and closure modules (no stand-ins)

def test_status_resolved_relays_the_answer_then_the_closure_uses_it_as_solution(desk):
    tid, note = open_ticket(desk, **EN)
    desk.new_mail()
    desk.receive(reply_to(note, "#status resolved\n#time 15m\nRaise proxy_read_timeout to 120s.\n"))
    kinds = [m["msg"]["Subject"] for m in customer_mail(desk.new_mail())]
    assert len(kinds) == 2  # the answer, then the closure mail with the survey
    t = ticket(desk.app, tid)
    assert t.status == "resolved" and t.solution == "Raise proxy_read_timeout to 120s."
    assert t.first_responded_at is not None


def test_escalate_moves_the_ticket_to_tier_two_and_a_second_escalate_is_refused_politely(desk):
    tid, note = open_ticket(desk, **EN)
    desk.new_mail()
    desk.receive(reply_to(note, "#escalate\nWe are bringing in a specialist.\n"))
    t = ticket(desk.app, tid)
    assert t.tier == 2 and t.escalated_from == ALICE and t.handler != ALICE
    desk.new_mail()
    desk.receive(reply_to(note, "#escalate\n"))
    [refused] = [m["msg"] for m in desk.new_mail() if ALICE in m["to"]]
    assert "#escalate was not done" in refused["Subject"] and "already at tier 2" in body_text(refused)


# ---- issue 18: commands above or below the text, and text on #note/#solution's own line

def test_status_below_the_solution_text_is_a_command_and_never_reaches_the_customer(desk):
    tid, note = open_ticket(desk, **EN)
    desk.new_mail()
    desk.receive(reply_to(note, "#solution\nRaise proxy_read_timeout to 120s.\n#status resolved\n#time 20m\n"))
    t = ticket(desk.app, tid)
    assert t.status == "resolved" and t.solution == "Raise proxy_read_timeout to 120s."
    assert events(desk.app, tid, "time")[0].data["minutes"] == 20
    sent = customer_mail(desk.new_mail())
    assert sent and any("Raise proxy_read_timeout to 120s." in body_text(m["msg"]) for m in sent)
    for m in sent:
        assert "#status" not in all_text(m["raw"]) and "#time" not in all_text(m["raw"])


def test_commands_at_the_bottom_of_an_answer_are_applied_and_not_relayed(desk):
    tid, note = open_ticket(desk, **EN)
    desk.new_mail()
    desk.receive(reply_to(note, "Hello Li Wei,\nplease restart nginx.\n\nAlice\n\n#priority P1\n#time 10m\n"))
    assert ticket(desk.app, tid).priority == "P1"
    [relayed] = _relayed(desk)
    text = body_text(relayed["msg"])
    assert "please restart nginx." in text and "#priority" not in text and "#time" not in text


def test_a_command_between_lines_of_text_is_refused_not_sent(desk):
    tid, note = open_ticket(desk, **EN)
    desk.new_mail()
    desk.receive(reply_to(note, "Hello Li Wei,\n#status resolved\nthe fix is live.\n"))
    out = desk.new_mail()
    assert customer_mail(out) == []
    [err] = [m["msg"] for m in out if ALICE in m["to"]]
    assert "between lines of text" in body_text(err)
    assert ticket(desk.app, tid).status == "new"


def test_note_with_its_text_on_the_same_line_is_an_internal_note(desk):
    tid, note = open_ticket(desk, **EN)
    desk.new_mail()
    desk.receive(reply_to(note, "#note Customer runs the 2019 firmware, see KB-77.\n"))
    out = desk.new_mail()
    assert customer_mail(out) == []
    assert not [m for m in out if "NOT sent" in body_text(m["msg"])]  # no command error
    [stored] = [m for m in messages(desk.app, tid) if m.kind == "note"]
    assert stored.internal and stored.text == "Customer runs the 2019 firmware, see KB-77."


def test_solution_with_its_text_on_the_same_line_goes_to_the_closure(desk):
    tid, note = open_ticket(desk, **EN)
    desk.new_mail()
    desk.receive(reply_to(note, "#solution Raise proxy_read_timeout to 120s.\n"))
    t = ticket(desk.app, tid)
    assert t.status == "resolved" and t.solution == "Raise proxy_read_timeout to 120s."
