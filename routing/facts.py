"""What the rules look at: one email's facts, computed once before any rule runs.

Owns the per-email preparation (lower-cased addresses, folded text, the
customer found in the directory, keyword hits) so that each of 200 rules does
a set lookup instead of re-reading the email. Pure: built from a
`ParsedEmail`, the envelope recipients and the compiled configuration.
"""

from __future__ import annotations

from dataclasses import dataclass

from parsers.model import ParsedEmail
from routing.text import FieldText, KeywordIndex


def domain_chain(domain: str) -> tuple[str, ...]:
    """'mail.bigbank.example' -> ('mail.bigbank.example', 'bigbank.example', 'example')."""
    parts = domain.split(".")
    return tuple(".".join(parts[i:]) for i in range(len(parts)) if parts[i])


@dataclass(frozen=True)
class Customer:
    """The directory's answer for a sender."""

    organisation: str
    tier: str


class EmailFacts:
    __slots__ = ("email", "sender", "sender_domains", "recipients", "recipient_locals",
                 "organisation", "customer_tier", "subject", "body", "language",
                 "attachment_names", "_index", "_hits", "_headers")

    def __init__(self, email: ParsedEmail, recipients: tuple[str, ...], customer: Customer | None,
                 default_tier: str, index: KeywordIndex):
        self.email = email
        self.sender = email.sender.email.lower()
        self.sender_domains = domain_chain(self.sender.rpartition("@")[2]) if "@" in self.sender else ()
        rcpts = {r.lower() for r in recipients}
        rcpts.update(a.email.lower() for a in email.to)
        rcpts.update(a.email.lower() for a in email.cc)
        rcpts.discard("")
        self.recipients = frozenset(rcpts)
        self.recipient_locals = frozenset(r.partition("@")[0] for r in rcpts)
        self.organisation = customer.organisation if customer else ""
        self.customer_tier = customer.tier if customer else default_tier
        self.subject = FieldText(email.subject)
        self.body = FieldText(email.text)
        self.language = (email.language or "").lower()
        # Inline parts are logos and signature images; they are not what a customer "attached".
        self.attachment_names = tuple(a.filename for a in email.attachments if not a.inline)
        self._index = index
        self._hits: dict[str, frozenset[str]] = {}
        self._headers: dict[str, list[str]] | None = None

    def hits(self, where: str) -> frozenset[str]:
        """Keyword keys found in 'subject', 'body' or 'text' (either)."""
        found = self._hits.get(where)
        if found is None:
            if where == "text":
                found = self.hits("subject") | self.hits("body")
            else:
                found = self._index.find(self.subject if where == "subject" else self.body)
            self._hits[where] = found
        return found

    def header_values(self, name: str) -> list[str]:
        if self._headers is None:
            self._headers = {}
            for key, value in self.email.headers:
                self._headers.setdefault(key.lower(), []).append(value)
        return self._headers.get(name, [])
