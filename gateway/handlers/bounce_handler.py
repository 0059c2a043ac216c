"""Pipeline handler for bounces of our own mail (DSNs coming back to our VERP address).

Every outbound mail leaves with envelope sender `bounces+<outbox-id>@<our domain>`
(gateway/runtime/dispatch.py). A delivery report coming back names the outbox row; this
handler marks the row "bounced" (with the report's status and diagnostic, and an
OutboxAttempt so the row's history is complete), stores the report on the ticket as an
automatic message and tells the ticket's handler (or owner) that the customer did not
receive our mail. It never answers the report: nothing automatic is sent to a robot.

Evidence. The VERP id is a small number anyone can guess, so a report counts only when
it also proves it saw the mail: our Message-ID in the returned headers, or a failed
recipient that the row was really sent to. Anything else falls through to the ordinary
handlers (stored on a ticket as automatic mail, never answered).

It also owns the owner notices for mail that never arrived (`tell_owner`), which
gateway.runtime.dispatch.on_failed calls when the relay refuses a row for good.
"""

from __future__ import annotations

import logging
import re

from gateway import outbox
from gateway.desk.automatic import may_send_automatic
from gateway.desk.inbound import Inbound, store_message
from gateway.large_mail import scan_bytes
from parsers.bounces import Dsn, parse_dsn, verp_outbox_id
from storage.history import record_event
from storage.models import OutboxAttempt, OutboxRow, Ticket
from storage.queries import outbox as outbox_rows
from gateway.desk.threads import Match

NAME = "bounce_handler"  # the name the pipeline logs (handler=) and gateway/handlers/registry.py lists

log = logging.getLogger("supportgw.bounces")

# Mail about mail that failed: a bounce of one of these must never produce another notice.
NOTICE_KINDS = ("bounce_notice", "delivery_failed")
# Only a returned Message-ID header counts: References in the returned headers name our
# earlier mails on the same thread, which did arrive.
_MSGID = re.compile(rb"^[ \t]*message-id:[ \t]*(?:\r?\n[ \t]+)?<([^<>\s@]{1,200}@[^<>\s@]{1,200})>", re.I | re.M)
_SCAN = 256 * 1024


def handle(ib: Inbound) -> str | None:
    e = ib.email
    verp_ids = _verp_ids(ib)
    if not verp_ids and not e.automatic:
        return None  # a person's mail: not ours to judge
    dsn = parse_dsn(scan_bytes(ib.app, ib.entry))
    if dsn is None:
        return None  # an auto-reply or some other robot: the customer handler stores it
    row = _find_row(ib, dsn, verp_ids)
    if row is None:
        return None
    ticket = ib.session.get(Ticket, row.ticket_id) if row.ticket_id else None
    action = dsn.action or ("failed" if dsn.permanent else "delayed")
    if action in ("failed", "delayed"):
        _record_attempt(ib, row, dsn, permanent=dsn.permanent)
    if ticket is None:
        log.info("bounce for outbox %s (no ticket): %s %s", row.id, dsn.status, dsn.diagnostic)
        return "bounced" if dsn.permanent else "delivery_report"
    msg = store_message(ib, ticket, kind="automatic")
    msg.automatic = True  # a report is machine mail even when its headers forgot to say so
    ib.match = _match_for(ticket)
    what = _describe(dsn)
    if action == "failed":
        record_event(ib.session, ticket, "bounced", ib.now,
                     f"our {row.kind} to {', '.join(row.to)} bounced: {what}", actor="mailer-daemon",
                     outbox_id=row.id, status=dsn.status, diagnostic=dsn.diagnostic,
                     recipients=list(dsn.recipients))
        tell_owner(ib.app, ib.session, row, ticket, template="bounce_notice",
                   status=dsn.status, diagnostic=dsn.diagnostic, recipients=list(dsn.recipients) or list(row.to))
        return "bounced"
    kind = "delivery_delayed" if action == "delayed" else "delivery_report"
    record_event(ib.session, ticket, kind, ib.now, f"our {row.kind} to {', '.join(row.to)}: {action}, {what}",
                 actor="mailer-daemon", outbox_id=row.id, status=dsn.status, action=action)
    return kind


def _verp_ids(ib: Inbound) -> list[int]:
    """Outbox ids from recipients that are our own bounce address."""
    ids = []
    for rcpt in ib.recipients:
        oid = verp_outbox_id(rcpt)
        if oid is not None and ib.app.is_own_address(rcpt) and oid not in ids:
            ids.append(oid)
    return ids


def _find_row(ib: Inbound, dsn: Dsn, verp_ids: list[int]) -> OutboxRow | None:
    s = ib.session
    returned_ids = _returned_message_ids(ib)
    candidates: list[OutboxRow] = []
    for oid in verp_ids + ([dsn.outbox_id] if dsn.outbox_id is not None else []):
        row = s.get(OutboxRow, oid)
        if row is not None and row not in candidates:
            candidates.append(row)
    if returned_ids:
        for row in outbox_rows.by_message_ids(s, returned_ids[:50]):
            if row not in candidates:
                candidates.append(row)
    for row in candidates:
        if _proves(row, dsn, returned_ids):
            return row
    if candidates:
        log.warning("a delivery report names outbox %s but shows no proof it saw that mail; stored as ordinary "
                    "automatic mail", [r.id for r in candidates])
    return None


def _proves(row: OutboxRow, dsn: Dsn, returned_ids: list[str]) -> bool:
    if row.message_id in returned_ids:
        return True
    sent_to = {a.lower() for a in (row.envelope_to or [])}
    return bool(sent_to & set(dsn.recipients))


def _returned_message_ids(ib: Inbound) -> list[str]:
    """Message-IDs in our own domain from Message-ID headers quoted in the report."""
    domain = ib.app.config.gateway.domain.lower().encode()
    found = []
    for m in _MSGID.finditer(scan_bytes(ib.app, ib.entry)[:_SCAN]):
        mid = m.group(1)
        if mid.lower().endswith(b"@" + domain):
            text = mid.decode("ascii", "replace")
            if text not in found and text != ib.email.message_id:
                found.append(text)
    return found


def _record_attempt(ib: Inbound, row: OutboxRow, dsn: Dsn, *, permanent: bool) -> None:
    detail = f"delivery report: {_describe(dsn)}"
    ib.session.add(OutboxAttempt(outbox_id=row.id, at=ib.now, ok=False, temporary=not permanent,
                                 detail=detail[:2000]))
    if permanent:
        row.status = "bounced"
        row.last_error = detail[:2000]


def _describe(dsn: Dsn) -> str:
    parts = [dsn.status or "no status code", dsn.diagnostic or "no diagnostic given"]
    if dsn.recipients:
        parts.append("for " + ", ".join(dsn.recipients))
    return "; ".join(parts)


def _match_for(ticket: Ticket):
    return Match(ticket, "bounce", "none")


def tell_owner(app, session, row: OutboxRow, ticket: Ticket | None, *, template: str, status: str,
               diagnostic: str, recipients: list[str]) -> str | None:
    """Tell whoever handles the ticket that `row` never reached its recipient(s); the
    notice's Message-ID, or None when nobody is told.

    Quiet when the failed mail was itself such a notice (no loop), when it went only to
    engineers (no customer is waiting for it), or when nobody handles the ticket: the
    event history always has the facts.
    """
    if ticket is None or row.kind in NOTICE_KINDS:
        return None
    staff = app.engineer_addresses()
    if all(a.lower() in staff for a in row.envelope_to or []):
        return None  # our own notification to an engineer: no customer waits for it; the event says it
    engineer = (ticket.handler or ticket.owner or "").lower()
    if not engineer or engineer in {a.lower() for a in row.envelope_to or []}:
        record_event(session, ticket, "delivery_unnoticed", app.now(),
                     f"nobody else to tell that our {row.kind} was not delivered")
        return None
    if not may_send_automatic(app, session, engineer, "delivery_notice"):
        record_event(session, ticket, "auto_suppressed", app.now(),
                     f"rate limit: no {template} to {engineer}", reason="rate limit")
        return None
    rendered = app.templates.render(
        template, ticket.language, ticket=ticket, mail_kind=row.kind, recipients=recipients, status=status,
        diagnostic=diagnostic, original_subject=row.subject, team_name=app.config.gateway.display_name,
    )
    [notice_id] = outbox.mail_engineer(app, session, ticket, template, rendered, to=engineer,
                                       automatic="auto-generated")
    record_event(session, ticket, template, app.now(), f"told {engineer} that the {row.kind} was not delivered",
                 outbox_id=row.id)
    return notice_id
