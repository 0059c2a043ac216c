"""parse_commands: the # block at the top of an engineer's reply."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers.commands import VALID_COMMANDS, Command, parse_commands, parse_duration
from parsers.quotes import split_reply

VALID = {
    "status_open": ("#status open", "status", ("open",)),
    "status_is_case_insensitive": ("#status Resolved", "status", ("resolved",)),
    "close": ("#close", "close", ()),
    "priority_upper": ("#priority P1", "priority", ("P1",)),
    "priority_lower": ("#priority p4", "priority", ("P4",)),
    "assign": ("#assign Bob.Smith@Example.com", "assign", ("bob.smith@example.com",)),
    "assign_in_brackets": ("#assign <bob@example.com>", "assign", ("bob@example.com",)),
    "escalate": ("#escalate", "escalate", ()),
    "handover": ("#handover", "handover", ()),
    "cannot": ("#cannot", "cannot", ()),
    "cc_add": ("#cc add manager@example.com", "cc", ("add", "manager@example.com")),
    "cc_remove": ("#cc REMOVE x@example.org", "cc", ("remove", "x@example.org")),
    "kb_without_tags": ("#kb", "kb", ()),
    "kb_with_tags": ("#kb vpn dns", "kb", ("vpn", "dns")),
    "note": ("#note", "note", ()),
    "solution": ("#solution", "solution", ()),
    "help": ("#help", "help", ()),
    "command_name_is_case_insensitive": ("#CLOSE", "close", ()),
    "merge": ("#merge TS-000123", "merge", ("TS-000123",)),
    "merge_lower_case_in_brackets": ("#merge [ts-42]", "merge", ("TS-42",)),
    "split": ("#split", "split", ()),
    "send": ("#send", "send", ()),
    "drop": ("#drop", "drop", ()),
    "send_at": ("#send-at 2026-12-02 09:00", "send-at", ("2026-12-02 09:00",)),
    "send_at_iso": ("#send-at 2026-12-02T09:00", "send-at", ("2026-12-02 09:00",)),
    "send_in": ("#send-in 2h", "send-in", ("2h",)),
}


@pytest.mark.parametrize("line, name, args", VALID.values(), ids=VALID.keys())
def test_valid_command_is_parsed(line, name, args):
    block = parse_commands(f"{line}\n\nThanks for waiting.")
    assert block.errors == ()
    assert block.commands == (Command(name, args, line, block.commands[0].minutes),)
    assert block.body == "Thanks for waiting."


@pytest.mark.parametrize("duration, minutes", [
    ("45m", 45), ("1h30m", 90), ("1.5h", 90), ("2h", 120), ("90", 90), ("1h 15m", 75),
    ("30min", 30), ("2hours", 120),
])
def test_time_command_reports_minutes(duration, minutes):
    block = parse_commands(f"#time {duration}")
    assert block.errors == ()
    assert block.commands[0].minutes == minutes


@pytest.mark.parametrize("text", ["abc", "h", "1x", "", "1.5", "-5m"])
def test_unreadable_duration_is_none(text):
    assert parse_duration(text) is None


MALFORMED = {
    "unknown_command": ("#stauts open", "unknown command #stauts"),
    "status_bad_value": ("#status done", "status must be one of"),
    "status_missing_value": ("#status", "status must be one of"),
    "priority_out_of_range": ("#priority P5", "priority must be one of"),
    "priority_two_values": ("#priority P1 P2", "priority must be one of"),
    "assign_not_an_email": ("#assign bob", "#assign needs one email address"),
    "assign_two_emails": ("#assign a@b.com c@d.com", "#assign needs one email address"),
    "cc_without_verb": ("#cc bob@example.com", "#cc needs add or remove"),
    "cc_bad_verb": ("#cc invite bob@example.com", "#cc needs add or remove"),
    "cc_bad_email": ("#cc add bob", "#cc needs add or remove"),
    "time_missing": ("#time", "#time needs a duration"),
    "time_nonsense": ("#time soon", "#time needs a duration"),
    "time_zero": ("#time 0m", "#time needs a duration"),
    "time_absurd": ("#time 900h", "#time needs a duration"),
    "close_with_argument": ("#close now", "#close takes no arguments"),
    "escalate_with_argument": ("#escalate tier2", "#escalate takes no arguments"),
    "help_with_argument": ("#help me", "#help takes no arguments"),
    "glued_colon": ("#status:open", "not a command line"),
    "merge_without_ref": ("#merge", "#merge needs the reference"),
    "merge_not_a_ref": ("#merge the other one", "#merge needs the reference"),
    "split_with_argument": ("#split TS-1", "#split takes no arguments"),
    "send_with_argument": ("#send now", "#send takes no arguments"),
    "send_at_words": ("#send-at tomorrow morning", "#send-at needs a date and time"),
    "send_at_no_such_day": ("#send-at 2026-02-30 09:00", "#send-at needs a date and time"),
    "send_in_nonsense": ("#send-in soon", "#send-in needs a duration"),
}


@pytest.mark.parametrize("line, message", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_command_is_an_error_naming_the_line(line, message):
    block = parse_commands(f"{line}\nbody")
    assert block.commands == ()
    assert len(block.errors) == 1
    assert message in block.errors[0]
    assert f'line 1: "{line}"' in block.errors[0]
    assert block.body == "body"


def test_error_for_known_command_shows_its_valid_form():
    error = parse_commands("#priority urgent").errors[0]
    assert VALID_COMMANDS["priority"] in error


def test_error_for_unknown_command_lists_every_command():
    error = parse_commands("#frobnicate").errors[0]
    assert all(f"#{name}" in error for name in VALID_COMMANDS)


def test_error_for_a_near_miss_suggests_the_command():
    assert "did you mean #status?" in parse_commands("#stauts open").errors[0]


def test_errors_do_not_stop_the_valid_commands_around_them():
    block = parse_commands("#status open\n#priority P9\n#assign a@b.com\nbody")
    assert [c.name for c in block.commands] == ["status", "assign"]
    assert block.errors[0].startswith('line 2: "#priority P9"')


def test_leading_blank_lines_before_the_block_are_allowed():
    block = parse_commands("\n\n  \n#close\nBye")
    assert [c.name for c in block.commands] == ["close"]
    assert block.body == "Bye"


def test_hash_prose_in_the_text_is_not_a_command():
    block = parse_commands("#status pending\nWe are on it.\n#1 priority for us is the outage.\nThanks, Alice")
    assert [c.name for c in block.commands] == ["status"]
    assert block.errors == ()
    assert block.body == "We are on it.\n#1 priority for us is the outage.\nThanks, Alice"


@pytest.mark.parametrize("text", ["#1 priority for us is uptime", "# Summary\nAll good", "C# is fine"])
def test_hash_prose_at_the_top_is_body_not_error(text):
    block = parse_commands(text)
    assert (block.commands, block.errors, block.body) == ((), (), text)


def test_note_makes_the_rest_an_internal_note():
    block = parse_commands("#note\nCustomer is on the old firmware, do not tell them yet.")
    assert block.is_note
    assert block.commands[0].is_note
    assert block.body == "Customer is on the old firmware, do not tell them yet."


def test_solution_makes_the_rest_the_solution_text():
    block = parse_commands("#solution\n#kb vpn\nRestart the VPN client.")
    assert block.is_solution and not block.is_note
    assert block.get("kb").args == ("vpn",)
    assert block.body == "Restart the VPN client."


# Issue 18 item 10: commands may stand above or below the text, and no command line is ever body.
AROUND_THE_TEXT = {
    "below_the_solution": (
        "#solution\nRestart the VPN client.\n#status resolved",
        [("solution", ()), ("status", ("resolved",))], "Restart the VPN client."),
    "below_the_solution_after_a_blank_line": (
        "#solution\nRestart the VPN client.\n\n#kb vpn\n#time 15m\n",
        [("solution", ()), ("kb", ("vpn",)), ("time", ("15m",))], "Restart the VPN client."),
    "solution_below_its_text": (
        "Restart the VPN client.\n\n#solution",
        [("solution", ())], "Restart the VPN client."),
    "commands_at_the_bottom_of_a_plain_answer": (
        "Hello Li,\nplease restart nginx.\n\nAlice\n\n#status pending\n#time 30m",
        [("status", ("pending",)), ("time", ("30m",))], "Hello Li,\nplease restart nginx.\n\nAlice"),
    "blank_lines_inside_the_leading_block": (
        "#status open\n\n#time 1h\n\nHello Li,",
        [("status", ("open",)), ("time", ("1h",))], "Hello Li,"),
    "top_and_bottom": (
        "#priority P2\nWe are on it.\n#time 10m",
        [("priority", ("P2",)), ("time", ("10m",))], "We are on it."),
    "closing_hashtag_is_prose": (
        "Fixed in 4.2.\n#TeamSupport", [], "Fixed in 4.2.\n#TeamSupport"),
}


@pytest.mark.parametrize("text, commands, body", AROUND_THE_TEXT.values(), ids=AROUND_THE_TEXT.keys())
def test_commands_above_or_below_the_text(text, commands, body):
    block = parse_commands(text)
    assert block.errors == ()
    assert [(c.name, c.args) for c in block.commands] == commands
    assert block.body == body
    assert not any(line.strip().startswith("#" + name) for line in block.body.splitlines() for name, _ in commands)


@pytest.mark.parametrize("text, line", [
    ("Hello,\n#status resolved\nthe fix is live.", 'line 2: "#status resolved" is between lines of text'),
    ("#solution\nStep one.\n#kb vpn\nStep two.", 'line 3: "#kb vpn" is between lines of text'),
    ("Fixed.\n#stauts resolved", 'line 2: "#stauts resolved": unknown command #stauts (did you mean #status?)'),
])
def test_a_command_line_that_would_be_sent_is_an_error(text, line):
    assert any(e.startswith(line) for e in parse_commands(text).errors)


# Issue 18 item 11: the note's or the solution's text may start on the command's own line.
@pytest.mark.parametrize("text, name, body", [
    ("#note customer is on the 2019 firmware", "note", "customer is on the 2019 firmware"),
    ("#note Customer is on old firmware\n#time 5m\nDo not tell them yet.", "note",
     "Customer is on old firmware\n\nDo not tell them yet."),
    ("#solution Restart the VPN client.\n#kb vpn", "solution", "Restart the VPN client."),
    ("#SOLUTION   Raise proxy_read_timeout.", "solution", "Raise proxy_read_timeout."),
])
def test_note_and_solution_take_text_on_their_own_line(text, name, body):
    block = parse_commands(text)
    assert block.errors == ()
    assert block.get(name) is not None and block.get(name).args == ()
    assert block.body == body


def test_reply_without_commands_is_all_body():
    block = parse_commands("Hello,\n\nplease try again.")
    assert (block.commands, block.errors, block.body) == ((), (), "Hello,\n\nplease try again.")


def test_commands_in_a_real_outlook_reply_after_split_reply():
    text = ("#status resolved\r\n#time 45m\r\n\r\nFixed in 4.2.\r\n\r\n"
            "________________________________\r\nFrom: Customer <c@example.com>\r\n"
            "Sent: Thursday\r\nTo: Support\r\nSubject: VPN\r\n\r\n#status open is what I want\r\n")
    block = parse_commands(split_reply(text).reply_text)
    assert [(c.name, c.args) for c in block.commands] == [("status", ("resolved",)), ("time", ("45m",))]
    assert block.body == "Fixed in 4.2."


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=30), st.sampled_from(
    ["#status open", "#time 1h", "#cc add a@b.c", "#", "#x", "#time " + "9" * 40, "#assign " + "a" * 50]
)), max_size=12).map("\n".join))
def test_parse_commands_never_raises(text):
    block = parse_commands(text)
    assert isinstance(block.body, str)
    for command in block.commands:
        assert command.name in VALID_COMMANDS
