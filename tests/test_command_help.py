"""#help by mail, and the short command list at the foot of every mail to an engineer (issue 18, item 9)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from parsers.commands import VALID_COMMANDS
from tests.engineer_mail import ALICE, BOB, Desk, customer_mail, events, open_ticket, reply_to, ticket
from tests.mail import body_text

EN = dict(subject="Website returns 502", body="Hello,\nour website returns 502 since 9:00.\n")
ENGINEERS = ("alice@", "bob@", "carol@", "dave@", "erin@", "sam@")
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


@pytest.fixture
def desk(make_app, clock):
    return Desk(make_app(clock=clock))


def _help_mail(desk, reply):
    desk.receive(reply)
    out = desk.new_mail()
    assert customer_mail(out) == []
    [mail] = [m for m in out if ALICE in m["to"]]
    return mail["msg"]


def test_help_answers_with_every_command_and_examples(desk):
    tid, note = open_ticket(desk, **EN)
    desk.new_mail()
    before = ticket(desk.app, tid)
    msg = _help_mail(desk, reply_to(note, "#help\n"))
    text = body_text(msg)
    assert msg["Subject"].endswith("Commands by mail")
    for form in VALID_COMMANDS.values():
        assert form in text
    assert "#release" in text
    assert "Examples" in text and "#assign bob@support.example.com" in text
    assert "NOT sent" not in text  # nothing else was in the reply
    # the answer is the engineer's own: signed Reply-To, threaded under the reply
    token = msg["Reply-To"].split("+")[1].split("@")[0]
    assert desk.app.signer.check_reply_token(token, ALICE) == tid
    after = ticket(desk.app, tid)
    assert (after.status, after.priority) == (before.status, before.priority)
    assert len(events(desk.app, tid, "command_help")) == 1 and events(desk.app, tid, "command") == []


def test_help_is_in_chinese_for_an_engineer_writing_chinese(desk):
    tid, note = open_ticket(desk)  # the default customer mail is Chinese
    desk.new_mail()
    text = body_text(_help_mail(desk, reply_to(note, "#help\n请问命令怎么写？\n", style="foxmail")))
    assert "命令写在回复的最前几行或最后几行" in text and "示例" in text
    for form in VALID_COMMANDS.values():
        assert form.replace("<email>", "<邮箱>").replace("[text]", "[文字]").replace("<duration>", "<时长>") \
            .replace("[tags...]", "[标签...]") in text
    assert "没有发送给客户" in text  # the question under #help was not relayed


def test_help_with_other_commands_and_text_applies_and_sends_nothing(desk):
    tid, note = open_ticket(desk, **EN)
    desk.new_mail()
    text = body_text(_help_mail(desk, reply_to(note, "#help\n#priority P1\nHello, is this how it works?\n")))
    assert "NOT sent" in text and "> Hello, is this how it works?" in text
    assert ticket(desk.app, tid).priority != "P1"


def _text_block(path: Path) -> str:
    source = path.read_text(encoding="utf-8")
    return source[source.index("{% block text %}"):source.index("{% endblock %}", source.index("{% block text %}"))]


# Every mail kind that goes to an engineer and can be answered with commands.
ENGINEER_KINDS = ("notification", "note", "handover", "manager_alert", "escalation_tier2", "tier2_report",
                  "handback", "sla_warning", "command_refused", "bounce_notice", "delivery_failed",
                  "low_score_alert", "escalated_to_manager")


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
@pytest.mark.parametrize("kind", ENGINEER_KINDS)
def test_every_engineer_mail_template_ends_with_the_command_list(kind, locale):
    assert f'{{% include "{locale}/_commands_footer.j2" %}}' in _text_block(TEMPLATES / locale / f"{kind}.j2")


def test_the_mails_engineers_receive_carry_the_command_list(desk):
    """A story through new ticket, note, escalation, a refused command and a command error."""
    tid, note = open_ticket(desk, **EN)
    desk.receive(reply_to(note, "#assign bob@support.example.com\n#note Bob, please look at this one.\n"))
    [to_bob] = [m["msg"] for m in desk.transport.sent if BOB in m["to"]][-1:]
    desk.receive(reply_to(to_bob, "#escalate\nNeeds a specialist.\n", frm=BOB, name="Bob Zhang"))
    desk.receive(reply_to(to_bob, "#escalate\n", frm=BOB, name="Bob Zhang"))
    desk.receive(reply_to(to_bob, "#priority P9\n", frm=BOB, name="Bob Zhang"))
    staff = [m for m in desk.transport.sent if any(a.startswith(ENGINEERS) for a in m["to"])]
    kinds = set()
    for m in staff:
        text = body_text(m["msg"])
        assert "#help" in text and "#release" in text, m["msg"]["Subject"]
        kinds.add(re.sub(r"^\[[^]]+\]\s*", "", m["msg"]["Subject"])[:20])
    assert len(staff) >= 5 and len(kinds) >= 4  # several kinds, not one notification many times


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_the_footer_names_every_command(locale):
    footer = (TEMPLATES / locale / "_commands_footer.j2").read_text(encoding="utf-8")
    for name in VALID_COMMANDS:
        if name != "close":  # "#close" is "#status closed"; the footer stays short
            assert f"#{name}" in footer


def test_help_written_to_the_support_address_answers_the_engineer_and_opens_no_ticket(desk):
    """A newcomer's first try: a new mail, no ticket, subject or text "#help"."""
    from tests.engineer_mail import SUPPORT, tickets_count
    from tests.mail import build

    for subject, body in (("#help", "\n"), ("commands?", "#help\n")):
        counts = desk.receive(build(frm=ALICE, name="Alice Wang", to=SUPPORT, subject=subject, body=body))
        assert counts["command_help"] == 1, counts
        [mail] = desk.new_mail()
        assert mail["to"] == [ALICE] and mail["msg"]["Subject"] == "Commands by mail"
        assert all(form in body_text(mail["msg"]) for form in VALID_COMMANDS.values())
    assert tickets_count(desk.app) == 0


def test_help_from_a_customer_is_just_a_ticket(desk):
    from tests.engineer_mail import CUSTOMER, SUPPORT, tickets_count
    from tests.mail import build

    desk.receive(build(frm=CUSTOMER, to=SUPPORT, subject="#help", body="\n"))
    assert tickets_count(desk.app) == 1
    assert not [m for m in desk.new_mail() if "Commands by mail" in (m["msg"]["Subject"] or "")]


def test_the_footer_reads_as_prose_if_a_quote_goes_unrecognised(desk):
    """No line of the short list starts with '#': pasted under a reply, it is neither a command nor an error."""
    from parsers.commands import parse_commands

    open_ticket(desk, **EN)
    [note] = [m for m in desk.transport.sent if ALICE in m["to"]]
    footer = body_text(note["msg"]).split("your own address is never shown.")[1]
    block = parse_commands("I am on it.\n" + footer)
    assert (block.commands, block.errors) == ((), ())
