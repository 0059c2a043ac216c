"""Signed addresses and links: `support+<token>@domain`, `bounces+<id>@domain`.

A reply token is an HMAC over (ticket id, recipient address, purpose): it says
"this ticket, for this person". It cannot be guessed, and it is worth nothing
in anyone else's hands, because verification recomputes it for the sender.

A note token (`n…` instead of `t…`) is the reply address of an internal-note
notification: whatever comes back through it stays an internal note and is
never relayed to the customer. Its MAC covers a different purpose, so a reply
token cannot be turned into a note token or back by editing its first letter.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

_TOKEN_RE = re.compile(r"^([tn])(\d{1,12})x([a-z2-7]{16})$")
_PURPOSE = {"t": "reply", "n": "note"}
_FORWARD_RE = re.compile(r"^f[a-z2-7]{16}$")


class Signer:
    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the secret key must be at least 16 bytes; run 'supportgw init' to generate one")
        # keyed once: a copy of it starts each MAC with the key's padding already hashed
        # (17,600 instructions a MAC against 25,000 for hmac.new, counted by callgrind; a
        # message's mail needs about three). Never updated itself, so copies share nothing.
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)

    def _mac(self, *parts: str) -> str:
        mac = self._keyed.copy()
        mac.update("\x00".join(parts).encode("utf-8"))
        return base64.b32encode(mac.digest()[:10]).decode("ascii").lower()

    def key_check(self) -> str:
        """A value that tells keys apart and says nothing of the key (a MAC of a fixed purpose):
        gateways on one database compare theirs (gateway/runtime/installation.py)."""
        return self._mac("installation key check")

    def reply_token(self, ticket_id: int, recipient: str, *, note: bool = False) -> str:
        kind = "n" if note else "t"
        return f"{kind}{ticket_id}x{self._mac(_PURPOSE[kind], str(ticket_id), recipient.lower())}"

    def check_reply_token(self, token: str, sender: str) -> int | None:
        """The ticket id when `token` was issued to `sender`, else None."""
        grant = self.read_reply_token(token, sender)
        return grant[0] if grant else None

    def read_reply_token(self, token: str, sender: str) -> tuple[int, bool] | None:
        """(ticket id, is a note token) when `token` was issued to `sender`, else None."""
        m = _TOKEN_RE.match(token.lower())
        if not m:
            return None
        kind, tid = m.group(1), m.group(2)
        expected = self._mac(_PURPOSE[kind], tid, sender.lower())
        return (int(tid), kind == "n") if hmac.compare_digest(expected, m.group(3)) else None

    def issued_to_any(self, token: str, addresses) -> int | None:
        """The ticket id when `token` was issued to one of `addresses` (a genuine token in
        someone else's hands: a forwarded mail), else None: a forged token says nothing,
        not even which ticket it names."""
        m = _TOKEN_RE.match(token.lower())
        if not m:
            return None
        kind, tid, mac = m.groups()
        for addr in addresses:
            if addr and hmac.compare_digest(self._mac(_PURPOSE[kind], tid, addr.lower()), mac):
                return int(tid)
        return None

    @staticmethod
    def ticket_named(token: str) -> int | None:
        """The ticket id a token *claims*, unverified: only for looking up who to verify it for."""
        m = _TOKEN_RE.match(token.lower())
        return int(m.group(2)) if m else None

    def forward_token(self, engineer: str) -> str:
        """The tag of an engineer's own intake address (`support+f…@`): a customer's mail they
        forward to it opens a ticket for that customer (gateway.handlers.forwards). Like a reply token
        it proves something only for the engineer it was made for."""
        return "f" + self._mac("forward", engineer.lower())

    def check_forward_token(self, token: str, sender: str) -> bool:
        return bool(_FORWARD_RE.match(token.lower())) and hmac.compare_digest(
            token.lower(), self.forward_token(sender))

    def link_token(self, purpose: str, *values: str) -> str:
        payload = ".".join(values)
        return f"{payload}.{self._mac(purpose, payload)}"

    def check_link_token(self, purpose: str, token: str) -> list[str] | None:
        payload, _, mac = token.rpartition(".")
        if not payload or not hmac.compare_digest(self._mac(purpose, payload), mac):
            return None
        return payload.split(".")


def generate_key() -> str:
    return secrets.token_hex(32)


def split_plus_address(address: str) -> tuple[str, str, str] | None:
    """'support+tok@d' -> ('support', 'tok', 'd'); None when there is no '+' part."""
    local, _, domain = address.lower().rpartition("@")
    if "+" not in local:
        return None
    base, _, tag = local.partition("+")
    return base, tag, domain


def reply_address(support_address: str, token: str) -> str:
    local, _, domain = support_address.partition("@")
    return f"{local}+{token}@{domain}"


def verp_address(domain: str, outbox_id: int) -> str:
    return f"bounces+{outbox_id}@{domain}"
