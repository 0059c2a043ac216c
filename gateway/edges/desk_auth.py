"""Sign-in by mail for the desk pages: who may sign in, links, sessions, CSRF.

Only the engineers and managers of the rules file may sign in. They enter
their address; the gateway mails a link signed with its own key, valid
LINK_MINUTES and usable once (a JobRun row per link, so two clicks or two
gateways admit one session). The link sets a session cookie: the address and
an expiry, signed, HttpOnly, SameSite=Lax, Secure when the request came over
TLS (the reverse proxy says so in X-Forwarded-Proto). Forms carry a CSRF token
that must match a cookie (double submit), so another site cannot post them.

The answer to "send me a link" is the same whoever asks: the page must not
tell a stranger which addresses are engineers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time

from sqlalchemy.exc import IntegrityError

from storage.models import JobRun

LINK_PURPOSE, SESSION_PURPOSE = "desk-signin", "desk-session"
LINK_MINUTES = 15
SESSION_HOURS = 12
COOKIE, CSRF_COOKIE = "supportgw_desk", "supportgw_csrf"


def desk_person(app, address: str):
    """The rules file's engineer with this address, or None."""
    address = (address or "").strip()
    return app.rules.current.engineer_by_email(address) if address else None


def _pack(address: str) -> str:
    # signed tokens are dot-separated values: an address (dots, and readable in logs) goes encoded
    return base64.urlsafe_b64encode(address.encode()).decode().rstrip("=")


def _unpack(value: str) -> str:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return ""


def signin_token(app, address: str) -> str:
    expires = int(time.time()) + LINK_MINUTES * 60
    return app.signer.link_token(LINK_PURPOSE, _pack(address), str(expires), secrets.token_hex(8))


def redeem(app, token: str) -> str | None:
    """The address a valid, unexpired, unused link signs in; None otherwise. Uses the link up."""
    values = app.signer.check_link_token(LINK_PURPOSE, token)
    if not values or len(values) != 3 or not values[1].isdigit() or int(values[1]) < time.time():
        return None
    address = _unpack(values[0])
    if desk_person(app, address) is None:
        return None  # no longer in the rules file
    key = hashlib.sha256(token.encode()).hexdigest()[:64]
    try:
        with app.db.write_lock(), app.db.session() as s:
            s.add(JobRun(job="desk-signin", due_key=key, at=app.now(), holder=app.worker_id))
    except IntegrityError:
        return None
    return address


def session_cookie(app, address: str) -> str:
    return app.signer.link_token(SESSION_PURPOSE, _pack(address), str(int(time.time()) + SESSION_HOURS * 3600))


def session_person(app, cookie: str | None):
    if not cookie:
        return None
    values = app.signer.check_link_token(SESSION_PURPOSE, cookie)
    if not values or len(values) != 2 or not values[1].isdigit() or int(values[1]) < time.time():
        return None
    return desk_person(app, _unpack(values[0]))


def new_csrf() -> str:
    return secrets.token_urlsafe(24)


def csrf_ok(cookie: str | None, field: str | None) -> bool:
    return bool(cookie) and bool(field) and hmac.compare_digest(cookie, field)
