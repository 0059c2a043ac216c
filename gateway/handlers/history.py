"""Old mail is history: live ingest never answers it as if it had just arrived.

Owns the judgement "when did this mail reach its mailbox?" and the pipeline
handler that files an old mail (older than `workflow.history_age_days` by the
gateway's clock) without acknowledging it, notifying anyone or starting an SLA
clock. The ticket's history says why no acknowledgement went out.

A mail's time is the newest of its Date header and its Received headers' dates:
the topmost Received line is the hop that delivered it to our mailbox, so a
customer whose clock says 2019 but whose mail was delivered today is new, and a
mailbox export whose every hop is from 2019 is old. A mail with no date at all
is new: when in doubt, the customer gets the acknowledgement they are owed.

Must not: send anything, or decide anything for mail that is not old (it passes
the mail on, unchanged, to the other handlers).
"""

from __future__ import annotations

import email.utils
import logging
from datetime import datetime, timedelta, timezone

from gateway.desk.inbound import create_ticket, store_message
from storage.history import record_event

NAME = "history"  # the name the pipeline logs (handler=) and gateway/handlers/registry.py lists

log = logging.getLogger("supportgw.history")

# Received headers past this many are relays far upstream; the first few say when it arrived.
_RECEIVED_READ = 5


def _parse_date(value: str) -> datetime | None:
    try:
        parsed = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def received_dates(mail) -> list[datetime]:
    """The dates of the topmost Received headers (each ends in "; <date>")."""
    out = []
    for value in mail.header_all("Received")[:_RECEIVED_READ]:
        head, sep, when = value.rpartition(";")
        if sep:
            d = _parse_date(" ".join(when.split()))
            if d is not None:
                out.append(d)
    return out


def mail_time(mail) -> datetime | None:
    """When the mail reached its mailbox as best its headers say: the newest of Date and Received."""
    dates = received_dates(mail)
    if mail.date is not None:
        dates.append(mail.date)
    return max(dates) if dates else None


def written_at(mail, now: datetime) -> datetime:
    """The date a ticket shows for the mail: its Date header (the writer's own time), else its
    newest Received date, never later than now."""
    when = mail.date if mail.date is not None else mail_time(mail)
    return now if when is None else min(when, now)


def age_limit(app) -> timedelta | None:
    days = app.config.workflow.history_age_days
    return timedelta(days=days) if days and days > 0 else None


def old_reason(app, mail, now: datetime) -> str:
    """Why this mail is history ("" when it is not): older than the configured age by the gateway's clock."""
    limit = age_limit(app)
    if limit is None:
        return ""
    when = mail_time(mail)
    if when is None or now - when <= limit:
        return ""
    days = app.config.workflow.history_age_days
    return (f"no acknowledgement, notification or SLA clock: the mail reached its mailbox on "
            f"{when.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC (its Date and Received headers), "
            f"{(now - when).days} days ago, older than workflow.history_age_days = {days:g}; filed as history")


def handle(ib) -> str | None:
    """Pipeline handler: file an old mail as history; anything else passes on."""
    reason = old_reason(ib.app, ib.email, ib.now)
    if not reason:
        return None
    when = written_at(ib.email, ib.now)
    m = ib.match = ib.find_ticket()
    if m.ticket is not None and m.sender_role != "stranger":
        ticket = m.ticket
        sender = ib.email.sender.email
        if sender in ib.app.engineer_addresses() or ib.app.is_own_address(sender):
            # an engineer's old answer or command mail: kept on the ticket as an internal note,
            # never relayed and no command run, since the moment it was meant for has passed
            store_message(ib, ticket, kind="engineer", internal=True, at=when)
        else:
            store_message(ib, ticket, kind="automatic" if ib.email.automatic else "customer", at=when)
        record_event(ib.session, ticket, "history", ib.now, reason, actor=ib.email.sender.email,
                     message_id=ib.email.message_id)
    else:
        ticket = create_ticket(ib, history=reason, at=when)
    log.info("spool %s (%s) filed as history on %s: %s", ib.entry.id, ib.email.message_id, ticket.ref, reason)
    return "history"
