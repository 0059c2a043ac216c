"""Loop detection by content repetition: the last resort against robots that say nothing.

parsers/loops.py judges one mail by its headers (RFC 3834 and practice). Some robots
send no such header at all: a ticket system that opens a "new ticket" for each of our
acknowledgements and confirms it, a monitoring script mailing the same alert every
minute. What gives them away is repetition: the same sender sending near-identical mail
again and again. Here, more than `outbound.repeat_limit_per_hour` inbound messages from
one sender with the same fingerprint within an hour make the latest one automatic.

The fingerprint is a hash of the normalised subject and body: case, whitespace, reply
prefixes, our ticket references and digit runs (counters, dates, ticket numbers a robot
puts in its own text) are ignored, so "Re: [TS-000012] Ticket #4711 received 10:31" and
"Re: [TS-000013] Ticket #4712 received 10:32" are the same mail. Reads the stored
messages; keeps no state of its own.
"""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

from sqlalchemy.orm import Session

from storage.models import Message
from storage.queries import messages
from storage.rows import unflushed

_PREFIX = re.compile(r"^\s*(?:(?:re|fw|fwd|aw|wg|sv|vs|tr|antw|回复|答复|转发)\s*(?:\[\d+\])?\s*[:：]\s*)+", re.I)
_REF = re.compile(r"\[[A-Z]{1,10}-\d+\]", re.I)
_DIGITS = re.compile(r"\d+")
_URL = re.compile(r"<?\bhttps?://[^\s<>]+>?", re.I)  # a robot's links carry per-mail tokens
_SPACE = re.compile(r"\s+")
_BODY_CHARS = 4000  # enough to tell mails apart; a 10 MB body is not read twice
_LOOKBACK_ROWS = 500  # a sender above this per hour is flooding anyway


def normalise(subject: str, body: str) -> str:
    subject = _REF.sub(" ", _PREFIX.sub("", subject or ""))
    text = _URL.sub("<url>", f"{subject}\n{(body or '')[:_BODY_CHARS]}").lower()
    return _SPACE.sub(" ", _DIGITS.sub("#", text)).strip()


def fingerprint(subject: str, body: str) -> str:
    return hashlib.sha256(normalise(subject, body).encode("utf-8", "surrogatepass")).hexdigest()


def repeats_in_last_hour(session: Session, sender: str, subject: str, body: str, now) -> int:
    """How many inbound messages from `sender` in the last hour share this fingerprint
    (the message being processed included, once it is stored)."""
    if not sender:
        return 0
    rows = messages.recent_from(session, sender, now - timedelta(hours=1), _LOOKBACK_ROWS)
    want = fingerprint(subject, body)
    return sum(1 for subj, text in rows if fingerprint(subj, text) == want)


def repetition_reason(app, session: Session, email) -> str:
    """A reason string when this mail repeats too often to be a person; "" otherwise."""
    limit = app.config.outbound.repeat_limit_per_hour
    if limit <= 0:
        return ""
    # Cheap first: an indexed count, plus the messages of this transaction not written
    # yet (the one being processed counts too). Only a sender with more mails than the
    # limit this hour has their texts read and compared.
    sender, since = email.sender.email, app.now() - timedelta(hours=1)
    recent = messages.count_from(session, sender, since)
    recent += sum(1 for m in unflushed(session, Message)
                  if m.sender_email == sender and m.direction == "in" and m.created_at >= since)
    if recent <= limit:
        return ""
    session.flush()  # the texts compared include the message being processed
    n = repeats_in_last_hour(session, email.sender.email, email.subject, email.text, app.now())
    if n > limit:
        return f"content repetition: {n} near-identical mails from {email.sender.email} within an hour (limit {limit})"
    return ""
