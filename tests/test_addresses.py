"""Several support addresses ([[address]]): a customer who writes to a brand's address (or
its alias) hears back from that address, under that brand's name: the acknowledgement, and
an engineer's relayed answer; their reply to it threads back onto the same ticket. Mail to
the default address is unchanged."""

from __future__ import annotations

from tests.conftest import wait_for
from tests.engineer_mail import ALICE, latest_ticket_id, messages, reply_to, ticket
from tests.mail import build, parse, send

BRAND = "help@brand-b.example"
ALIAS = "care@brand-b.example"
CUSTOMER = "li.wei@bigbank.example"
ADDRESSES = {"address": [{"address": BRAND, "aliases": [ALIAS], "display_name": "Brand B Care",
                          "language": "en", "team": "brand-b"}]}


def _to(relay, rcpt):
    return [m for m in list(relay.messages) if rcpt in m["to"]]


def test_mail_to_a_brand_alias_is_answered_from_the_brand_address_under_its_name(running, relay):
    gw = running(**ADDRESSES)
    send(gw.smtp_port, build(frm=CUSTOMER, to=ALIAS, subject="Website returns 502", msgid="<b1@bigbank.example>",
                             body="Hello,\nour website returns 502 since 9:00.\n"), CUSTOMER, [ALIAS])
    ack = parse(wait_for(lambda: _to(relay, CUSTOMER), what="acknowledgement")[0]["raw"])
    assert ack["From"].addresses[0].addr_spec == BRAND
    assert ack["From"].addresses[0].display_name == "Brand B Care"
    assert ack["Reply-To"].addresses[0].domain == "brand-b.example"  # the customer's answer comes back to it
    tid = latest_ticket_id(gw.app)
    t = ticket(gw.app, tid)
    assert t.address == BRAND and t.team == "brand-b"

    note = parse(wait_for(lambda: _to(relay, ALICE), what="notification to the engineer")[0]["raw"])
    send(gw.smtp_port, reply_to(note, "Please restart nginx.", style="gmail"), ALICE,
         [note["Reply-To"].addresses[0].addr_spec])
    answer = parse(wait_for(lambda: _to(relay, CUSTOMER)[1:], what="the relayed answer")[0]["raw"])
    assert answer["From"].addresses[0].addr_spec == BRAND
    assert answer["From"].addresses[0].display_name == "Alice (Brand B Care)"

    back = answer["Reply-To"].addresses[0].addr_spec
    send(gw.smtp_port, build(frm=CUSTOMER, to=back, subject="Re: Website returns 502", msgid="<b2@bigbank.example>",
                             in_reply_to=answer["Message-ID"], body="Restarted, still 502.\n"), CUSTOMER, [back])
    wait_for(lambda: len([m for m in messages(gw.app, tid) if m.direction == "in"]) >= 2,
             what="the customer's reply on the same ticket")
    assert latest_ticket_id(gw.app) == tid


def test_mail_to_the_default_address_still_comes_from_it(running, relay):
    gw = running(**ADDRESSES)
    send(gw.smtp_port, build(frm=CUSTOMER, subject="Printer on fire", msgid="<d1@bigbank.example>"), CUSTOMER,
         ["support@support.example.test"])
    ack = parse(wait_for(lambda: _to(relay, CUSTOMER), what="acknowledgement")[0]["raw"])
    assert ack["From"].addresses[0].addr_spec == "support@support.example.test"
    assert ack["From"].addresses[0].display_name == "Example Support"
    assert ticket(gw.app, latest_ticket_id(gw.app)).address == ""


def test_reports_split_by_the_address_written_to(running, relay):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from gateway.jobs import weekly_report

    gw = running(**ADDRESSES)
    send(gw.smtp_port, build(frm=CUSTOMER, to=ALIAS, subject="Brand B: 502", msgid="<r1@bigbank.example>"),
         CUSTOMER, [ALIAS])
    send(gw.smtp_port, build(frm=CUSTOMER, subject="Default: printer", msgid="<r2@bigbank.example>"), CUSTOMER,
         ["support@support.example.test"])
    send(gw.smtp_port, build(frm="bob@other.example", to=BRAND, subject="Brand B: login", msgid="<r3@other.example>"),
         "bob@other.example", [BRAND])
    wait_for(lambda: len(_to(relay, CUSTOMER)) >= 2 and _to(relay, "bob@other.example"), what="three tickets")
    today = datetime.now(ZoneInfo(gw.app.config.report.timezone)).date()
    with gw.app.db.session() as s:
        report = weekly_report.build(gw.app, s, today, today, by=["address"])
    groups = {g["key"]: g for g in report["by"]["address"]}
    assert {k: g["tickets"]["opened"] for k, g in groups.items()} == {BRAND: 2, "": 1}
    assert groups[BRAND]["name"] == f"Brand B Care <{BRAND}>"
    assert groups[""]["name"] == "Example Support <support@support.example.test>"
    text = weekly_report.render(gw.app, report).text
    assert "By support address" in text and f"Brand B Care <{BRAND}>" in text


def test_a_brand_has_its_own_signature_and_templates_folder(running, relay, tmp_path):
    folder = tmp_path / "brand-b-templates" / "en"
    folder.mkdir(parents=True)
    (folder / "acknowledgement.j2").write_text(
        "{% block subject %}Brand B received your request {{ ticket.ref }}{% endblock %}\n"
        "{% block text %}\nHi {{ customer_name }}, Brand B Care has your request {{ ticket.ref }}.\n"
        "{{ signature }}\n{% endblock %}\n", encoding="utf-8")
    brand = dict(ADDRESSES["address"][0], signature="Brand B Care | https://brand-b.example/help",
                 templates="brand-b-templates")
    gw = running(address=[brand])
    send(gw.smtp_port, build(frm=CUSTOMER, to=BRAND, subject="Website returns 502", msgid="<s1@bigbank.example>"),
         CUSTOMER, [BRAND])
    ack = parse(wait_for(lambda: _to(relay, CUSTOMER), what="acknowledgement")[0]["raw"])
    ref = ticket(gw.app, latest_ticket_id(gw.app)).ref
    assert ack["Subject"] == f"Brand B received your request {ref}"  # the brand's own template
    assert "Brand B Care | https://brand-b.example/help" in ack.get_body(("plain",)).get_content()

    note = parse(wait_for(lambda: _to(relay, ALICE), what="notification")[0]["raw"])
    send(gw.smtp_port, reply_to(note, "Please restart nginx.", style="gmail"), ALICE,
         [note["Reply-To"].addresses[0].addr_spec])
    answer = parse(wait_for(lambda: _to(relay, CUSTOMER)[1:], what="the relayed answer")[0]["raw"])
    text = answer.get_body(("plain",)).get_content()
    assert "Please restart nginx." in text and "Brand B Care | https://brand-b.example/help" in text  # default relay.j2

    send(gw.smtp_port, build(frm="bob@other.example", subject="Printer", msgid="<s2@other.example>"),
         "bob@other.example", ["support@support.example.test"])
    plain = parse(wait_for(lambda: _to(relay, "bob@other.example"), what="default acknowledgement")[0]["raw"])
    assert not plain["Subject"].startswith("Brand B")
    assert "brand-b.example" not in plain.get_body(("plain",)).get_content()


def test_a_brands_language_is_the_language_its_customers_are_answered_in(running, relay):
    """A brand for a Chinese market (`language = "zh-CN"`): an English mail to it still opens a
    Chinese ticket, answered in Chinese; the default address keeps the detected language."""
    zh = {"address": [{"address": BRAND, "display_name": "B 品牌客服", "language": "zh-CN"}]}
    gw = running(**zh)
    send(gw.smtp_port, build(frm=CUSTOMER, to=BRAND, subject="Website returns 502", msgid="<z1@bigbank.example>",
                             body="Hello,\nour website returns 502 since 9:00.\n"), CUSTOMER, [BRAND])
    ack = parse(wait_for(lambda: _to(relay, CUSTOMER), what="acknowledgement")[0]["raw"])
    assert ticket(gw.app, latest_ticket_id(gw.app)).language == "zh-CN"
    assert "我们已收到您的问题" in ack["Subject"]
    assert "您好" in ack.get_body(preferencelist=("plain",)).get_content()
    send(gw.smtp_port, build(frm="ann@other.example", subject="Printer on fire", msgid="<z2@other.example>"),
         "ann@other.example", ["support@support.example.test"])
    wait_for(lambda: _to(relay, "ann@other.example"), what="the default address's acknowledgement")
    assert ticket(gw.app, latest_ticket_id(gw.app)).language == "en"
