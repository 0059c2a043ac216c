"""Pipeline handler: a customer's mail that an engineer forwards into support.

A customer often writes to an engineer directly; the engineer forwards it, inline
("Forwarded message" blocks of every common client, parsers.forwards) or as an attached
`message/rfc822`, to the support address. The ticket is then the customer's: they are its
requester (name, address, date and subject read from the forwarded header block, the
original's attachments kept), the engineer is recorded as who brought it in (a `forwarded_in`
event and the forward itself, kept as an internal message) and is its owner unless the rules
give it one, and the customer is acknowledged only with `workflow.ack_forwarded`.

Only a sender proven to be that engineer is treated so: the mail came to their own intake
address (`support+f…@`, signed for them, `Signer.forward_token`; `#help` tells them theirs),
or with `workflow.trust_dmarc` our server's Authentication-Results shows DMARC/DKIM pass for
their domain. Anyone else's forward, an engineer's unproven one included, is passed on and
becomes an ordinary ticket from its sender.
"""

from __future__ import annotations

import dataclasses
import hashlib
from zoneinfo import ZoneInfo


from gateway.handlers.engineer import authentication_passed
from gateway.desk.inbound import Inbound, create_ticket, store_message
from gateway.tokens import split_plus_address
from parsers.forwards import Forwarded, forwarded_in
from parsers.language import detect_language
from parsers.message import parse_email
from parsers.quotes import split_reply
from storage.history import record_event
from storage.queries import threads

NAME = "forwards"  # the name the pipeline logs (handler=) and gateway/handlers/registry.py lists

_PREFIXES = ("fwd:", "fw:", "tr:", "wg:", "转发:", "转发：", "轉寄:", "转发 ", "fwd：", "fw：")


def proven(ib, sender: str) -> str:
    """How the sender is proven to be the engineer ("token", "dmarc"), or ""."""
    for rcpt in ib.recipients:
        parts = split_plus_address(rcpt)
        if parts and ib.app.is_own_address(rcpt) and ib.app.signer.check_forward_token(parts[1], sender):
            return "token"
    if ib.app.config.workflow.trust_dmarc and authentication_passed(ib.email, sender, ib.app.config.spam.authserv_id):
        return "dmarc"
    return ""


def handle(ib) -> str | None:
    app, e = ib.app, ib.email
    sender = e.sender.email
    if e.automatic or sender not in app.engineer_addresses():
        return None
    how = proven(ib, sender)
    if not how:
        return None
    if how == "dmarc" and ib.find_ticket().ticket is not None:
        return None  # on a ticket's thread: the engineer handler's to judge
    fwd = forwarded_in(e, lambda raw: parse_email(raw, own_addresses=app.own_addresses),
                       assume=ZoneInfo(app.config.report.timezone))
    if fwd is None or not fwd.sender.email or app.is_ours(fwd.sender.email):
        return None  # not a customer's mail: an engineer's own mail is handled as any other
    if threads.known(ib.session, e.message_id):
        return "duplicate"
    return bring_in(ib, fwd, engineer=sender, how=how)


def bring_in(ib, fwd: Forwarded, *, engineer: str, how: str) -> str:
    app, s, e = ib.app, ib.session, ib.email
    customer_mail = _customer_mail(ib, fwd)
    customer = Inbound(app=app, session=s, entry=ib.entry, email=customer_mail, recipients=ib.recipients)
    ticket = create_ticket(customer, acknowledge=app.config.workflow.ack_forwarded, owner_default=engineer,
                           brought_in_by=engineer)
    # the forward itself (the engineer's words above it, an attached .eml) stays internal
    forward = dataclasses.replace(e, attachments=e.attachments if fwd.original is not None else ())
    store_message(Inbound(app=app, session=s, entry=ib.entry, email=forward, recipients=ib.recipients),
                  ticket, kind="forward", internal=True, text=fwd.intro, reply_text=fwd.intro)
    record_event(s, ticket, "forwarded_in", ib.now,
                 f"brought in by {engineer} ({'their intake address' if how == 'token' else 'DMARC pass'}): "
                 f"{fwd.sender} wrote to them" + (f" on {fwd.date_text}" if fwd.date_text else ""),
                 actor=engineer, customer=fwd.sender.email, date=fwd.date.isoformat() if fwd.date else "",
                 how=how, acknowledged=app.config.workflow.ack_forwarded)
    ib.match = None
    return "forwarded_in"


def _customer_mail(ib, fwd: Forwarded):
    """The customer's mail as if it had reached us: their address, words, date and files."""
    e, original = ib.email, fwd.original
    subject = fwd.subject or _without_prefix(e.subject)
    message_id = original.message_id if original is not None else ""
    if not message_id or threads.known(ib.session, message_id):
        digest = hashlib.sha256(f"{e.message_id}\0{fwd.sender.email}\0{fwd.text}".encode()).hexdigest()[:24]
        message_id = f"fwd.{digest}@{ib.app.config.gateway.domain}"
    if original is not None:
        return dataclasses.replace(original, subject=subject or original.subject, message_id=message_id,
                                   to=(), cc=(), automatic=False, automatic_reason="")
    reply = split_reply(fwd.text)
    return dataclasses.replace(
        e, sender=fwd.sender, to=(), cc=(), reply_to=(), subject=subject, message_id=message_id,
        in_reply_to=(), references=(), date=fwd.date or e.date, text=fwd.text, html="",
        language=detect_language(subject, fwd.text), headers=(), reply_text=reply.reply_text,
        signature=reply.signature)


def _without_prefix(subject: str) -> str:
    subject = (subject or "").strip()
    changed = True
    while changed:
        changed = False
        for p in _PREFIXES:
            if subject.lower().startswith(p):
                subject, changed = subject[len(p):].strip(), True
    return subject
