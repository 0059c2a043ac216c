"""An IMAP mailbox mapped to a brand (`[[imap]] address = ...`): whatever its To header says
(a forwarding alias, our default address), mail drained from that mailbox belongs to that
[[address]], and its customer hears back from it. Against the tests' private Dovecot.
A mailbox naming an address that is not one of ours is a one-line config error, exit 2."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from gateway.config import ConfigError
from gateway.outbox import message_bytes
from storage.models import OutboxRow, Ticket
from tests.conftest import make_config, wait_for
from tests.imap_kit import dovecot, imap_gateway, write_config  # noqa: F401
from tests.mail import build, parse

BRAND = "help@brand-b.example"
ALIAS = "care@brand-b.example"
OTHER = "sales@brand-c.example"
ADDRESSES = [{"address": BRAND, "aliases": [ALIAS], "display_name": "Brand B Care", "language": "en",
              "signature": "Brand B Care | https://brand-b.example/help"},
             {"address": OTHER, "display_name": "Brand C Sales"}]


def _tickets(app) -> dict[str, Ticket]:
    with app.db.session() as s:
        return {t.subject: t for t in s.execute(select(Ticket).order_by(Ticket.id)).scalars()}


def test_mail_drained_from_a_brands_mailbox_is_that_brands_whatever_its_to_says(make_app, dovecot, imap_gateway):
    dovecot.append(
        build(frm="li@bigbank.example", to="it-help@forwarder.example", subject="Via a forwarding alias",
              msgid="<f1@bigbank.example>"),
        build(frm="wu@bigbank.example", to="support@support.example.test", subject="Addressed to the default",
              msgid="<f2@bigbank.example>"),
        build(frm="ma@bigbank.example", to=OTHER, subject="Names another brand", msgid="<f3@bigbank.example>"))
    app = make_app(address=ADDRESSES, imap=[dovecot.mailbox_config(address=ALIAS.upper())])
    imap_gateway(app=app)
    wait_for(lambda: len(_tickets(app)) == 3, timeout=30, what="three tickets from the mailbox")
    assert {s: t.address for s, t in _tickets(app).items()} == {
        "Via a forwarding alias": BRAND, "Addressed to the default": BRAND, "Names another brand": BRAND}

    with app.db.session() as s:
        acks = [parse(message_bytes(r, app.attachments)) for r in s.execute(
            select(OutboxRow).where(OutboxRow.kind == "acknowledgement")).scalars()]
    assert len(acks) == 3
    for msg in acks:
        assert msg["From"].addresses[0].addr_spec == BRAND
        assert msg["From"].addresses[0].display_name == "Brand B Care"
        assert "Brand B Care | https://brand-b.example/help" in msg.get_body(("plain",)).get_content()


def test_without_address_the_to_header_still_decides(make_app, dovecot, imap_gateway):
    dovecot.append(build(frm="li@bigbank.example", to=OTHER, subject="To brand C", msgid="<g1@bigbank.example>"),
                   build(frm="wu@bigbank.example", to="it-help@forwarder.example", subject="Forwarded",
                         msgid="<g2@bigbank.example>"))
    app = make_app(address=ADDRESSES, imap=[dovecot.mailbox_config()])
    imap_gateway(app=app)
    wait_for(lambda: len(_tickets(app)) == 2, timeout=30, what="two tickets")
    assert {s: t.address for s, t in _tickets(app).items()} == {"To brand C": OTHER, "Forwarded": ""}


def test_backfill_of_a_brands_mailbox_gives_its_tickets_that_brand(make_app, dovecot):
    from gateway.edges.backfill import backfill

    dovecot.append(build(frm="li@bigbank.example", to="it-help@forwarder.example", subject="Old request",
                         msgid="<h1@bigbank.example>"))
    app = make_app(address=ADDRESSES, imap=[dovecot.mailbox_config(address=BRAND)])
    backfill(app, app.config.imap[0], date(2000, 1, 1))
    assert _tickets(app)["Old request"].address == BRAND


def test_an_unknown_mailbox_address_is_one_line_naming_the_mailbox(tmp_path):
    with pytest.raises(ConfigError) as err:
        make_config(tmp_path, address=ADDRESSES,
                    imap=[{"name": "brand-b", "host": "127.0.0.1", "security": "plain", "username": "u",
                           "password": {"value": "p"}, "address": "help@brand-x.example"}])
    text = str(err.value)
    assert "\n" not in text
    assert "'brand-b'" in text and "'help@brand-x.example'" in text and BRAND in text


def test_the_cli_says_it_in_one_line_and_exits_2(tmp_path, capsys):
    from gateway.cli import main

    cfg = write_config(tmp_path / "supportgw.toml", database_url=f"sqlite:///{tmp_path / 'x.db'}",
                       data_dir=tmp_path / "var",
                       imap=[{"name": "brand-b", "host": "127.0.0.1", "security": "plain", "username": "u",
                              "address": "help@brand-b.example"}])
    assert main(["--config", str(cfg), "imap", "check"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("supportgw: ") and "address = 'help@brand-b.example' is not an [[address]]" in err
    assert "none configured" in err
