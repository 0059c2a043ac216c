"""The suspended area: mail that is not a person asking for help is kept, visible and
releasable, but never enters the queue and is never answered.

Robots that refer to none of our tickets (challenge-responses to forged senders, bounces
and auto-replies of mail we never sent) and blocked senders are suspended; a robot that
does refer to a ticket is an automatic entry on it. `supportgw suspended` lists, shows,
releases (then the mail becomes what it would have been, acknowledgement included) and
drops; retention purges; the weekly report counts them; a flood tells the manager.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from gateway.jobs.suspend_jobs import alert_if_growing, purge, run_suspended_care
from storage.models import Message, OutboxRow, SpoolEntry, Ticket
from tests.conftest import corpus
from tests.hardening import acks, cli, count, push, rows, write_config
from tests.mail import build

ROBOTS = Path(__file__).parent / "robots"
SUPPORT = "support@support.example.test"


def robot(name: str) -> bytes:
    return (ROBOTS / name).read_bytes()


def spool_row(app, spool_id=None) -> SpoolEntry:
    found = rows(app, SpoolEntry) if spool_id is None else rows(app, SpoolEntry, SpoolEntry.id == spool_id)
    return found[-1]


def test_challenge_response_to_a_forged_sender_is_suspended_not_a_ticket_not_answered(app):
    counts = push(app, robot("allowed-list-challenge.eml"))
    assert counts["suspended"] == 1
    assert rows(app, Ticket) == [] and rows(app, OutboxRow) == []
    e = spool_row(app)
    assert e.status == "suspended" and e.reason == "challenge"
    assert e.raw == robot("allowed-list-challenge.eml").replace(b"\n", b"\n")  # the bytes, untouched
    reasons = e.verdict["reasons"]
    assert any(r.startswith("challenge:text") for r in reasons)
    assert reasons[-1] == "refers to no ticket and no mail we sent"


def test_bounce_and_auto_reply_of_mail_we_never_sent_are_suspended(app):
    bounce = corpus("sisimai-set-of-emails", "maildir", "bsd", "lhost-postfix-01.eml").read_bytes()
    auto = corpus("sisimai-set-of-emails", "maildir", "bsd", "rfc3834-01.eml").read_bytes()
    c = push(app, bounce)
    c.update(push(app, auto))
    assert c["suspended"] == 2
    assert sorted(e.reason for e in rows(app, SpoolEntry)) == ["auto_reply", "bounce"]
    assert rows(app, Ticket) == [] and rows(app, OutboxRow) == []


def test_a_robot_that_refers_to_a_ticket_is_an_automatic_entry_on_it_never_answered(app):
    push(app, build(frm="bob@bigbank.example", subject="VPN drops every hour"))
    ticket = rows(app, Ticket)[0]
    ack = acks(app)[0]
    # Bob's own challenge-response system answers our acknowledgement
    challenge = build(frm="bob@bigbank.example", subject=f"Re: {ack.subject}", in_reply_to=f"<{ack.message_id}>",
                      body="Your message is being held until you verify that you are a human.\n"
                           "Please click here to be added to my allowed list: https://cr.bigbank.example/ok?k=1\n")
    counts = push(app, challenge)
    assert counts["threaded"] == 1 and counts["suspended"] == 0
    assert len(rows(app, Ticket)) == 1
    msgs = rows(app, Message, Message.ticket_id == ticket.id)
    assert [m.kind for m in msgs] == ["customer", "automatic"] and msgs[1].automatic
    assert len(acks(app)) == 1  # the robot got nothing


def test_a_robot_naming_a_ticket_its_sender_is_not_on_is_suspended(app):
    push(app, build(frm="bob@bigbank.example", subject="VPN drops every hour"))
    ref = rows(app, Ticket)[0].ref
    raw = build(frm="notify@boxbe.com", subject=f"Request to join Bob's Guest List [{ref}]",
                body="Click the link below to be added to Bob's Guest List.\n", headers={"X-Boxbe-Type": "guestlist"})
    assert push(app, raw)["suspended"] == 1
    assert f"names {ref}" in spool_row(app).verdict["reasons"][-1]
    assert len(rows(app, Message)) == 1


def test_blocked_sender_domain_is_suspended_even_when_it_looks_like_a_person(make_app):
    app = make_app(spam={"block": ["spammer.example", "one@bad.example"]})
    push(app, build(frm="sales@mx.spammer.example", subject="Cheap licences"))
    push(app, build(frm="one@bad.example", subject="hello"))
    push(app, build(frm="two@bad.example", subject="a real question"))
    assert [e.reason for e in rows(app, SpoolEntry)] == ["blocked", "blocked", ""]
    assert [t.requester_email for t in rows(app, Ticket)] == ["two@bad.example"]


def test_release_turns_a_blocked_persons_mail_into_a_ticket_with_its_acknowledgement(make_app, tmp_path):
    app = make_app(spam={"block": ["bigbank.example"]})
    push(app, build(frm="carol@bigbank.example", subject="Login fails"))
    e = spool_row(app)
    cfg = write_config(app, tmp_path / "gw.toml", spam={"block": ["bigbank.example"]})

    listed = cli(cfg, "suspended", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [(r["id"], r["reason"], r["from"]) for r in json.loads(listed.stdout)] == [
        (e.id, "blocked", "carol@bigbank.example")]
    shown = cli(cfg, "suspended", "show", str(e.id))
    assert "block list" in shown.stdout and "Login fails" in shown.stdout
    assert spool_row(app).status == "suspended"  # list and show change nothing

    released = cli(cfg, "suspended", "release", str(e.id), "--json")
    assert released.returncode == 0, released.stderr
    assert json.loads(released.stdout) == {"released": 1, "tickets_created": 1}
    assert [t.requester_email for t in rows(app, Ticket)] == ["carol@bigbank.example"]
    assert [a.to for a in acks(app)] == [["carol@bigbank.example"]]
    after = spool_row(app)
    assert after.status == "processed" and after.verdict["audit"][0]["action"] == "released"


def test_a_released_reply_lands_on_its_ticket_as_a_follow_up_with_what_live_mail_gets(make_app, tmp_path):
    blocked = {"block": ["carol@bigbank.example"]}
    app = make_app(spam=blocked)
    cfg = write_config(app, tmp_path / "gw.toml", spam=blocked)
    push(app, build(frm="carol@bigbank.example", subject="Login fails", msgid="<q1@bigbank.example>"))
    assert cli(cfg, "suspended", "release", str(spool_row(app).id)).returncode == 0
    [ticket] = rows(app, Ticket)
    [ack] = acks(app)
    reply = build(frm="carol@bigbank.example", subject=f"Re: {ack.subject}", msgid="<q2@bigbank.example>",
                  in_reply_to=f"<{ack.message_id}>", references=f"<q1@bigbank.example> <{ack.message_id}>",
                  body="It still fails, here is the screenshot.\n")
    assert push(app, reply)["suspended"] == 1  # still on the block list
    e = spool_row(app)
    assert e.status == "suspended" and len(rows(app, Message)) == 1

    released = cli(cfg, "suspended", "release", str(e.id), "--json")
    assert released.returncode == 0, released.stderr
    assert json.loads(released.stdout) == {"released": 1, "threaded": 1}
    assert [t.id for t in rows(app, Ticket)] == [ticket.id]  # a follow-up, no new ticket
    msgs = rows(app, Message, Message.ticket_id == ticket.id)
    assert [(m.message_id, m.kind) for m in msgs] == [("q1@bigbank.example", "customer"),
                                                      ("q2@bigbank.example", "customer")]
    assert len(acks(app)) == 1  # a follow-up is not acknowledged again
    after = spool_row(app, e.id)
    assert after.status == "processed" and after.verdict["audit"][-1]["action"] == "released"

    # the same two mails as live mail, never blocked: the release did what they would have done
    live = make_app()
    push(live, build(frm="carol@bigbank.example", subject="Login fails", msgid="<q1@bigbank.example>"))
    [live_ack] = acks(live)
    push(live, build(frm="carol@bigbank.example", subject=f"Re: {live_ack.subject}", msgid="<q2@bigbank.example>",
                     in_reply_to=f"<{live_ack.message_id}>", body="It still fails, here is the screenshot.\n"))
    live_out = sorted(r.kind for r in rows(live, OutboxRow))
    assert "acknowledgement" in live_out and sorted(r.kind for r in rows(app, OutboxRow)) == live_out, live_out


def test_a_released_robot_becomes_a_ticket_but_is_still_never_answered(app, tmp_path):
    push(app, robot("allowed-list-challenge.eml"))
    cfg = write_config(app, tmp_path / "gw.toml")
    r = cli(cfg, "suspended", "release", "--reason", "challenge")
    assert r.returncode == 0, r.stderr
    assert len(rows(app, Ticket)) == 1 and acks(app) == []
    assert rows(app, Message)[0].automatic


def test_drop_keeps_the_bytes_and_an_audit_line(app, tmp_path):
    push(app, robot("spamarrest-challenge.eml"))
    e = spool_row(app)
    cfg = write_config(app, tmp_path / "gw.toml")
    r = cli(cfg, "suspended", "drop", str(e.id))
    assert r.returncode == 0 and "dropped 1" in r.stdout
    after = spool_row(app)
    assert after.status == "dropped" and after.raw == e.raw
    assert after.verdict["audit"][0]["action"] == "dropped"
    assert cli(cfg, "suspended", "list", "--json").stdout.strip() == "[]"
    again = cli(cfg, "suspended", "drop", str(e.id))
    assert again.returncode == 2 and "not suspended" in again.stderr


def test_bad_input_to_suspended_is_a_one_line_error(app, tmp_path):
    cfg = write_config(app, tmp_path / "gw.toml")
    for args, words in ((("release",), "name the spool ids"), (("list", "--since", "yesterday"), "--since"),
                        (("show", "999"), "no spool entry 999"), (("drop", "x"), "numbers")):
        r = cli(cfg, "suspended", *args)
        assert r.returncode == 2 and words in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)


def test_list_filters_by_reason_and_since(make_app, clock, tmp_path):
    app = make_app(clock=clock)
    push(app, robot("spamarrest-challenge.eml"))
    clock.advance(days=3)
    push(app, corpus("sisimai-set-of-emails", "maildir", "bsd", "lhost-postfix-01.eml").read_bytes())
    from argparse import Namespace

    from gateway.cli.suspended import _select

    def pick(**kw):
        args = Namespace(ids=[], reason=kw.get("reason"), since=kw.get("since"))
        with app.db.session() as s:
            return [e.reason for e in _select(app, s, args)]

    assert pick() == ["challenge", "bounce"]
    assert pick(reason="bounce") == ["bounce"]
    assert pick(since="2d") == ["bounce"]


def test_retention_purges_old_suspended_mail_and_its_file(make_app, clock):
    app = make_app(clock=clock, gateway={"spool_inline_max": 4096}, spam={"retention_days": 30})
    big = build(frm="mailer-daemon@mx.example.net", subject="Undelivered Mail Returned to Sender",
                body="This is the mail system.\n" + "x" * 80 + "\n" * 100 + "y" * 8000 + "\n",
                headers={"Auto-Submitted": "auto-replied"})
    from gateway.pipeline.process import Source, ingest
    from storage.spool import read_file
    import io

    stored = read_file(app.spool_blobs, lambda: io.BytesIO(big), 4096)
    ingest(app, [(stored, Source("file"))])
    push(app, robot("spamarrest-challenge.eml"))
    push(app, build(subject="a real ticket"))
    on_disk = app.spool_blobs.path_for(stored.sha256)
    assert on_disk.exists() and count(app, SpoolEntry, SpoolEntry.status == "suspended") == 2

    clock.advance(days=29)
    assert purge(app) == 0
    clock.advance(days=2)
    assert run_suspended_care(app)["purged"] == 2
    assert not on_disk.exists()
    assert [e.status for e in rows(app, SpoolEntry)] == ["processed"]  # the ticket's mail stays


def test_a_flood_of_suspended_mail_tells_the_manager_once_an_hour(make_app, clock):
    app = make_app(clock=clock, spam={"alert_per_hour": 2, "alert_to": ["boss@support.example.test"]})
    for i in range(3):
        push(app, build(frm=f"carol{i}@customer.example.net", subject=f"Re: offer {i}", in_reply_to="<x@spam.example>",
                        body="Your message has been held until you verify that you are a human.\n"))
    assert count(app, SpoolEntry, SpoolEntry.status == "suspended") == 3
    assert alert_if_growing(app) is True
    assert alert_if_growing(app) is False  # once for this hour
    alerts = rows(app, OutboxRow, OutboxRow.kind == "suspended_alert")
    assert [a.to for a in alerts] == [["boss@support.example.test"]]
    assert "3" in alerts[0].subject


def test_weekly_report_counts_suspended_mail_by_reason(make_app, clock):
    from gateway.jobs.weekly_report import build as build_report, render

    app = make_app(clock=clock)
    start = clock.now()
    push(app, robot("spamarrest-challenge.eml"))
    push(app, robot("allowed-list-challenge.eml"))
    push(app, corpus("sisimai-set-of-emails", "maildir", "bsd", "lhost-postfix-01.eml").read_bytes())
    with app.db.session() as s:
        day = start.date()
        report = build_report(app, s, day - timedelta(days=1), day + timedelta(days=1))
    assert report["suspended"] == {"challenge": 2, "bounce": 1}
    assert "challenge" in render(app, report, "en").text and "challenge" in render(app, report, "zh-CN").text


def test_ingest_json_counts_suspended(app, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.eml").write_bytes(robot("boxbe-challenge.eml"))
    (tmp_path / "in" / "b.eml").write_bytes(build(subject="Printer on fire"))
    cfg = write_config(app, tmp_path / "gw.toml")
    r = cli(cfg, "ingest", str(tmp_path / "in"), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["suspended"] == 1 and out["tickets_created"] == 1 and out["quarantined"] == 0
