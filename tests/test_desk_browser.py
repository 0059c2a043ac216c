"""The desk pages in a real browser: Playwright driving Debian's chromium.

An engineer signs in through the link the gateway mails, reads the queue, opens a
ticket; a customer of another team's ticket is not shown, and that ticket's page is
refused. Screenshots of each page go to <tmp>/screenshots (the path is printed) for
a person to look at.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import free_port, wait_for
from tests.mail import body_text, build, parse, send

CHROMIUM = "/usr/bin/chromium"
SUPPORT = "support@support.example.test"
CUSTOMER = "wang@bigbank.example"  # bigbank / core-banking: support team, alice primary
SECRET_CUSTOMER = "reporter@hush-demo.example"  # writes to security@: the security team's ticket
ALICE = "alice@support.example.com"


@pytest.fixture
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt install chromium (.ci/run does)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def _link(relay, rcpt):
    for m in reversed(list(relay.messages)):
        if rcpt in m["to"]:
            text = body_text(parse(m["raw"]))
            found = re.search(r"https?://\S+/desk/login/\S+", text)
            if found:
                return found.group(0)
    return None


def test_an_engineer_signs_in_by_mail_and_sees_only_their_teams_tickets(running, relay, browser, tmp_path):
    web = free_port()
    gw = running(web={"listen": f"127.0.0.1:{web}"})
    base = f"http://127.0.0.1:{web}"
    shots = tmp_path / "screenshots"
    shots.mkdir()
    send(gw.smtp_port, build(frm=CUSTOMER, name="Wang Customer", subject="Batch job fails",
                             body="The nightly batch fails with code 7.\n"), CUSTOMER, [SUPPORT])
    send(gw.smtp_port, build(frm=SECRET_CUSTOMER, name="Quiet Reporter", to="security@support.example.test",
                             subject="Possible vulnerability", body="Details inside.\n"),
         SECRET_CUSTOMER, ["security@support.example.test"])
    wait_for(lambda: len([m for m in list(relay.messages) if CUSTOMER in m["to"] or SECRET_CUSTOMER in m["to"]]) >= 2,
             timeout=30, what="both acknowledgements")
    page = browser.new_page()
    page.goto(base + "/desk")
    assert page.url.endswith("/desk/login")
    page.screenshot(path=str(shots / "1-login.png"), full_page=True)
    page.fill("input[name=email]", "stranger@elsewhere.example")
    page.click("button")
    assert "sign-in link is on its way" in page.inner_text("#message")
    page.goto(base + "/desk/login")
    page.fill("input[name=email]", ALICE)
    page.click("button")
    page.screenshot(path=str(shots / "2-link-sent.png"), full_page=True)
    link = wait_for(lambda: _link(relay, ALICE), timeout=30, what="the sign-in mail to alice")
    assert _link(relay, "stranger@elsewhere.example") is None  # nobody else gets one
    page.goto(link.replace("http://testserver", base))
    assert page.url == base + "/desk"
    queue = page.inner_text("body")
    page.screenshot(path=str(shots / "3-queue.png"), full_page=True)
    assert "Batch job fails" in queue and CUSTOMER in queue
    assert SECRET_CUSTOMER not in page.content() and "vulnerability" not in queue.lower()
    cookie = [c for c in page.context.cookies() if c["name"] == "supportgw_desk"][0]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"

    page.click("text=Batch job fails >> xpath=../td[1]/a")
    page.wait_for_selector("h1")
    assert "Batch job fails" in page.inner_text("h1")
    assert "code 7" in page.inner_text("body")
    assert "Alice Wang" in page.inner_text("#chain")  # who holds it, since routing
    page.screenshot(path=str(shots / "4-ticket.png"), full_page=True)
    page.goto(base + "/desk?lang=zh-CN")
    assert "工单队列" in page.inner_text("body")
    page.screenshot(path=str(shots / "5-queue-zh.png"), full_page=True)

    from sqlalchemy import select

    from storage.models import Ticket
    with gw.app.db.session() as s:
        secret_ref = s.execute(select(Ticket.ref).where(Ticket.requester_email == SECRET_CUSTOMER)).scalar_one()
    resp = page.goto(f"{base}/desk/ticket/{secret_ref}")
    assert resp.status == 404 and SECRET_CUSTOMER not in page.content()
    page.screenshot(path=str(shots / "6-other-team-refused.png"), full_page=True)

    # the link was single use: a second browser cannot reuse it
    other = browser.new_page()
    resp = other.goto(link.replace("http://testserver", base))
    assert resp.status == 403 and other.url.endswith(link.rsplit("/", 1)[1])
    keep = Path("/tmp/supportgw-desk-screenshots")
    shutil.rmtree(keep, ignore_errors=True)
    shutil.copytree(shots, keep)
    print(f"screenshots: {keep}")


def _sign_in(page, base, relay, address):
    page.goto(base + "/desk/login")
    page.fill("input[name=email]", address)
    page.click("button")
    link = wait_for(lambda: _link(relay, address), timeout=30, what=f"the sign-in mail to {address}")
    page.goto(link)
    assert page.url == base + "/desk", page.url


def test_a_manager_sees_the_report_with_charts_an_engineer_does_not(running, relay, browser, tmp_path):
    web = free_port()
    gw = running(web={"listen": f"127.0.0.1:{web}"})
    base = f"http://127.0.0.1:{web}"
    for i in range(3):
        send(gw.smtp_port, build(frm=CUSTOMER, name="Wang Customer", subject=f"Batch job {i} fails",
                                 body="It fails.\n"), CUSTOMER, [SUPPORT])
    wait_for(lambda: len([m for m in list(relay.messages) if CUSTOMER in m["to"]]) >= 3, timeout=30,
             what="three acknowledgements")
    carol = browser.new_page()
    _sign_in(carol, base, relay, "carol@support.example.com")
    carol.click("text=Report")
    assert carol.url == base + "/desk/report"
    assert carol.locator("svg").count() >= 6
    assert carol.locator("svg").first.locator("title").last.text_content().endswith(": 3")  # this week's volume
    assert "Per customer" in carol.inner_text("body")
    _captions_shown(carol, "en")
    carol.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    carol.goto(base + "/desk/report?lang=zh-CN")
    assert "每周新建工单" in carol.inner_text("body")
    _captions_shown(carol, "zh-CN")
    carol.screenshot(path=str(tmp_path / "report-zh.png"), full_page=True)
    alice = browser.new_page()
    _sign_in(alice, base, relay, ALICE)
    assert alice.locator("text=Report").count() == 0
    assert alice.goto(base + "/desk/report").status == 404
    keep = Path("/tmp/supportgw-desk-screenshots")
    keep.mkdir(exist_ok=True)
    for f in ("report.png", "report-zh.png"):
        assert (tmp_path / f).stat().st_size > 10_000  # a page was drawn, not an empty file
        shutil.copy(tmp_path / f, keep / f)
    print(f"screenshots: {keep}")


def _captions_shown(page, lang):
    """Every chart is a figure with a visible caption in the page's language, which is also the
    accessible name of its SVG (what a screen reader says); times show median and p90."""
    from gateway.jobs.report_charts import CHARTS

    figures = page.locator("figure.chart")
    assert figures.count() == len(CHARTS)
    for i, c in enumerate(CHARTS):
        fig = figures.nth(i)
        assert fig.locator("figcaption").inner_text().strip() == c.caption[lang]
        svg = fig.locator("svg")
        assert svg.get_attribute("role") == "img"
        title = page.locator("#" + svg.get_attribute("aria-labelledby"))
        assert title.text_content() == c.caption[lang]
        for label in c.labels[lang]:  # the legend names every series
            assert label in svg.text_content()
    body = page.inner_text("body")
    assert ("90th percentile" if lang == "en" else "第 90 百分位") in body
    assert ("median / p90" if lang == "en" else "中位数 / P90") in body  # the per-customer table too
