"""Report figures against a hand-computed week of tickets (tests/report_fixture.py)."""

from __future__ import annotations

from gateway.jobs.reports import build_report, median, p90
from tests import report_fixture as fx


def _report(app):
    names = {e.email: e.name for e in app.rules.current.engineers.values()}
    with app.db.session() as s:
        return build_report(s, fx.START, fx.END, now=fx.NOW, engineers=names)


def test_median_and_p90_definitions():
    assert median([]) is None and p90([]) is None
    assert median([3, 1, 2, 10]) == 2.5  # mean of the middle two
    assert p90(list(range(1, 11))) == 9  # nearest rank: ceil(0.9 * 10) = 9th
    assert p90(list(range(1, 12))) == 10  # ceil(9.9) = 10th
    assert p90([7]) == 7


def test_volumes_rates_and_times(app):
    fx.load(app)
    r = _report(app)
    assert r["tickets"] == fx.EXPECTED_TICKETS
    assert r["first_response"] == fx.EXPECTED_FIRST_RESPONSE
    assert r["resolution"] == fx.EXPECTED_RESOLUTION


def test_sla_compliance_per_priority(app):
    fx.load(app)
    assert _report(app)["sla"] == fx.EXPECTED_SLA


def test_satisfaction(app):
    fx.load(app)
    assert _report(app)["satisfaction"] == fx.EXPECTED_SATISFACTION


def test_per_engineer(app):
    fx.load(app)
    rows = _report(app)["engineers"]
    assert [{k: v for k, v in row.items() if k != "name"} for row in rows] == fx.EXPECTED_ENGINEERS
    assert rows[0]["name"] == "Alice Wang 王爱丽"


def test_empty_period_has_no_figures_and_no_division_by_zero(app):
    fx.load(app)
    names = {}
    with app.db.session() as s:
        r = build_report(s, fx.END + fx.timedelta(days=30), fx.END + fx.timedelta(days=37), now=fx.NOW, engineers=names)
    assert r["tickets"]["opened"] == 0 and r["tickets"]["resolution_rate"] is None
    assert r["first_response"] == {"count": 0, "median_seconds": None, "p90_seconds": None}
    assert r["satisfaction"]["average"] is None and r["sla"] == {} and r["engineers"] == []
