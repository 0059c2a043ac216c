"""Business-hours arithmetic: weekends, holidays, adjusted working days, time zones, DST."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.calendar import add_business_time, business_time_between, is_working_time, sla_deadlines
from routing.compiler import calendar_from
from routing.config import CalendarModel
from routing.loader import load_rules

SH = ZoneInfo("Asia/Shanghai")
BER = ZoneInfo("Europe/Berlin")
UTC = timezone.utc
WEEK = ("mon", "tue", "wed", "thu", "fri")


def cal(name="cn", tz="Asia/Shanghai", hours="09:00-18:00", days=WEEK, **extra):
    return calendar_from(name, CalendarModel.model_validate(
        {"timezone": tz, "hours": {d: hours for d in days}, **extra}))


CN = cal(holidays=["2026-01-01..2026-01-03", "2026-02-15..2026-02-23", "2026-10-01..2026-10-07"],
         workdays=["2026-01-04", "2026-02-14", "2026-02-28", "2026-09-20", "2026-10-10"])
LUNCH = cal("lunch", hours=["09:00-12:00", "13:00-18:00"])
BERLIN = cal("berlin", tz="Europe/Berlin", hours="09:00-17:00")
BERLIN_24 = cal("berlin24", tz="Europe/Berlin", hours="00:00-24:00",
                days=("mon", "tue", "wed", "thu", "fri", "sat", "sun"))
BERLIN_NIGHT = cal("night", tz="Europe/Berlin", hours="01:00-04:00", days=("sun",))


def sh(*a):
    return datetime(*a, tzinfo=SH)


def ber(*a, fold=0):
    return datetime(*a, tzinfo=BER, fold=fold)


def utc(*a):
    return datetime(*a, tzinfo=UTC)


H = timedelta(hours=1)

ADD_CASES = [
    # (what it shows, calendar, start, delta, expected end)
    ("friday 17:00 + 2h -> monday 10:00", CN, sh(2026, 3, 6, 17), 2 * H, sh(2026, 3, 9, 10)),
    ("ending exactly at closing stays that day", CN, sh(2026, 3, 6, 17), 1 * H, sh(2026, 3, 6, 18)),
    ("start on saturday", CN, sh(2026, 3, 7, 10), 1 * H, sh(2026, 3, 9, 10)),
    ("start before opening", CN, sh(2026, 3, 9, 7), 1 * H, sh(2026, 3, 9, 10)),
    ("start after closing", CN, sh(2026, 3, 9, 19), H / 2, sh(2026, 3, 10, 9, 30)),
    ("three whole days", CN, sh(2026, 3, 9, 9), 27 * H, sh(2026, 3, 11, 18)),
    ("over the national-day week", CN, sh(2026, 9, 30, 17), 2 * H, sh(2026, 10, 8, 10)),
    ("new-year holiday then sunday 1-4 is worked", CN, sh(2025, 12, 31, 17), 2 * H, sh(2026, 1, 4, 10)),
    ("adjusted saturday 2-14 is a working day", CN, sh(2026, 2, 13, 17), 2 * H, sh(2026, 2, 14, 10)),
    ("spring festival: 2-14 then 2-24", CN, sh(2026, 2, 14, 17), 2 * H, sh(2026, 2, 24, 10)),
    ("lunch break is skipped", LUNCH, sh(2026, 3, 9, 11, 30), 1 * H, sh(2026, 3, 9, 13, 30)),
    ("start inside lunch", LUNCH, sh(2026, 3, 9, 12, 15), 1 * H, sh(2026, 3, 9, 14)),
    ("berlin friday before DST to monday after",
     BERLIN, ber(2026, 3, 27, 16), 2 * H, utc(2026, 3, 30, 8)),
    ("berlin 8h on a CET day", BERLIN, utc(2026, 3, 27, 8), 8 * H, utc(2026, 3, 27, 16)),
    ("berlin 8h on a CEST day", BERLIN, utc(2026, 3, 30, 7), 8 * H, utc(2026, 3, 30, 15)),
    ("around the clock across spring-forward: 24h real", BERLIN_24,
     ber(2026, 3, 28, 12), 24 * H, ber(2026, 3, 29, 13)),
    ("around the clock across fall-back: 24h real", BERLIN_24,
     ber(2026, 10, 24, 12), 24 * H, ber(2026, 10, 25, 11)),
    ("same instant, shanghai calendar", CN, utc(2026, 3, 30, 7), 4 * H, utc(2026, 3, 31, 2)),
    ("same instant, berlin calendar", BERLIN, utc(2026, 3, 30, 7), 4 * H, utc(2026, 3, 30, 11)),
    ("zero is the start itself, even when closed", CN, sh(2026, 3, 7, 3), timedelta(0), sh(2026, 3, 7, 3)),
]


@pytest.mark.parametrize("what,calendar,start,delta,expected", ADD_CASES, ids=[c[0] for c in ADD_CASES])
def test_add_business_time(what, calendar, start, delta, expected):
    got = add_business_time(start, delta, calendar)
    assert got == expected
    assert got.tzinfo == UTC


BETWEEN_CASES = [
    ("weekend is not counted", CN, sh(2026, 3, 6, 17), sh(2026, 3, 9, 10), 2 * H),
    ("backwards is negative", CN, sh(2026, 3, 9, 10), sh(2026, 3, 6, 17), -2 * H),
    ("a holiday week counts nothing", CN, sh(2026, 10, 1, 0), sh(2026, 10, 8, 0), timedelta(0)),
    ("the adjusted saturday counts", CN, sh(2026, 10, 10, 0), sh(2026, 10, 11, 0), 9 * H),
    ("spring-forward night: 01:00-04:00 wall is 2 real hours", BERLIN_NIGHT,
     ber(2026, 3, 29, 0), ber(2026, 3, 29, 6), 2 * H),
    ("fall-back night: 01:00-04:00 wall is 4 real hours", BERLIN_NIGHT,
     ber(2026, 10, 25, 0), ber(2026, 10, 25, 6), 4 * H),
    ("an ordinary sunday night is 3 hours", BERLIN_NIGHT, ber(2026, 3, 22, 0), ber(2026, 3, 22, 6), 3 * H),
    ("the repeated hour counts twice", BERLIN_NIGHT,
     ber(2026, 10, 25, 2, 30, fold=0), ber(2026, 10, 25, 2, 30, fold=1), 1 * H),
]


@pytest.mark.parametrize("what,calendar,a,b,expected", BETWEEN_CASES, ids=[c[0] for c in BETWEEN_CASES])
def test_business_time_between(what, calendar, a, b, expected):
    assert business_time_between(a, b, calendar) == expected


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="naive"):
        add_business_time(datetime(2026, 3, 6, 17), H, CN)


def test_a_calendar_that_never_opens_fails_instead_of_looping():
    closed = cal("closed", holidays=["2026-01-01..2029-12-31"])
    with pytest.raises(ValueError, match="no working time"):
        add_business_time(sh(2026, 1, 1), H, closed)


CALENDARS = st.sampled_from([CN, LUNCH, BERLIN, BERLIN_24, BERLIN_NIGHT])
STARTS = st.datetimes(min_value=datetime(2025, 12, 1), max_value=datetime(2026, 12, 31),
                      timezones=st.sampled_from([SH, BER, UTC, ZoneInfo("America/New_York")]))
DELTAS = st.integers(min_value=0, max_value=60 * 24 * 5).map(lambda m: timedelta(minutes=m))


@settings(max_examples=300, deadline=None)
@given(calendar=CALENDARS, start=STARTS, delta=DELTAS)
def test_add_then_between_round_trips(calendar, start, delta):
    end = add_business_time(start, delta, calendar)
    assert business_time_between(start, end, calendar) == delta
    assert end >= start


@settings(max_examples=200, deadline=None)
@given(calendar=CALENDARS, start=STARTS, d1=DELTAS, d2=DELTAS)
def test_more_business_time_never_ends_earlier(calendar, start, d1, d2):
    lo, hi = sorted((d1, d2))
    assert add_business_time(start, lo, calendar) <= add_business_time(start, hi, calendar)


@settings(max_examples=200, deadline=None)
@given(calendar=CALENDARS, start=STARTS, delta=DELTAS.filter(bool))
def test_a_deadline_falls_in_working_time(calendar, start, delta):
    end = add_business_time(start, delta, calendar)
    assert calendar.is_open(end - timedelta(microseconds=1))


# --- SLA deadlines and working time of people, from the shipped sample rules ---------------

@pytest.fixture(scope="module")
def sample():
    return load_rules()


SLA_CASES = [
    # priority, tier, created, first response due, resolution due
    ("P1", "standard", sh(2026, 3, 6, 17), sh(2026, 3, 6, 17, 30), sh(2026, 3, 6, 21)),
    ("P1", "strategic", sh(2026, 3, 7, 3), sh(2026, 3, 7, 3, 15), sh(2026, 3, 7, 7)),
    ("P2", "key", sh(2026, 3, 6, 17), sh(2026, 3, 9, 10), sh(2026, 3, 9, 17)),  # 1d = 9 working hours
    ("P3", "key", sh(2026, 9, 30, 16), sh(2026, 10, 8, 11), sh(2026, 10, 10, 16)),  # 10-10 is worked
    # 1d/5d = 9h/45h: friday 9h, adjusted saturday 9h, spring festival, then tue-thu
    ("P4", "standard", sh(2026, 2, 13, 9), sh(2026, 2, 13, 18), sh(2026, 2, 26, 18)),
]


@pytest.mark.parametrize("prio,tier,created,first,resolution", SLA_CASES)
def test_sla_deadlines_per_priority(sample, prio, tier, created, first, resolution):
    terms = sample.sla_for(prio, tier)
    assert sla_deadlines(terms, created, terms.calendar) == (first, resolution)


WORKING_CASES = [
    ("alice, shanghai monday 10:00", "alice", sh(2026, 3, 9, 10), True),
    ("alice, 3 a.m.", "alice", sh(2026, 3, 9, 3), False),
    ("alice, national day", "alice", sh(2026, 10, 2, 10), False),
    ("dave works in berlin: 10:00 CEST", "dave", utc(2026, 3, 30, 8), True),
    ("dave at shanghai 10:00 is 04:00 in berlin", "dave", sh(2026, 3, 30, 10), False),
    ("dave on good friday", "dave", ber(2026, 4, 3, 10), False),
    ("sam's own hours include saturday", "sam", sh(2026, 3, 7, 11), True),
    ("sam's evening", "sam", sh(2026, 3, 9, 19, 30), True),
]


@pytest.mark.parametrize("what,eid,at,expected", WORKING_CASES, ids=[c[0] for c in WORKING_CASES])
def test_is_working_time(sample, what, eid, at, expected):
    assert is_working_time(sample.engineers[eid], at) is expected


def test_out_of_office_is_never_working_time(sample):
    from dataclasses import replace

    away = replace(sample.engineers["alice"], out_of_office=True)
    assert not is_working_time(away, sh(2026, 3, 9, 10))
