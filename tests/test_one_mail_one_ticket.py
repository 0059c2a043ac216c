"""A mail that reaches us several times is one ticket: sent to two of our addresses (To and
Cc, which a sending server may deliver as two SMTP transactions), and also fetched from an
IMAP mailbox that received a copy (with its own Received line, so other bytes)."""

from __future__ import annotations

from gateway.runtime.runner import Gateway
from storage.models import SpoolEntry, Ticket
from tests.conftest import wait_for
from tests.imap_kit import count, dovecot, seen_flags  # noqa: F401
from tests.mail import build, send

SUPPORT, SECURITY = "support@support.example.test", "security@support.example.test"


def test_one_mail_to_two_addresses_by_smtp_and_imap_is_one_ticket(make_app, dovecot):  # noqa: F811
    app = make_app(imap=[dovecot.mailbox_config()])
    gw = Gateway(app, scheduler=False).start()
    try:
        raw = build(frm="li.wei@bigbank.example", to=SUPPORT, cc=SECURITY, subject="Login page leaks tokens",
                    msgid="<leak-1@bigbank.example>", body="The login page shows session tokens in the URL.\n")
        send(gw.smtp_port, raw, "li.wei@bigbank.example", [SUPPORT])
        send(gw.smtp_port, raw, "li.wei@bigbank.example", [SECURITY])  # the MTA split the recipients
        dovecot.append(b"Received: from mx.bigbank.example by imap.support.example.test; "
                       b"Mon, 02 Mar 2026 09:00:05 +0800\r\n" + raw)
        wait_for(lambda: seen_flags(dovecot) == [True], timeout=30, what="the IMAP copy taken")
        wait_for(lambda: count(app, SpoolEntry, SpoolEntry.status == "pending") == 0
                 and count(app, SpoolEntry) >= 2, timeout=30, what="every copy processed")
    finally:
        gw.stop()
    assert count(app, Ticket) == 1
    statuses = sorted(r.status for r in _spool(app))
    assert statuses.count("processed") == 1 and set(statuses) <= {"processed", "duplicate"}


def _spool(app):
    with app.db.session() as s:
        rows = list(s.query(SpoolEntry))
        s.expunge_all()
        return rows
