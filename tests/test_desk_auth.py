"""The desk without a browser: sign-in rules (CSRF on the forms, links that expire, sessions that are
signed), and what the queue and ticket pages show an engineer signed in."""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone

import pytest
from starlette.testclient import TestClient

from gateway.edges import desk_auth
from gateway.edges.web import build_web_app
from storage.models import OutboxRow

ALICE = "alice@support.example.com"


@pytest.fixture
def client(make_app):
    app = make_app()
    with TestClient(build_web_app(app), base_url="https://desk.example.test") as c:
        yield app, c


def _outbox(app):
    with app.db.session() as s:
        return [(r.kind, r.to) for r in s.query(OutboxRow).all()]


def test_the_login_form_needs_its_csrf_token(client):
    app, c = client
    assert c.post("/desk/login", data={"email": ALICE}).status_code == 403  # no token at all
    c.get("/desk/login")
    assert c.post("/desk/login", data={"email": ALICE, "csrf": "forged"}).status_code == 403
    assert _outbox(app) == []
    token = c.cookies.get(desk_auth.CSRF_COOKIE)
    assert c.post("/desk/login", data={"email": ALICE, "csrf": token}).status_code == 200
    assert _outbox(app) == [("desk_signin", [ALICE])]


def test_strangers_get_the_same_page_and_no_mail(client):
    app, c = client
    c.get("/desk/login")
    token = c.cookies.get(desk_auth.CSRF_COOKIE)
    stranger = c.post("/desk/login", data={"email": "wang@bigbank.example", "csrf": token}).text
    engineer = c.post("/desk/login", data={"email": ALICE, "csrf": token}).text
    assert stranger == engineer
    assert _outbox(app) == [("desk_signin", [ALICE])]


def test_links_expire_and_sessions_cannot_be_forged(client, monkeypatch):
    app, c = client
    link = desk_auth.signin_token(app, ALICE)
    later = time.time() + desk_auth.LINK_MINUTES * 60 + 1
    monkeypatch.setattr(desk_auth.time, "time", lambda: later)
    assert c.get(f"/desk/login/{link}", follow_redirects=False).status_code == 403
    monkeypatch.undo()
    r = c.get(f"/desk/login/{link}", follow_redirects=False)
    assert r.status_code == 303 and "secure" in r.headers["set-cookie"].lower()  # https: Secure
    assert "httponly" in r.headers["set-cookie"].lower() and "samesite=lax" in r.headers["set-cookie"].lower()
    assert c.get("/desk", follow_redirects=False).status_code == 200
    c.cookies.clear()
    c.cookies.set(desk_auth.COOKIE, desk_auth.session_cookie(app, ALICE)[:-2] + "xx")
    assert c.get("/desk", follow_redirects=False).headers["location"] == "/desk/login"


# ---------------------------------------------------------------- the pages, signed in

CAROL = "carol@support.example.com"  # the sample rules' manager: she sees every team


def _signed_in(app, person=CAROL):
    c = TestClient(build_web_app(app), base_url="https://desk.example.test")
    c.cookies.set(desk_auth.COOKIE, desk_auth.session_cookie(app, person))
    return c


def _section(html: str, heading: str, following: str) -> set[str]:
    """The ticket refs listed between two headings of a page."""
    part = html.split(f"<h2>{heading}</h2>", 1)[1].split(f"<h2>{following}</h2>", 1)[0]
    return set(re.findall(r'href="/desk/ticket/([^"]+)"', part))


def test_the_queue_lists_tickets_at_sla_risk_then_breached_as_the_clock_moves(make_app):
    from gateway.clock import ManualClock
    from tests.sla_kit import new_ticket, ticket

    clock = ManualClock(datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc))  # Monday 09:00 in Shanghai
    app = make_app(clock=clock)
    first = ticket(app, new_ticket(app, subject="Core banking batch is slow"))
    clock.advance(minutes=45)
    second = ticket(app, new_ticket(app, subject="Core banking login fails", frm="wang@bigbank.example"))
    share = app.config.workflow.sla_warn_share

    def warned(t):  # when its first response is at risk
        return t.created_at + (t.first_response_due - t.created_at) * share

    # first: at risk, then breached while second is still fine; then second at risk, then breached
    assert warned(first) < first.first_response_due < warned(second) < second.first_response_due

    def lists():
        with _signed_in(app) as c:
            r = c.get("/desk")
        assert r.status_code == 200, r.text
        return _section(r.text, "SLA breached", "At SLA risk"), _section(r.text, "At SLA risk", "Who holds what")

    assert lists() == (set(), set())
    clock.set(warned(first))
    assert lists() == (set(), {first.ref})
    clock.set(first.first_response_due)
    assert lists() == ({first.ref}, set())
    clock.set(warned(second))
    assert lists() == ({first.ref}, {second.ref})
    clock.set(second.first_response_due)
    assert lists() == ({first.ref, second.ref}, set())


def test_the_ticket_page_marks_internal_notes_in_english_and_chinese(make_app):
    from tests.engineer_mail import ALICE as ENGINEER, Desk, messages, open_ticket, reply_to

    desk = Desk(make_app())
    tid, notification = open_ticket(desk, subject="Website returns 502",
                                    body="Hello,\nour website returns 502 since 9:00.\n")
    desk.receive(reply_to(notification, "#note\nCustomer runs the 2019 firmware, see KB-77.\n", frm=ENGINEER))
    assert [m.internal for m in messages(desk.app, tid)].count(True) == 1
    with desk.app.db.session() as s:
        from storage.models import Ticket

        ref = s.get(Ticket, tid).ref
    for lang, mark in (("en", "[internal note]"), ("zh-CN", "[内部备注]")):
        with _signed_in(desk.app) as c:
            html = c.get(f"/desk/ticket/{ref}?lang={lang}").text
        blocks = re.findall(r'<div class="msg( note)?"><strong>(.*?)</strong>\s*(.*?)</div>', html, re.S)
        noted = [(cls, head, text) for cls, head, text in blocks if "2019 firmware" in text]
        assert len(noted) == 1 and noted[0][0] == " note" and noted[0][1].endswith(mark), (lang, blocks)
        others = [b for b in blocks if "2019 firmware" not in b[2]]
        assert others and not any(mark in head or cls for cls, head, _ in others), (lang, others)
        assert html.count(mark) == 1
