"""Who a mail is from, for the purpose of answering it: a pipeline step.

Owns one decision: a mail with no usable sender (no From address, no envelope
sender, or only a string that is not an address) is not a ticket, because there is
nobody to acknowledge, relay to or ask for a rating; it is quarantined with that
reason for a person to look at. Parsing the From header is `parsers/`' job; this
module only judges the address it produced, and falls back to the envelope sender
(SMTP MAIL FROM) when the header gives none.

Runs right after the bounce handler: a delivery report is matched by its VERP
recipient and needs no sender. Automatic mail (bounces that matched nothing,
vacation replies; `parsers.loops`) is left alone: it is never answered anyway, and
is kept on a ticket as it was, often from a bare "MAILER-DAEMON".
"""

from __future__ import annotations

import dataclasses
import logging

from gateway.desk.inbound import Inbound, Unprocessable
from parsers.model import Address

NAME = "senders"  # the name the pipeline logs (handler=) and gateway/handlers/registry.py lists

log = logging.getLogger("supportgw.pipeline")

_NOT_IN_AN_ADDRESS = set(' \t\r\n<>(),;:"[]\\') | {chr(c) for c in range(32)} | {"\x7f"}


def is_usable(address: str) -> bool:
    """A bare addr-spec we could send to: local@domain, both parts present, no spaces,
    brackets or control characters, and a domain of non-empty labels."""
    local, at, domain = address.rpartition("@")
    if not (at and local and domain) or "@" in local:
        return False
    if any(c in _NOT_IN_AN_ADDRESS for c in address):
        return False
    return all(domain.split("."))


def handle(ib: Inbound) -> str | None:
    """Pass the mail on with a usable sender, or quarantine it (raises `Unprocessable`)."""
    sender = ib.email.sender
    if is_usable(sender.email) or ib.email.automatic:
        return None
    envelope = (ib.entry.envelope_from or "").strip().strip("<>")
    if is_usable(envelope):
        ib.email = dataclasses.replace(ib.email, sender=Address(sender.name, envelope.lower()))
        log.info("spool %s: no usable From address (%r); answering the envelope sender %s",
                 ib.entry.id, sender.email, envelope)
        return None
    raise Unprocessable(
        f"no usable sender: the From header gives {_shown(sender.email)} and the envelope sender is "
        f"{_shown(envelope)}, so there is nobody to answer. Look at it with 'supportgw quarantine show "
        f"{ib.entry.id}'; 'supportgw quarantine drop {ib.entry.id}' if it is junk.")


def _shown(value: str) -> str:
    return repr(value[:80]) if value else "nothing"
