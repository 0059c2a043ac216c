"""`#` lines in a mail that is not an authorised engineer reply: kept as text, never run.

What is ignored is recorded on the ticket, and an engineer who wrote the lines is told
why (gateway/handlers/engineer.py for a reply; gateway/desk/notify.py for a new ticket).
"""

from __future__ import annotations

import logging

from gateway import outbox
from gateway.desk.automatic import may_send_automatic
from parsers.commands import parse_commands
from storage.history import record_event
from storage.models import Ticket

log = logging.getLogger("supportgw.engineer")


def has_command_lines(text: str, email=None) -> bool:
    """Command lines anywhere a command may stand (top or bottom, parsers.commands). `email`: the
    parsed mail whose new text `text` may be; its lines are then read as it parsed them once
    (`ParsedEmail.commands`, in the parse pool for mail parsed ahead) rather than again."""
    block = email.commands if email is not None and text == email.reply_text else parse_commands(text or "")
    return bool(block.commands or block.errors)


def log_ignored(session, ticket: Ticket, sender: str, reply_text: str, why: str, now) -> None:
    """Record that `#` lines from someone not authorised were kept as plain text."""
    block = parse_commands(reply_text)
    if not (block.commands or block.errors):
        return
    log.info("ignored # commands from %s on %s (%s)", sender, ticket.ref, why)
    record_event(session, ticket, "commands_ignored", now,
                 f"# commands from {sender} ignored: {why}; kept as message text",
                 actor=sender, lines=[c.raw_line for c in block.commands], reason=why)


def log_ignored_on_new_ticket(app, session, ticket: Ticket, message, email=None) -> None:
    """A new ticket can't come from an authorised engineer reply: its `#` lines are text
    (and an engineer who wrote them is told so). `email`: the parsed mail stored as `message`."""
    text = message.reply_text or ""
    if has_command_lines(text, email):
        log_ignored(session, ticket, message.sender_email, text, "not an authorised engineer reply", app.now())
        if message.sender_email in app.engineer_addresses():
            tell_unverified(app, session, ticket, message.sender_email, original=text, new_ticket=True)


def tell_unverified(app, session, ticket: Ticket, engineer: str, *, original: str, commands: bool = True,
                    new_ticket: bool = False, note: bool = False, in_reply_to: str | None = None) -> None:
    if not may_send_automatic(app, session, engineer, "command_unverified"):
        record_event(session, ticket, "auto_suppressed", app.now(),
                     f"rate limit: no command_unverified to {engineer}", reason="rate limit")
        return
    rendered = app.templates.render("command_unverified", ticket.language, ticket=ticket, original=original,
                                    commands=commands, new_ticket=new_ticket, note=note)
    outbox.mail_engineer(app, session, ticket, "command_unverified", rendered, to=engineer, note=note,
                         in_reply_to=in_reply_to, automatic="auto-generated")
