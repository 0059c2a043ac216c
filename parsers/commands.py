"""Commands by mail: the `#` lines of an engineer's reply.

`parse_commands(reply_text)` returns the commands, the body without them, and
one error per bad line. It expects the reply text alone (call
`parsers.quotes.split_reply` first) and only *parses*: whether the sender may
run a command is decided elsewhere. The grammar (README "Commands by mail"):

- Commands go on the first lines of the reply (the leading block: lines
  starting with `#` and a letter, blank lines between them allowed), or on its
  last lines (the trailing block: known commands only, blank lines allowed),
  or both. Every line of either block is a command or an error; neither block
  is ever part of the body, so no command line reaches a customer.
- A leading line like `#frobnicate` is an error (a typo must not reach the
  customer); at the bottom, `#word` is a command line when `word` is a command
  or close to one (`#stauts` is an error), else prose ("#TeamSupport").
- A known command on a line between two lines of text is an error: it would
  be neither applied nor fit to send ("put it on the first or last lines").
- `#note text` and `#solution text` may carry the start of their text on
  their own line; the body (that text, then the reply's other text) is the
  internal note or the solution, wherever `#note`/`#solution` stands.
- `#1 priority ...` or a markdown `# Heading` is prose anywhere.
"""

from __future__ import annotations

import difflib
import re
from datetime import datetime
from dataclasses import dataclass

STATUSES = ("pending", "open", "resolved", "closed")
PRIORITIES = ("P1", "P2", "P3", "P4")

# name -> its syntax, shown in error emails (what each does is said in templates/*/_commands.j2)
VALID_COMMANDS: dict[str, str] = {
    "status": "#status pending|open|resolved|closed",
    "close": "#close",
    "priority": "#priority P1|P2|P3|P4",
    "assign": "#assign <email>",
    "note": "#note [text]",
    "time": "#time <duration>",
    "escalate": "#escalate",
    "handover": "#handover",
    "cannot": "#cannot",
    "cc": "#cc add|remove <email>",
    "solution": "#solution [text]",
    "kb": "#kb [tags...]",
    "help": "#help",
    "release": "#release",
    "merge": "#merge <ticket ref>",
    "split": "#split",
    "send": "#send",
    "drop": "#drop",
    "send-at": "#send-at <YYYY-MM-DD HH:MM>",
    "send-in": "#send-in <duration>",
}

_NAMES = ", ".join(f"#{name}" for name in VALID_COMMANDS)
_COMMAND_START = re.compile(r"^\s*#[A-Za-z]")
_COMMAND_LINE = re.compile(r"^#([A-Za-z][\w-]*)(?:\s+(.*))?$")
_REF = re.compile(r"^\[?([A-Za-z][A-Za-z0-9]{0,9}-\d{1,12})\]?$")
_WHEN = re.compile(r"^\d{4}-\d{2}-\d{2} \d{1,2}:\d{2}$")
_EMAIL = re.compile(r"^[^@\s<>]+@(?:[^@\s<>.]+\.)+[^@\s<>.]+$")
_DURATION = re.compile(
    r"^(?:(?P<hours>\d+(?:\.\d+)?)\s*h(?:ours?|rs?)?)?\s*(?:(?P<minutes>\d+)\s*m(?:in(?:utes?|s)?)?)?$",
    re.IGNORECASE,
)
_NO_ARGS = ("close", "escalate", "handover", "cannot", "help", "release", "split", "send", "drop")
_TEXT_ARG = ("note", "solution")  # the rest of their line is the start of their text
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
    body: str  # the reply without the command lines; text on a #note/#solution line comes first
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
    """Split the command lines off a reply. Never raises; bad lines become errors."""
    lines = (reply_text or "").splitlines()
    # the leading block: "#1 priority ..." or a markdown "# Heading" is prose and ends it
    top = 0
    while top < len(lines) and (not lines[top].strip() or _COMMAND_START.match(lines[top])):
        top += 1
    # the trailing block: only what is (nearly) a command name, so a closing "#TeamSupport" stays prose
    bottom = len(lines)
    while bottom > top and (not lines[bottom - 1].strip() or _looks_like_command(lines[bottom - 1])):
        bottom -= 1
    commands, errors, texts = [], [], []
    for k in [*range(top), *range(bottom, len(lines))]:
        raw = lines[k].strip()
        if not raw:
            continue
        command, error, text = _parse_line(raw)
        if command:
            commands.append(command)
        if text:
            texts.append(text)
        if error:
            errors.append(f"line {k + 1}: {error}")
    for k in range(top, bottom):
        raw = lines[k].strip()
        if _known_command(raw):
            errors.append(f'line {k + 1}: "{raw}" is between lines of text; put commands on the first '
                          "or the last lines of your reply")
    body = "\n".join(lines[top:bottom]).strip()
    body = "\n\n".join(texts + ([body] if body else []))
    return CommandBlock(tuple(commands), body, tuple(errors))


def _command_name(line: str) -> str | None:
    match = _COMMAND_LINE.match(line.strip())
    return match.group(1).lower() if match else None


def _known_command(line: str) -> bool:
    return _command_name(line) in VALID_COMMANDS


def _looks_like_command(line: str) -> bool:
    """A known command, or a near miss of one ("#stauts"): a line the writer meant as a command."""
    name = _command_name(line)
    if name is None:
        return False
    return name in VALID_COMMANDS or bool(difflib.get_close_matches(name, VALID_COMMANDS, n=1, cutoff=0.75))


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


def _parse_line(raw: str) -> tuple[Command | None, str | None, str]:
    """(command, error, the note/solution text on the command's own line)."""
    match = _COMMAND_LINE.match(raw)
    if not match:  # "#status:open" and the like
        return None, f'"{raw}" is not a command line; valid commands: {_NAMES}', ""
    name = match.group(1).lower()
    if name not in VALID_COMMANDS:
        guess = difflib.get_close_matches(name, VALID_COMMANDS, n=1, cutoff=0.75)
        hint = f" (did you mean #{guess[0]}?)" if guess else ""
        return None, f'"{raw}": unknown command #{name}{hint}; valid commands: {_NAMES}', ""
    if name in _TEXT_ARG:
        return Command(name, (), raw), None, (match.group(2) or "").strip()
    args = tuple((match.group(2) or "").split())
    problem, minutes = _check_args(name, args)
    if problem:
        return None, f'"{raw}": {problem}; valid form: {VALID_COMMANDS[name]}', ""
    if name == "status":
        args = (args[0].lower(),)
    elif name == "priority":
        args = (args[0].upper(),)
    elif name == "merge":
        args = (_REF.match(args[0]).group(1).upper(),)
    elif name == "send-at":
        args = (" ".join(args).replace("T", " "),)
    elif name in ("assign", "cc"):
        args = args[:-1] + (args[-1].strip("<>").lower(),)
        if name == "cc":
            args = (args[0].lower(), args[1])
    return Command(name, args, raw, minutes), None, ""


def _valid_when(when: str) -> bool:
    try:
        datetime.strptime(when, "%Y-%m-%d %H:%M")
    except ValueError:
        return False
    return True


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
    if name == "merge":
        ok = len(args) == 1 and _REF.match(args[0])
        return (None if ok else "#merge needs the reference of the ticket to merge into, like TS-000123"), None
    if name == "send-at":
        when = " ".join(args).replace("T", " ")
        ok = bool(_WHEN.match(when)) and _valid_when(when)
        return (None if ok else "#send-at needs a date and time like 2026-12-02 09:00"), None
    if name == "send-in":
        minutes = parse_duration(" ".join(args)) if args else None
        if minutes is None or not 0 < minutes <= _MAX_MINUTES:
            return "#send-in needs a duration between 1 minute and a week, like 2h or 45m", None
        return None, minutes
    if name == "time":
        minutes = parse_duration(" ".join(args)) if args else None
        if minutes is None or not 0 < minutes <= _MAX_MINUTES:
            return "#time needs a duration between 1 minute and a week", None
        return None, minutes
    return None, None
