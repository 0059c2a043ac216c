"""Queueing outbound mail: every email we send is an outbox row written in the
same transaction as the state change that caused it.

Owns counting the automatic mail sent to a correspondent (the rate limit that
gateway.desk.automatic applies: RFC 3834 §2, an automatic responder must not flood
anyone), and the threading headers of a mail on a ticket: to a customer, only the
conversation they have seen (`customer_thread`); to staff, the whole thread.
"""

from __future__ import annotations

import logging
from email.utils import formataddr

from sqlalchemy.orm import Session

from gateway.compose import build_message, new_message_id
from gateway.tokens import reply_address
from storage.history import record_event
from storage.models import OutboxRow, ThreadId, Ticket
from storage.queries import messages, outbox as outbox_rows, threads
from storage.rows import append
from templates import Rendered

log = logging.getLogger("supportgw.outbox")
MAX_REFERENCES = 20


def automatic_sent_recently(session: Session, rcpt: str, since) -> int:
    """How many automatic mails went to `rcpt` since then (the rate limit of gateway.desk.automatic)."""
    return outbox_rows.automatic_sent_to(session, rcpt.lower(), since)


def ticket_references(session: Session, ticket: Ticket, limit: int = MAX_REFERENCES) -> list[str]:
    """The thread's Message-IDs, oldest first: the References chain for a new mail on it.

    Computed once per ticket per transaction: the notifications of one event all
    answer the same thread, and our own new Message-IDs need not be in each other's chain.
    """
    cache = session.info.setdefault("ticket_references", {})
    key = (ticket.id, limit)
    if key not in cache:
        cache[key] = _ticket_references(session, ticket, limit)
    return list(cache[key])


def _ticket_references(session: Session, ticket: Ticket, limit: int) -> list[str]:
    return trim_references(threads.message_ids_of(session, ticket.id), limit)


def trim_references(ids: list[str], limit: int = MAX_REFERENCES) -> list[str]:
    """At most `limit` Message-IDs for a References header: the root and the newest
    (RFC 5322 §3.6.4 suggests keeping the first)."""
    ids = list(ids)
    return ids[:1] + ids[-(limit - 1):] if len(ids) > limit else ids


def customer_thread(app, session: Session, ticket: Ticket) -> tuple[str | None, list[str]]:
    """(the customer side's last Message-ID, the References chain the customer has seen).

    Only mail the customer side sent or was sent: their own messages and ours to them.
    Never an engineer's reply, an internal note, a notification or any other mail to
    staff: a customer's References must not name a mail they were not sent (DOMAIN.md §9)."""
    engineers = app.engineer_addresses()
    seen: list[tuple] = []
    last_in = None
    for m in messages.public_incoming(session, ticket.id):
        if not m.message_id or m.automatic or app.is_ours(m.sender_email, engineers):
            continue
        seen.append((m.created_at, 0, m.id, m.message_id))
        last_in = m.message_id
    for row in outbox_rows.of_ticket(session, ticket.id):
        if row.rcpt and row.status != "cancelled" and not app.is_ours(row.rcpt, engineers):
            seen.append((row.created_at, 1, row.id, row.message_id))
    seen.sort()
    return last_in, trim_references(dict.fromkeys(mid for *_, mid in seen))


def queue(
    app,
    session: Session,
    *,
    kind: str,
    ticket: Ticket | None,
    rendered: Rendered,
    to: list[str],
    cc: list[str] | None = None,
    automatic: str | None = None,
    from_name: str | None = None,
    reply_to_for: str | None = None,  # recipient whose signed reply address goes in Reply-To
    reply_note: bool = False,  # that address is a note's: what comes back stays internal
    reply_name: str = "",  # display name of the Reply-To (what a mail client shows when answering)
    in_reply_to: str | None = None,
    references: list[str] | None = None,
    attachments: list[tuple[str, str, bytes]] | None = None,
    stored_attachments: list[tuple[str, str, str]] | None = None,  # (name, type, sha256) in app.attachments
    extra_headers: dict[str, str] | None = None,
    source_spool_id: int | None = None,
    deliver_to: str | None = None,  # this copy goes to this one of `to`/`cc` only (see queue_copies)
    not_before=None,  # not sent before this time (#send-at, #send-in)
    address: str = "",  # mail on no ticket: the [[address]] the customer wrote to, which it goes out from
) -> str:
    """Queue one mail; returns its Message-ID. The row is appended (storage.rows): a query
    on the outbox, the end of the message's savepoint or the commit writes it."""
    gw = app.config.gateway
    now = app.now()
    to, cc = capped_recipients(app, session, ticket, kind, list(to), list(cc or []))
    mid = new_message_id(gw.domain)
    # a ticket's mail comes from the address its customer wrote to (an [[address]] brand)
    brand = app.brand_of(ticket, address)
    support = brand.address if brand is not None else gw.support_addresses[0]
    reply_to = None
    if ticket is not None and reply_to_for:
        reply_to = reply_address(support, app.signer.reply_token(ticket.id, reply_to_for, note=reply_note))
        if reply_name:
            reply_to = formataddr((" ".join(reply_name.split()), reply_to), charset="utf-8")
    if references is None and ticket is not None and to and not app.is_ours(to[0]):
        # To the customer: thread it on what they have seen, nothing internal.
        last_in, references = customer_thread(app, session, ticket)
        in_reply_to = in_reply_to or last_in
    refs = references if references is not None else (ticket_references(session, ticket) if ticket else [])
    # Everything the mail will say is decided now, in this transaction; only the MIME
    # bytes are written at dispatch (gateway.runtime.dispatch), from this draft, the row's
    # Message-ID, recipients, subject and created_at (the Date). Attachments already in
    # the (content-addressed, never rewritten) attachment store are named by their hash;
    # mail with other attachments is built now: the draft does not copy bytes.
    draft = {
        "text": rendered.text, "html": rendered.html,
        "from_addr": [from_name or app.team_name(ticket, address), support], "reply_to": reply_to,
        "in_reply_to": in_reply_to or (refs[-1] if refs else None), "references": list(refs),
        "automatic": automatic, "loop_address": support, "thread_topic": ticket.subject if ticket else "",
        "thread_root": refs[0] if refs else mid, "extra_headers": dict(extra_headers or {}),
        "attachments": [list(a) for a in stored_attachments or []],
    }
    envelope = [deliver_to] if deliver_to else list(to) + list(cc or [])
    values = dict(
        ticket_id=ticket.id if ticket else None, kind=kind, rcpt=(envelope[0] if envelope else "").lower(),
        to=list(to), cc=list(cc or []), envelope_to=envelope,
        subject=rendered.subject, message_id=mid, raw=None, draft=draft, automatic=bool(automatic),
        status="pending", attempts=0, next_attempt_at=not_before or now, last_error="", created_at=now,
        source_spool_id=source_spool_id,
    )
    if attachments:
        values.update(raw=message_bytes(OutboxRow(**values), attachments=attachments), draft=None)
    append(session, OutboxRow, **values)
    if ticket is not None:
        append(session, ThreadId, message_id=mid, ticket_id=ticket.id, outbound=True)
    return mid


# ------------------------------------------------------------------ the verbs
# Mail to a person is queued through one of these, named for whom it goes to; each
# keeps that audience's rules, so a call site says only what is particular to its mail.


def reply_to_customer(app, session: Session, ticket: Ticket, kind: str, rendered: Rendered, *,
                      to: str | None = None, cc: list[str] | None = None, automatic: str | None = None,
                      in_reply_to: str | None = None, references: list[str] | None = None,
                      from_name: str | None = None, attachments: list[tuple[str, str, bytes]] | None = None,
                      source_spool_id: int | None = None, not_before=None) -> str:
    """Queue `rendered` to the ticket's customer (`to`, else its requester; CC `cc`) with
    the Reply-To signed for them; returns its Message-ID. Threaded on the mail they sent
    and were sent only (`customer_thread`), unless `references` says otherwise: never on
    a note, an engineer's mail or a notification (DOMAIN.md §9)."""
    rcpt = to if to is not None else ticket.requester_email
    return queue(app, session, kind=kind, ticket=ticket, rendered=rendered, to=[rcpt], cc=cc, automatic=automatic,
                 from_name=from_name, reply_to_for=rcpt, in_reply_to=in_reply_to, references=references,
                 attachments=attachments, source_spool_id=source_spool_id, not_before=not_before)


def answer_sender(app, session: Session, kind: str, rendered: Rendered, *, to: str, in_reply_to: str,
                  references: list[str], source_spool_id: int | None = None, address: str = "") -> str:
    """Queue the automatic answer to a mail that is on no ticket (a stranger's, a status
    request) to its sender alone, threaded on what the caller names only, from `address`
    (the [[address]] they wrote to; empty: the default)."""
    return queue(app, session, kind=kind, ticket=None, rendered=rendered, to=[to], automatic="auto-replied",
                 in_reply_to=in_reply_to, references=references, source_spool_id=source_spool_id,
                 address=address)


def mail_engineer(app, session: Session, ticket: Ticket | None, kind: str, rendered: Rendered, *,
                  to: str | list[str], cc: list[str] | None = None, automatic: str | None = None,
                  note: bool = False, in_reply_to: str | None = None, references: list[str] | None = None,
                  stored_attachments: list[tuple[str, str, str]] | None = None,
                  extra_headers: dict[str, str] | None = None) -> list[str]:
    """Queue `rendered` to engineers (`to`, CC `cc`), on the whole thread of `ticket`;
    returns the Message-IDs. On a ticket each engineer's Reply-To is signed for them, so
    whoever answers, their `#` commands are theirs; to several, each gets a copy of their
    own (`queue_copies`). `note`: the Reply-To is the note's, what comes back stays internal."""
    to = [to] if isinstance(to, str) else list(to)
    reply_name = app.templates.line("note", ticket.language, "reply_name", ticket=ticket) if note else ""
    kw = dict(kind=kind, ticket=ticket, rendered=rendered, automatic=automatic, reply_note=note,
              reply_name=reply_name, in_reply_to=in_reply_to, references=references,
              stored_attachments=stored_attachments, extra_headers=extra_headers)
    if len(to) == 1 and not cc:
        return [queue(app, session, to=to, reply_to_for=to[0], **kw)]
    return queue_copies(app, session, to=to, cc=cc, **kw)


def alert_managers(app, session: Session, kind: str, rendered: Rendered, *, to: list[str],
                   attachments: list[tuple[str, str, bytes]] | None = None) -> str:
    """Queue an automatic report or alert on no ticket (the weekly report, an OAuth account
    that stopped, a growing suspended area) to the managers or administrators `to`, as one mail."""
    return queue(app, session, kind=kind, ticket=None, rendered=rendered, to=list(to), automatic="auto-generated",
                 attachments=attachments)


def intake_address(app, engineer: str) -> str:
    """An engineer's own address for forwarding a customer's mail into support (gateway.handlers.forwards;
    `#help` shows it): signed for them, worth nothing to anyone else."""
    return reply_address(app.config.gateway.support_addresses[0], app.signer.forward_token(engineer))


def queue_copies(app, session: Session, *, to: list[str], cc: list[str] | None = None, **kw) -> list[str]:
    """One copy per engineer of a mail to several engineers (To and Cc as written), each
    delivered to that engineer alone with the reply address signed for them: whoever
    answers it, their `#` commands are theirs (gateway.handlers.engineer). Returns the Message-IDs."""
    people = list(dict.fromkeys(a.lower() for a in list(to) + list(cc or []) if a))
    return [queue(app, session, to=to, cc=cc, deliver_to=p, reply_to_for=p, **kw) for p in people]


def capped_recipients(app, session: Session, ticket: Ticket | None, kind: str, to: list[str], cc: list[str]):
    """(to, cc) with at most `workflow.max_customer_participants` outside recipients in all.
    The participant cap (gateway.desk.inbound) keeps tickets under it; this is the last line,
    so that no code path ever sends one mail to thousands of people. Our own people
    (engineers, [report] recipients) are configured, not taken from mail: never cut."""
    cap = app.config.workflow.max_customer_participants
    if len(to) + len(cc) <= cap:
        return to, cc
    ours = {a.lower() for a in app.engineer_addresses()} | {a.lower() for a in app.config.report.recipients}
    room = [cap]

    def keep(addr: str) -> bool:
        if addr.lower() in ours or app.is_own_address(addr):
            return True
        room[0] -= 1
        return room[0] >= 0

    kept_to = [a for a in to if keep(a)]
    kept_cc = [a for a in cc if keep(a)]
    dropped = len(to) + len(cc) - len(kept_to) - len(kept_cc)
    if not dropped:
        return kept_to, kept_cc
    log.warning("outbound %s: %d recipient(s) over the cap of %d left out", kind, dropped, cap)
    if ticket is not None:
        record_event(session, ticket, "recipients_capped", app.now(),
               f"{kind}: {dropped} recipient(s) over the cap of {cap} (workflow.max_customer_participants) "
               "left out", mail=kind, dropped=dropped, cap=cap)
    return kept_to, kept_cc


def message_bytes(row: OutboxRow, store=None, attachments: list[tuple[str, str, bytes]] | None = None) -> bytes:
    """The RFC 5322 bytes of an outbox row: stored ones, else composed from its draft
    (with the attachments it names read from `store`, the app's attachment store)."""
    if row.raw is not None:
        return row.raw
    d = row.draft
    if d.get("attachments"):
        if store is None:
            raise ValueError(f"outbox row {row.id} forwards stored attachments: pass the attachment store")
        attachments = []
        for name, ctype, sha in d["attachments"]:
            try:
                attachments.append((name, ctype, store.get(sha)))
            except OSError:  # removed from the store by hand since: the mail goes without it
                log.warning("outbox %s: attachment %s (%s) is no longer in the store", row.id, name, sha)
    return build_message(
        Rendered(row.subject, d["text"], d["html"]), from_addr=tuple(d["from_addr"]), to=list(row.to),
        cc=list(row.cc), reply_to=d["reply_to"], message_id=row.message_id, in_reply_to=d["in_reply_to"],
        references=d["references"], automatic=d["automatic"], loop_address=d["loop_address"],
        thread_topic=d["thread_topic"], thread_root=d["thread_root"], extra_headers=d["extra_headers"],
        date=row.created_at, attachments=attachments,
    )
