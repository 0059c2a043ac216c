"""A hand-built week of tickets with known timestamps, and the figures expected from it.

Every expected number below is worked out by hand in the comments, from the rows
this module writes straight into the database (no pipeline: the point is to
check the arithmetic of gateway/jobs/reports.py, not the workflow that produces rows).

Period: [2026-03-02 00:00, 2026-03-09 00:00) UTC; "now" is 2026-03-10, so the
SLA is judged at the period's end (+168 h). Times are hours after the start.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from storage.models import Event, SlaMark, SurveyResponse, Ticket

START = datetime(2026, 3, 2, tzinfo=timezone.utc)
END = START + timedelta(days=7)
NOW = START + timedelta(days=8)
ALICE = "alice@support.example.com"
BOB = "bob@support.example.com"
CAROL = "carol@support.example.com"
DAVE = "dave@support.example.com"
CUSTOMER = "wang@bigbank.example"


def h(hours: float) -> datetime:
    return START + timedelta(hours=hours)


# name: priority, created, first response, fr due, resolved, resolution due, status, paused_at
TICKETS = {
    "T1": ("P1", 1, 1.5, 2, 5, 9, "resolved", None),         # FR 1800 s met; res 14400 s met
    "T2": ("P1", 10, 13, 11, 30, 18, "closed", None),        # FR 10800 s late; res 72000 s late
    "T3": ("P2", 24, 25, 28, None, 48, "open", None),        # FR 3600 s met; res due +48 passed: breached
    "T4": ("P2", 48, 50, 52, None, 100, "pending", 60),      # FR 7200 s met; res due moves to 100+108=208: running
    "T5": ("P2", 72, None, 80, None, 200, "new", None),      # FR not done, due passed: breached; res running
    "T6": ("P3", 100, 100.5, 108, None, 300, "open", None),  # FR 1800 s met; resolved +110, reopened +115
    "T7": ("P3", -48, -47, -40, 20, 0, "resolved", None),    # opened before the period; res 68 h = 244800 s
    "T8": ("P4", 150, None, 200, None, None, "new", None),   # FR running by due, but a breach mark: breached
    "T9": ("P1", 170, None, None, None, None, "new", None),  # after the period: not counted
}

# kind, ticket, at (hours), actor, data
EVENTS = [
    ("status", "T1", 5, ALICE, {"old": "open", "new": "resolved"}),
    ("time", "T1", 4, ALICE, {"minutes": 30}),
    ("handover", "T2", 12, "system", {"primary": ALICE, "secondary": BOB, "reason": "out of office"}),
    ("time", "T2", 20, ALICE, {"minutes": 45}),
    ("time", "T2", 25, BOB, {"minutes": 60}),
    ("status", "T2", 30, BOB, {"old": "open", "new": "resolved"}),
    ("status", "T2", 40, BOB, {"old": "resolved", "new": "closed"}),
    ("handover", "T3", 30, CAROL, {"primary": BOB, "secondary": ALICE, "reason": "#handover"}),
    ("status", "T6", 110, DAVE, {"old": "open", "new": "resolved"}),
    ("reopened", "T6", 115, CUSTOMER, {"old": "resolved"}),
    ("status", "T6", 115, CUSTOMER, {"old": "resolved", "new": "open"}),
    ("status", "T7", 20, BOB, {"old": "open", "new": "resolved"}),
    ("time", "T7", -10, ALICE, {"minutes": 100}),           # before the period: not counted
    ("customer_reply", "T3", 26, CUSTOMER, {}),
]

# ticket, kind, at
MARKS = [("T8", "first_response_breach", 160), ("T2", "first_response_breach", 11)]

# ticket, score, engineers, at
RESPONSES = [("T1", 5, [ALICE], 6), ("T2", 2, [ALICE, BOB], 41), ("T7", 4, [BOB], 21), ("T1", 1, [ALICE], 170)]

EXPECTED_TICKETS = {
    "opened": 7,              # T1-T6, T8
    "closed": 4,              # T1, T2, T6, T7 (T2 counted once though resolved then closed)
    "resolved_of_opened": 2,  # T1, T2 (T6 was reopened)
    "resolution_rate": 0.2857,  # 2 / 7
    "reopened": 1,            # T6
    "reopen_rate": 0.25,      # 1 / 4
}
# sorted first-response seconds: 1800, 1800, 3600, 7200, 10800 -> median 3600; p90 rank ceil(4.5)=5 -> 10800
EXPECTED_FIRST_RESPONSE = {"count": 5, "median_seconds": 3600.0, "p90_seconds": 10800.0}
# resolution seconds: T1 14400, T2 72000, T7 244800 -> median 72000; p90 rank ceil(2.7)=3 -> 244800
EXPECTED_RESOLUTION = {"count": 3, "median_seconds": 72000.0, "p90_seconds": 244800.0}
EXPECTED_SLA = {
    "P1": {"tickets": 2, "first_response": {"met": 1, "breached": 1, "compliance": 0.5},
           "resolution": {"met": 1, "breached": 1, "compliance": 0.5}},
    "P2": {"tickets": 3, "first_response": {"met": 2, "breached": 1, "compliance": 0.6667},
           "resolution": {"met": 0, "breached": 1, "compliance": 0.0}},
    "P3": {"tickets": 1, "first_response": {"met": 1, "breached": 0, "compliance": 1.0},
           "resolution": {"met": 0, "breached": 0, "compliance": None}},
    "P4": {"tickets": 1, "first_response": {"met": 0, "breached": 1, "compliance": 0.0},
           "resolution": {"met": 0, "breached": 0, "compliance": None}},
}
# (5 + 2 + 4) / 3 = 3.67; the response at +170 h is outside
EXPECTED_SATISFACTION = {"responses": 3, "average": 3.67, "distribution": {"1": 0, "2": 1, "3": 0, "4": 1, "5": 1}}
# alice: T1, T2 acted; handover T2 given, T3 taken; 30 + 45 min; responses T1 5, T2 2 -> 3.5
# bob: T2, T7; T3 given, T2 taken; 60 min; T2 2, T7 4 -> 3.0
# carol: T3 (the handover command); dave: T6
EXPECTED_ENGINEERS = [
    {"email": ALICE, "tickets_handled": 2, "handovers_given": 1, "handovers_taken": 1, "time_minutes": 75,
     "survey_responses": 2, "satisfaction": 3.5},
    {"email": BOB, "tickets_handled": 2, "handovers_given": 1, "handovers_taken": 1, "time_minutes": 60,
     "survey_responses": 2, "satisfaction": 3.0},
    {"email": CAROL, "tickets_handled": 1, "handovers_given": 0, "handovers_taken": 0, "time_minutes": 0,
     "survey_responses": 0, "satisfaction": None},
    {"email": DAVE, "tickets_handled": 1, "handovers_given": 0, "handovers_taken": 0, "time_minutes": 0,
     "survey_responses": 0, "satisfaction": None},
]


def load(app) -> dict[str, int]:
    """Write the fixture rows; returns ticket ids by name."""
    ids = {}
    with app.db.session() as s:
        for name, (prio, created, fr, fr_due, resolved, res_due, status, paused) in TICKETS.items():
            opt = lambda v: None if v is None else h(v)  # noqa: E731
            t = Ticket(subject=f"fixture {name}", status=status, priority=prio, requester_email=CUSTOMER,
                       owner=ALICE, handler=ALICE, created_at=h(created), updated_at=h(created),
                       first_responded_at=opt(fr), first_response_due=opt(fr_due),
                       resolved_at=opt(resolved), resolution_due=opt(res_due), paused_at=opt(paused),
                       closed_at=h(40) if status == "closed" else None)
            s.add(t)
            s.flush()
            t.ref = f"TS-{t.id:06d}"
            ids[name] = t.id
        for kind, name, at, actor, data in EVENTS:
            s.add(Event(ticket_id=ids[name], at=h(at), kind=kind, actor=actor, detail="fixture", data=data))
        for name, kind, at in MARKS:
            s.add(SlaMark(ticket_id=ids[name], kind=kind, deadline=h(at), at=h(at)))
        for name, score, engineers, at in RESPONSES:
            s.add(SurveyResponse(ticket_id=ids[name], score=score, comment="", engineers=engineers, at=h(at)))
    return ids
