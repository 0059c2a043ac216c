"""Pipeline handler: an engineer's reply to a notification.

Owns the authorisation of engineer mail (DOMAIN.md §9, invariant 5): a reply
is the engineer's only when the sender is a configured engineer AND it came
through the reply address signed for that engineer (or, with
`workflow.trust_dmarc`, our receiving server's Authentication-Results, the one
named by `[spam] authserv_id`, shows
DMARC/DKIM pass for the engineer's domain). Anything else from an engineer
address falls through to the customer handler as ordinary text; `#` lines
from anyone not authorised are never run, and the attempt is logged.

An authorised reply: its `#` command lines (parsers.commands) are checked
first; any problem means an error mail to the engineer and nothing applied,
nothing relayed. `#help` is answered with the command list and nothing else
of that reply is applied or relayed.
Otherwise the commands are applied, the rest of the text (quotes, signature
and command lines removed) is relayed to the customer (gateway.desk.relay), or
kept as an internal note with `#note` or when it answers a note's
notification (through the note's reply address, or In-Reply-To one).
An answer written without having seen a colleague's fresh one is held
(gateway.desk.collisions) until `#send`/`#drop`; `#send-at`/`#send-in` relay it
later (gateway.desk.send_later).
"""

from __future__ import annotations

import logging

from gateway.desk import collisions, notify, send_later, ticket_ops
from gateway.handlers import engineer_commands
from gateway import large_mail, outbox
from gateway.desk.automatic import may_send_automatic
from gateway.desk.relay import relay_to_customer
from gateway.desk.threads import Match
from gateway.desk.unverified import has_command_lines, log_ignored, tell_unverified
from parsers import authresults
from parsers.commands import parse_commands
from storage.history import record_event
from storage.models import Message, SpoolEntry, ThreadId, Ticket
from storage.queries import messages, outbox as outbox_rows, threads
from storage.rows import append

NAME = "engineer"  # the name the pipeline logs (handler=) and gateway/handlers/registry.py lists

log = logging.getLogger("supportgw.engineer")



def authentication_passed(email, sender: str, authserv_id: str) -> bool:
    """DMARC pass for the sender's domain, or a DKIM pass signed by it, in our receiving
    server's Authentication-Results.

    Only the topmost header carrying our own authserv-id ([spam] authserv_id) counts,
    read by parsers.authresults as the suspended area reads it: a header with another id
    came with the message (anyone can write one into their own mail, above or below ours)
    or from a server that is not ours. No authserv-id configured: nothing is trusted
    (the configuration refuses workflow.trust_dmarc without one).
    """
    auth = authresults.read(email.headers, authserv_id)
    if auth is None:
        return False
    domain = sender.rpartition("@")[2].lower()
    if auth.dmarc == "pass" and auth.header_from == domain:
        return True
    return domain in auth.dkim_pass_domains


def authorised(ib, match: Match, sender: str) -> bool:
    if match.ticket is None or sender not in ib.app.engineer_addresses():
        return False
    if match.token_valid:
        return True
    return bool(ib.app.config.workflow.trust_dmarc
                and authentication_passed(ib.email, sender, ib.app.config.spam.authserv_id))


def handle(ib) -> str | None:
    e = ib.email
    sender = e.sender.email
    is_engineer = sender in ib.app.engineer_addresses()
    looks_like_commands = has_command_lines(e.reply_text, e)
    if not is_engineer and not looks_like_commands:
        return None
    match = ib.find_ticket()
    if not authorised(ib, match, sender):
        if is_engineer and match.ticket is None and match.stranger_ticket is None and _only_help(e):
            return _help_without_ticket(ib, sender)
        _log_ignored_commands(ib, match, looks_like_commands, is_engineer)
        if is_engineer and match.ticket is not None and match.sender_role not in ("requester", "cc") \
                and not ib.email.automatic:
            # staff on the ticket (not an engineer who is its customer): never a customer's follow-up
            ib.match = match
            return refuse_unverified(ib, match.ticket, sender, commands=looks_like_commands)
        if is_engineer and looks_like_commands and match.ticket is not None and not ib.email.automatic \
                and not _seen(ib.session, match.ticket, ib.email.message_id):
            # an engineer who is this ticket's customer: their text is a follow-up, but they
            # still learn why their commands did not run
            tell_unverified(ib.app, ib.session, match.ticket, sender, original=ib.email.reply_text)
        return None  # the customer handler treats it as an ordinary message
    ib.match = match
    return handle_authorised(ib, match.ticket, sender)


def _log_ignored_commands(ib, match: Match, looks_like_commands: bool, is_engineer: bool) -> None:
    ticket = match.ticket or match.stranger_ticket
    if not looks_like_commands or ticket is None:
        return  # a brand-new ticket is logged by log_ignored_on_new_ticket once it exists
    why = "an engineer address without a valid signed reply address" if is_engineer else "not an engineer"
    log_ignored(ib.session, ticket, ib.email.sender.email, ib.email.reply_text, why, ib.now)


def refuse_unverified(ib, ticket: Ticket, engineer: str, *, commands: bool) -> str:
    """An engineer's mail on a ticket that did not come through their signed reply address.

    Nothing is run and nothing is relayed; the mail is kept on the ticket as an internal
    message (never a customer's follow-up: it reopens nothing, answers no survey and
    pages nobody with "<customer> wrote again"), and the engineer is told why, with a
    reply address that works. The mail may be forged: the answer goes to the engineer's
    configured address, rate-limited like any automatic mail."""
    s, e = ib.session, ib.email
    if _seen(s, ticket, e.message_id):
        return "duplicate"
    append(s, ThreadId, message_id=e.message_id, ticket_id=ticket.id, outbound=False)
    _store_internal(ib, ticket, kind="unverified", text=e.reply_text or e.text)
    tell_unverified(ib.app, s, ticket, engineer, original=e.reply_text or e.text, commands=commands,
                    note=answers_a_note(s, e), in_reply_to=e.message_id)
    record_event(s, ticket, "engineer_unverified", ib.now, f"mail from {engineer} without a reply address "
                 "signed for them: kept internal, not relayed, nothing run; told them why", actor=engineer)
    return "engineer_unverified"


def _seen(session, ticket: Ticket, message_id: str) -> bool:
    return threads.known(session, message_id, ticket_id=ticket.id)


def handle_authorised(ib, ticket: Ticket, engineer: str, *, replay: bool = False) -> str:
    """`replay`: a held answer its author sent anyway (#send): already threaded, never held again."""
    app, s, e, now = ib.app, ib.session, ib.email, ib.now
    if not replay:
        if _seen(s, ticket, e.message_id):
            return "duplicate"  # the same reply reached us twice (IMAP and SMTP): act once
        append(s, ThreadId, message_id=e.message_id, ticket_id=ticket.id, outbound=False)
    if e.automatic:
        # an out-of-office answer to a notification must never reach the customer
        _store_internal(ib, ticket, kind="automatic", text=e.text)
        record_event(s, ticket, "engineer_automatic", now, f"automatic mail from {engineer} kept internal: "
                     f"{e.automatic_reason}", actor=engineer)
        return "engineer_automatic"
    block = e.commands
    if block.get("help"):
        _command_help(ib, ticket, engineer, block)
        return "command_help"
    # An answer to a note's notification is a note too, whatever it says: the colleague
    # is talking to colleagues ("(not sent to the customer)"), not to the customer.
    via_note = bool(ib.match and ib.match.note) or answers_a_note(s, e)
    internal = block.is_note or via_note
    problems = list(block.errors) + engineer_commands.check(app, s, ticket, block, actor=engineer,
                                                            internal=via_note, in_reply_to=e.in_reply_to)
    if problems:
        # the corrected reply to the error mail answers the note too, so it stays internal
        _command_error(ib, ticket, engineer, problems, internal=via_note)
        return "command_error"
    if block.get("send") or block.get("drop"):
        return _release_held(ib, ticket, engineer, send=bool(block.get("send")))
    if not (replay or internal or block.is_solution) and block.body:
        first = collisions.first_answer(app, s, ticket, engineer, e.in_reply_to)
        if first is not None:  # a colleague answered meanwhile: nothing of this one runs until #send
            held = _store_internal(ib, ticket, kind="held_answer", text=block.body)
            collisions.hold(app, s, ticket, engineer=engineer, email=e, held=held, first=first)
            return "answer_held"
    for c in block.commands:
        record_event(s, ticket, "command", now, c.raw_line, actor=engineer, name=c.name, args=list(c.args))
    engineer_commands.apply_simple(app, s, ticket, block, actor=engineer)
    outcome = "commands" if block.commands else "ignored"
    if internal:
        if block.body:
            note = _store_internal(ib, ticket, kind="note", text=block.body)
            notify.on_note(app, s, ticket, note, actor=engineer)
        outcome = "note"
    elif block.body and not block.is_solution:
        due = send_later.when(app, block)
        answer = relay_to_customer(app, s, ticket, engineer=engineer, body=block.body, attachments=e.attachments,
                                   spool_id=ib.entry.id, send_at=due, staged=ib.staged)
        own_status = bool(block.get("status") or engineer_commands.closure_status(block))
        if due is not None:  # the status an answer sets waits for it to go (send_later.on_sent)
            send_later.record(app, s, ticket, engineer=engineer, message_id=answer.message_id, due=due,
                              then_status="" if own_status else app.config.workflow.status_after_reply)
        elif not own_status:
            ticket_ops.set_status(app, s, ticket, app.config.workflow.status_after_reply, actor=engineer,
                                  why="engineer replied")
        outcome = "relayed"
    engineer_commands.apply_workflow(app, s, ticket, block, actor=engineer, body=block.body,
                                     in_reply_to=e.in_reply_to)
    return outcome


def _release_held(ib, ticket: Ticket, engineer: str, *, send: bool) -> str:
    """#send or #drop, answering the mail that said the engineer's answer was held."""
    s = ib.session
    held, why = collisions.held_answer(s, ticket, engineer, ib.email.in_reply_to)
    if why:
        _command_error(ib, ticket, engineer, [why])
        return "command_error"
    kind = "answer_sent" if send else "answer_dropped"
    record_event(s, ticket, kind, ib.now, f"held answer by {engineer} " + ("sent anyway" if send else
                 "dropped; it stays in the history"), actor=engineer, held=held.id)
    if not send:
        return kind
    entry = s.get(SpoolEntry, held.spool_id)
    again = type(ib)(app=ib.app, session=s, entry=entry, email=large_mail.parse_entry(ib.app, entry),
                     recipients=ib.recipients)
    return handle_authorised(again, ticket, engineer, replay=True)


def answers_a_note(session, email) -> bool:
    """The mail answers one of our internal-note notifications (its In-Reply-To is one).

    The note's reply address already says so; this also holds when the answer reached
    us another way (trust_dmarc and the plain support address, a client that dropped
    the Reply-To)."""
    ids = [i for i in email.in_reply_to if i]
    return bool(ids) and outbox_rows.any_note_mail(session, ids)


def _store_internal(ib, ticket: Ticket, *, kind: str, text: str) -> Message:
    msg = messages.received(ib.email, ticket_id=ticket.id, spool_id=ib.entry.id, kind=kind, created_at=ib.now,
                            internal=True, text=text, reply_text=text, html="")
    ib.session.add(msg)
    ib.session.flush()
    return msg


def _command_error(ib, ticket: Ticket, engineer: str, problems: list[str], *, internal: bool = False) -> None:
    app, s, e = ib.app, ib.session, ib.email
    record_event(s, ticket, "command_rejected", ib.now, "; ".join(problems), actor=engineer, errors=problems)
    rendered = app.templates.render("command_error", ticket.language, ticket=ticket, errors=problems,
                                    original=e.reply_text or e.text)
    _answer_engineer(ib, ticket, engineer, "command_error", rendered, note=internal)


def _command_help(ib, ticket: Ticket, engineer: str, block) -> None:
    """#help: the command list and examples, in the language the engineer wrote in. A reply
    asking for help is a question to us: the rest of it is neither applied nor sent."""
    app, s, e = ib.app, ib.session, ib.email
    held = bool(block.body or block.errors or [c for c in block.commands if c.name != "help"])
    record_event(s, ticket, "command_help", ib.now, f"#help answered for {engineer}"
                 + ("; the rest of the reply was not applied or sent" if held else ""), actor=engineer)
    rendered = app.templates.render("command_help", _language_of(app, e), ticket=ticket, held=held,
                                    colleague=notify.colleague(app, ticket, engineer),
                                    intake=outbox.intake_address(app, engineer),
                                    ack_forwarded=app.config.workflow.ack_forwarded,
                                    original=e.reply_text or e.text)
    _answer_engineer(ib, ticket, engineer, "command_help", rendered)


def _language_of(app, e) -> str:
    """The language the engineer wrote in, unless gateway.language forces one."""
    return app.config.language_for(e.language)


def _only_help(e) -> bool:
    """A new mail that says "#help" and nothing else (in its text or as its subject)."""
    block = parse_commands(e.reply_text or e.subject)
    return [c.name for c in block.commands] == ["help"] and not block.body and not block.errors


def _help_without_ticket(ib, engineer: str) -> str:
    """An engineer's first "#help", written to the support address rather than on a ticket.

    Anyone can put an engineer's address in From, so this proves nothing about the
    sender; the list is public knowledge and goes to the engineer's own address only,
    counted against the automatic-mail rate limit like any automatic answer."""
    app, s, e = ib.app, ib.session, ib.email
    if not may_send_automatic(app, s, engineer, "command_help", answering=e):
        return "help_suppressed"
    eng = app.rules.current.engineer_by_email(engineer)
    mates = [a for a in notify.team_engineers(app, eng.team if eng else "") if a != engineer]
    rendered = app.templates.render("command_help", _language_of(app, e), ticket=None, held=False,
                                    colleague=mates[0] if mates else "<email>", original="",
                                    intake=outbox.intake_address(app, engineer),
                                    ack_forwarded=app.config.workflow.ack_forwarded)
    _answer_engineer(ib, None, engineer, "command_help", rendered, automatic="auto-replied")
    return "command_help"


def _answer_engineer(ib, ticket: Ticket | None, engineer: str, kind: str, rendered, *,
                     automatic: str | None = None, note: bool = False) -> None:
    """The gateway's own answer to an engineer's reply (a command error, #help): to that
    engineer only, threaded under their reply, with their signed Reply-To (on a ticket);
    `note`: the reply answered a note, so the answer to this one stays a note too."""
    e = ib.email
    outbox.mail_engineer(ib.app, ib.session, ticket, kind, rendered, to=engineer, note=note, automatic=automatic,
                         in_reply_to=e.message_id, references=list(e.references) + [e.message_id],
                         extra_headers=notify.AUTOMATIC_HEADERS)
