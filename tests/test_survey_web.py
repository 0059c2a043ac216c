"""The optional one-click survey endpoint: signed, single use, GET never records."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request

import pytest

from gateway.edges.web import WebServer
from tests.closure_kit import (
    events, flush, open_ticket, outbox_rows, resolve, responses, text_of, ticket, to_customer,
)


@pytest.fixture
def web(make_app):
    app = make_app(workflow={"survey_url": "http://127.0.0.1:0"})
    server = WebServer(app, "127.0.0.1", 0).start()
    yield app, server.base_url
    server.stop()


def _links(app, tid, base) -> dict[int, str]:
    [mail] = [m for m in to_customer(flush(app)) if "Resolved" in m["msg"]["Subject"]]
    out = {}
    for line in text_of(mail["msg"]).splitlines():
        if "/survey/" in line:
            score, url = line.strip().split(": ", 1)
            out[int(score)] = base + "/survey/" + url.rsplit("/survey/", 1)[1]
    return out


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def _post(url, comment=""):
    data = urllib.parse.urlencode({"comment": comment}).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, method="POST"), timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def _resolved(app, base):
    tid = open_ticket(app)
    flush(app)
    resolve(app, tid)
    return tid, _links(app, tid, base)


def test_get_confirms_and_post_records_once(web):
    app, base = web
    tid, links = _resolved(app, base)
    assert sorted(links) == [1, 2, 3, 4, 5]
    status, page = _get(links[5])
    assert status == 200 and "5 out of 5" in page and "<form" in page
    assert responses(app) == []  # a link scanner opening the URL records nothing

    status, page = _post(links[5], "quick & <b>clear</b>")
    assert status == 200 and "Thank you" in page
    [r] = responses(app)
    assert (r.score, r.comment, r.ticket_id) == (5, "quick & <b>clear</b>", tid)
    assert events(app, tid, "survey")[-1].data["via"] == "link"

    status, page = _post(links[4])  # single use: another score from the same survey is refused
    assert status == 200 and "Already recorded" in page
    assert [r.score for r in responses(app)] == [5]
    assert "Already recorded" in _get(links[3])[1]


def test_tampered_token_is_refused(web):
    app, base = web
    tid, links = _resolved(app, base)
    forged = links[5].replace(f"/survey/{tid}.", f"/survey/{tid + 1}.")
    assert _get(forged)[0] == 404
    assert _post(links[5][:-2] + "aa")[0] == 404
    assert _get(base + "/etc/passwd")[0] == 404
    assert responses(app) == []


def test_low_score_link_reopens_and_old_links_expire(web):
    app, base = web
    tid, links = _resolved(app, base)
    status, page = _post(links[1], "nobody called")
    assert status == 200 and "reopened" in page
    assert ticket(app, tid).status == "open"
    assert outbox_rows(app, "low_score_alert")
    assert _get(links[5])[0] == 410  # the ticket was reopened: this survey is over
