"""Commands by mail: the `#` lines at the top of an engineer's reply.

`parse_commands(reply_text)` reads the command block (consecutive lines
starting with `#` at the top, blank lines before it allowed) and returns the
commands, the body without those lines, and one error per bad line. It expects
the reply text alone (call `parsers.quotes.split_reply` first) and only
*parses*: whether the sender may run a command is decided elsewhere.

A `#` line further down the body is prose ("#1 priority for us is ..."), never
a command. `#note` and `#solution` take the rest of the message as their text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

STATUSES = ("pending", "open", "resolved", "closed")
PRIORITIES = ("P1", "P2", "P3", "P4")

# name -> the forms shown in an error email
VALID_COMMANDS: dict[str, str] = {
    "status": "#status pending|open|resolved|closed",
    "close": "#close",
    "priority": "#priority P1|P2|P3|P4",
    "assign": "#assign <email>",
    "note": "#note   (the rest of the message is an internal note)",
    "time": "#time <duration>   (45m, 1h30m, 1.5h, 2h, 90 = minutes)",
    "escalate": "#escalate",
    "handover": "#handover",
    "cannot": "#cannot",
    "cc": "#cc add|remove <email>",
    "solution": "#solution   (the rest of the message is the solution)",
    "kb": "#kb [tags...]",
    "release": "#release   (a held ticket: acknowledge it and handle it as usual)",
}

HELP_TEXT = "Commands go on the first lines of your reply, one per line:\n" + "\n".join(
    f"  {form}" for form in VALID_COMMANDS.values()
)

_NAMES = ", ".join(f"#{name}" for name in VALID_COMMANDS)
_COMMAND_START = re.compile(r"^\s*#[A-Za-z]")
_COMMAND_LINE = re.compile(r"^#([A-Za-z][\w-]*)(?:\s+(.*))?$")
_EMAIL = re.compile(r"^[^@\s<>]+@(?:[^@\s<>.]+\.)+[^@\s<>.]+$")
_DURATION = re.compile(
    r"^(?:(?P<hours>\d+(?:\.\d+)?)\s*h(?:ours?|rs?)?)?\s*(?:(?P<minutes>\d+)\s*m(?:in(?:utes?|s)?)?)?$",
    re.IGNORECASE,
)
_NO_ARGS = ("close", "escalate", "handover", "cannot", "note", "solution", "release")
_MAX_MINUTES = 24 * 60 * 7  # a week in one entry is a typo, not a time log


@dataclass(frozen=True)
class Command:
    name: str  # lower-case, without "#"
    args: tuple[str, ...]
    raw_line: str
    minutes: int | None = None  # for #time only

    @property
    def is_note(self) -> bool:
        return self.name == "note"


@dataclass(frozen=True)
class CommandBlock:
    commands: tuple[Command, ...]
    body: str  # the reply without the command lines (the note/solution text when one was given)
    errors: tuple[str, ...]

    @property
    def is_note(self) -> bool:
        """The whole body is an internal note: it must never reach the customer."""
        return any(c.is_note for c in self.commands)

    @property
    def is_solution(self) -> bool:
        return any(c.name == "solution" for c in self.commands)

    def get(self, name: str) -> Command | None:
        return next((c for c in self.commands if c.name == name), None)


def parse_commands(reply_text: str) -> CommandBlock:
    """Split the leading `#` lines off a reply. Never raises; bad lines become errors."""
    lines = (reply_text or "").splitlines()
    k = 0
    while k < len(lines) and not lines[k].strip():
        k += 1
    commands, errors = [], []
    # "#1 priority ..." or a markdown "# Heading" is prose: it ends the block.
    while k < len(lines) and _COMMAND_START.match(lines[k]):
        raw = lines[k].strip()
        command, error = _parse_line(raw)
        if command:
            commands.append(command)
        if error:
            errors.append(f"line {k + 1}: {error}")
        k += 1
    body = "\n".join(lines[k:]).strip()
    return CommandBlock(tuple(commands), body, tuple(errors))


def parse_duration(text: str) -> int | None:
    """Minutes in "45m", "1h30m", "1.5h", "2h", "90" (bare number = minutes); None if unreadable."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    match = _DURATION.match(text)
    if not match or not (match.group("hours") or match.group("minutes")):
        return None
    hours = float(match.group("hours") or 0)
    return round(hours * 60) + int(match.group("minutes") or 0)


def _parse_line(raw: str) -> tuple[Command | None, str | None]:
    match = _COMMAND_LINE.match(raw)
    if not match:  # "#status:open" and the like
        return None, f'"{raw}" is not a command line; valid commands: {_NAMES}'
    name = match.group(1).lower()
    args = tuple((match.group(2) or "").split())
    if name not in VALID_COMMANDS:
        return None, f'"{raw}": unknown command #{name}; valid commands: {_NAMES}'
    problem, minutes = _check_args(name, args)
    if problem:
        return None, f'"{raw}": {problem}; valid form: {VALID_COMMANDS[name]}'
    if name == "status":
        args = (args[0].lower(),)
    elif name == "priority":
        args = (args[0].upper(),)
    elif name in ("assign", "cc"):
        args = args[:-1] + (args[-1].strip("<>").lower(),)
        if name == "cc":
            args = (args[0].lower(), args[1])
    return Command(name, args, raw, minutes), None


def _check_args(name: str, args: tuple[str, ...]) -> tuple[str | None, int | None]:
    if name in _NO_ARGS:
        return (f"#{name} takes no arguments" if args else None), None
    if name == "kb":
        return None, None
    if name == "status":
        ok = len(args) == 1 and args[0].lower() in STATUSES
        return (None if ok else "status must be one of " + ", ".join(STATUSES)), None
    if name == "priority":
        ok = len(args) == 1 and args[0].upper() in PRIORITIES
        return (None if ok else "priority must be one of " + ", ".join(PRIORITIES)), None
    if name == "assign":
        ok = len(args) == 1 and _EMAIL.match(args[0].strip("<>"))
        return (None if ok else "#assign needs one email address"), None
    if name == "cc":
        ok = len(args) == 2 and args[0].lower() in ("add", "remove") and _EMAIL.match(args[1].strip("<>"))
        return (None if ok else "#cc needs add or remove and one email address"), None
    if name == "time":
        minutes = parse_duration(" ".join(args)) if args else None
        if minutes is None or not 0 < minutes <= _MAX_MINUTES:
            return "#time needs a duration between 1 minute and a week", None
        return None, minutes
    return None, None
