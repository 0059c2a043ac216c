"""The mail stored on tickets (`Message` rows): building the row for a mail that came
in, and the questions asked about a ticket's messages."""

from __future__ import annotations

from datetime import datetime

from storage.models import Message


def received(email, *, ticket_id: int, spool_id: int | None, kind: str, created_at: datetime,
             internal: bool = False, text: str | None = None, reply_text: str | None = None,
             html: str | None = None) -> Message:
    """The row for an incoming mail (a parsed email: `parsers.model.ParsedEmail`), not yet
    added to a session. `text`, `reply_text` and `html` replace the mail's own when given
    (an engineer's note keeps only what the engineer wrote)."""
    return Message(
        ticket_id=ticket_id, spool_id=spool_id, direction="in", kind=kind, message_id=email.message_id,
        sender_email=email.sender.email, sender_name=email.sender.name,
        to=[a.email for a in email.to], cc=[a.email for a in email.cc], subject=email.subject,
        text=email.text if text is None else text,
        reply_text=email.reply_text if reply_text is None else reply_text,
        html=email.html if html is None else html, automatic=email.automatic, internal=internal,
        created_at=created_at,
    )
