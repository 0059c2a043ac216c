"""The IMAP poller against a real, private Dovecot: mail in the mailbox becomes tickets,
is acknowledged only once stored, and nothing is lost or repeated when things break."""

from __future__ import annotations

import hashlib
import logging
import time

from gateway.edges.imap_state import load_progress
from tests.conftest import wait_for
from tests.imap_kit import (SplittingProxy, imap_gateway, inbound_by_message_id, seen_flags,  # noqa: F401
                            spool_rows, spooled, tickets)
from tests.imap_kit import dovecot  # noqa: F401
from tests.mail import build, parser_raises_on


def mails(n: int, tag: str = "m") -> list[bytes]:
    return [build(frm=f"{tag}{i}@customer{i % 7}.example.com", subject=f"{tag} problem number {i}",
                  msgid=f"<{tag}-{i}@customer.example.com>", body=f"Case {tag}-{i}: it broke.\n")
            for i in range(n)]


def test_backlog_is_drained_into_tickets_in_batches_and_marked_seen(dovecot, imap_gateway):
    dovecot.append(build(subject="read by a human last year", msgid="<old@customer.example.com>"),
                   flags=[b"\\Seen"])
    backlog = mails(25, "backlog")
    dovecot.append(*backlog)
    gw = imap_gateway(batch_size=7)
    app = gw.app

    wait_for(lambda: tickets(app) == 25, timeout=60, what="25 tickets")
    wait_for(lambda: all(seen_flags(dovecot)), timeout=10, what="all messages \\Seen")
    stored = inbound_by_message_id(app)
    assert stored == {f"backlog-{i}@customer.example.com": 1 for i in range(25)}  # old seen mail left alone
    assert {r.source for r in spool_rows(app)} == {"imap:helpdesk"}
    prog = load_progress(app, "helpdesk")
    assert prog.last_uid == max(dovecot.messages())


# With IDLE the poller also re-syncs every poll_interval seconds (README). The IDLE tests set
# it far beyond their waits, so only the server's EXISTS notice can bring the mail in time.
NO_RESYNC = 600.0


def _in_idle(app) -> None:
    """Wait until the first drain is done; the poller enters IDLE right after recording it."""
    wait_for(lambda: load_progress(app, "helpdesk") is not None, timeout=20, what="first pass done")
    time.sleep(1.0)  # mail appended before IDLE starts is announced to nobody (see gateway/edges/imap.py)


def test_new_mail_during_idle_becomes_a_ticket_promptly(dovecot, imap_gateway):
    gw = imap_gateway(poll_interval=NO_RESYNC)
    app = gw.app
    _in_idle(app)
    started = time.monotonic()
    dovecot.append(build(subject="Pushed while idling", msgid="<idle@customer.example.com>"))
    # IDLE push through Dovecot takes ~1 s (mailbox_idle_check_interval); 15 s guards against
    # load, and is still forty times shorter than the re-sync that would otherwise find it
    wait_for(lambda: inbound_by_message_id(app).get("idle@customer.example.com") == 1, timeout=15,
             what="ticket for the pushed message (the IDLE EXISTS notice)")
    assert time.monotonic() - started < NO_RESYNC
    assert seen_flags(dovecot) == [True]
    # and again: the poller went back into IDLE after the drain the notice caused
    _in_idle(app)
    dovecot.append(build(subject="Second push", msgid="<idle-2@customer.example.com>"))
    wait_for(lambda: inbound_by_message_id(app).get("idle-2@customer.example.com") == 1, timeout=15,
             what="ticket for the second pushed message")


def test_mail_arriving_while_a_drain_acknowledges_is_taken_without_waiting_for_the_resync(
        dovecot, imap_gateway, monkeypatch):
    """Dovecot announces mail that arrives during a drain in its replies to the drain's own
    commands; the IDLE that follows does not announce it again. The poller must look again."""
    from gateway.edges import imap_batch

    real = imap_batch.Acknowledger.__call__
    arrived = []

    def ack_while_mail_arrives(self, uids):
        if uids and not arrived:
            arrived.append(uids)
            dovecot.append(build(subject="Arrived mid-drain", msgid="<mid-drain@customer.example.com>"))
        return real(self, uids)

    monkeypatch.setattr(imap_batch.Acknowledger, "__call__", ack_while_mail_arrives)
    dovecot.append(build(subject="Already there", msgid="<there@customer.example.com>"))
    gw = imap_gateway(poll_interval=NO_RESYNC)
    wait_for(lambda: inbound_by_message_id(gw.app).get("mid-drain@customer.example.com") == 1, timeout=20,
             what="ticket for the mail that arrived during the drain")
    assert arrived and inbound_by_message_id(gw.app).get("there@customer.example.com") == 1
    wait_for(lambda: seen_flags(dovecot) == [True, True], timeout=10, what="both acknowledged")


def test_polling_mode_without_idle_picks_up_new_mail(dovecot, imap_gateway):
    gw = imap_gateway(idle=False, poll_interval=0.5)
    app = gw.app
    wait_for(lambda: load_progress(app, "helpdesk") is not None, timeout=20, what="first pass done")
    dovecot.deliver_file(build(subject="Dropped into new/", msgid="<poll@customer.example.com>"))
    wait_for(lambda: inbound_by_message_id(app).get("poll@customer.example.com") == 1, timeout=20,
             what="ticket via polling")


def test_move_mode_moves_stored_mail_to_a_folder_it_creates(dovecot, imap_gateway):
    batch = mails(6, "move")
    dovecot.append(*batch)
    gw = imap_gateway(after="move", move_to="Processed/Support", batch_size=4)
    wait_for(lambda: tickets(gw.app) == 6, timeout=60, what="6 tickets")
    wait_for(lambda: len(dovecot.messages("Processed/Support")) == 6, timeout=10, what="6 moved")
    assert dovecot.messages("INBOX") == {}
    assert sorted(m["raw"] for m in dovecot.messages("Processed/Support").values()) == sorted(batch)


def test_delete_mode_removes_stored_mail(dovecot, imap_gateway):
    dovecot.append(*mails(5, "del"))
    gw = imap_gateway(after="delete")
    wait_for(lambda: tickets(gw.app) == 5, timeout=60, what="5 tickets")
    wait_for(lambda: dovecot.messages("INBOX") == {}, timeout=10, what="INBOX emptied")
    assert len(inbound_by_message_id(gw.app)) == 5


def test_twenty_megabyte_message_is_stored_byte_for_byte(dovecot, imap_gateway):
    line = "The attached log keeps growing; here is line number {:08d} of it.\n"
    body = "".join(line.format(i) for i in range(20 * 1024 * 1024 // len(line)))
    big = build(subject="Huge log", msgid="<big@customer.example.com>", body=body)
    assert len(big) > 20 * 1024 * 1024
    dovecot.append(big)
    dovecot.append(build(subject="small one after", msgid="<after-big@customer.example.com>"))
    gw = imap_gateway()
    wait_for(lambda: spooled(gw.app) == 2, timeout=120, what="both spooled")
    row = next(r for r in spool_rows(gw.app) if r.message_id == "big@customer.example.com")
    assert row.size == len(big) and row.sha256 == hashlib.sha256(big).hexdigest()
    # read in slices straight into the spool blob store, never whole in memory or in the row
    assert row.raw is None and gw.app.spool_blobs.path_for(row.sha256).read_bytes() == big
    wait_for(lambda: tickets(gw.app) == 2, timeout=120, what="two tickets")
    wait_for(lambda: all(seen_flags(dovecot)), timeout=10, what="both \\Seen")


def test_message_the_parser_chokes_on_is_spooled_quarantined_and_acknowledged(dovecot, imap_gateway, monkeypatch):
    """parse_email promises never to raise; a bug breaking that promise must still not block the
    mailbox. We break it for one message at the parser boundary (where the pipeline calls it)."""
    parser_raises_on(monkeypatch, b"X-Trigger-Parser-Bug: yes", "parser bug triggered by this message")
    dovecot.append(build(subject="poison", msgid="<poison@customer.example.com>",
                         headers={"X-Trigger-Parser-Bug": "yes"}),
                   build(subject="fine after poison", msgid="<fine@customer.example.com>"))
    gw = imap_gateway(batch_size=1)
    app = gw.app
    wait_for(lambda: inbound_by_message_id(app).get("fine@customer.example.com") == 1, timeout=60,
             what="the next message became a ticket")
    poison = wait_for(lambda: next((r for r in spool_rows(app) if r.message_id == "poison@customer.example.com"
                                    and r.status == "quarantined"), None), timeout=20, what="quarantined")
    assert "parser bug triggered" in poison.error
    wait_for(lambda: seen_flags(dovecot) == [True, True], timeout=10, what="both acknowledged")


def test_uidvalidity_change_does_not_duplicate_tickets(dovecot, imap_gateway, caplog):
    caplog.set_level(logging.INFO, logger="supportgw.imap")
    first = mails(3, "uv")
    dovecot.append(*first, folder="Support")
    gw = imap_gateway(folder="Support")
    app = gw.app
    wait_for(lambda: tickets(app) == 3, timeout=60, what="3 tickets")
    before = load_progress(app, "helpdesk")

    # The folder is deleted and recreated: same messages again, unseen, under a new UIDVALIDITY.
    c = dovecot.client()
    c.delete_folder("Support")
    c.create_folder("Support")
    for raw in first + mails(1, "uv-new"):
        c.append("Support", raw)
    c.logout()

    wait_for(lambda: inbound_by_message_id(app).get("uv-new-0@customer.example.com") == 1, timeout=60,
             what="the new message after the renumbering")
    wait_for(lambda: all(seen_flags(dovecot, "Support")) and len(seen_flags(dovecot, "Support")) == 4,
             timeout=20, what="re-delivered copies acknowledged")
    assert load_progress(app, "helpdesk").uidvalidity != before.uidvalidity
    assert "UIDVALIDITY changed" in caplog.text
    assert tickets(app) == 4
    assert set(inbound_by_message_id(app).values()) == {1}
    assert len(spool_rows(app)) == 4  # the copies were recognised at the spool, not stored twice


def test_dovecot_stopped_and_restarted_while_running_loses_nothing(dovecot, imap_gateway, caplog):
    caplog.set_level(logging.INFO, logger="supportgw.imap")
    gw = imap_gateway()
    app = gw.app
    dovecot.append(*mails(3, "before"))
    wait_for(lambda: tickets(app) == 3, timeout=60, what="3 tickets before the outage")

    dovecot.stop()
    # Noticed by the server's BYE, a dropped connection or a refused one. The IDLE session's
    # imap process can outlive Dovecot's stop() by about 30 s before it says BYE; until then
    # the connection is alive and there is nothing to notice. The test is about losing nothing.
    noticed = ("server interrupted the session", "connection refused", "connection lost")
    wait_for(lambda: any(n in caplog.text for n in noticed), timeout=90, what="the outage noticed")
    for raw in mails(3, "during"):  # the MDA keeps delivering while IMAP is down
        dovecot.deliver_file(raw)
    dovecot.start()
    dovecot.append(*mails(2, "after"))

    wait_for(lambda: tickets(app) == 8, timeout=90, what="all 8 tickets after the restart")
    assert set(inbound_by_message_id(app).values()) == {1}
    wait_for(lambda: all(seen_flags(dovecot)), timeout=10, what="all \\Seen")


def test_idle_check_abort_on_a_split_response_reconnects_and_loses_nothing(dovecot, make_app, imap_gateway, caplog):
    """imapclient#519: a server line split across TCP segments makes idle_check raise AbortError.
    A proxy splits the real EXISTS notification; the poller must reconnect and still take the mail."""
    caplog.set_level(logging.INFO, logger="supportgw.imap")
    proxy = SplittingProxy(dovecot.port)
    try:
        app = make_app(imap=[dovecot.mailbox_config(port=proxy.port, poll_interval=NO_RESYNC)])
        imap_gateway(app=app)
        wait_for(lambda: "waiting in IDLE" in caplog.text, timeout=20, what="idling")
        _in_idle(app)
        proxy.armed.set()
        dovecot.append(build(subject="Split notification", msgid="<split@customer.example.com>"))
        wait_for(lambda: inbound_by_message_id(app).get("split@customer.example.com") == 1, timeout=30,
                 what="ticket despite the aborted IDLE")
        assert proxy.splits == 1
        assert "unterminated line" in caplog.text  # the abort really happened and was logged
        _in_idle(app)  # the reconnect's drain is done: back in IDLE, which must hear the next notice
        dovecot.append(build(subject="Next one", msgid="<next@customer.example.com>"))
        wait_for(lambda: inbound_by_message_id(app).get("next@customer.example.com") == 1, timeout=30,
                 what="IDLE works again after the reconnect")
    finally:
        proxy.close()


def test_database_failure_leaves_mail_unacknowledged_until_it_is_stored(dovecot, imap_gateway, monkeypatch):
    import gateway.edges.imap as imap
    from storage.db import StorageUnavailable

    real = imap.spool
    calls = {"n": 0, "seen_during_outage": None}

    def flaky(app, items):
        calls["n"] += 1
        if calls["n"] == 2:  # the retry after the first failure: the server must still show it unread
            calls["seen_during_outage"] = seen_flags(dovecot)
        if calls["n"] <= 2:
            raise StorageUnavailable("database is locked")
        return real(app, items)

    monkeypatch.setattr(imap, "spool", flaky)
    dovecot.append(build(subject="While the DB is down", msgid="<dbdown@customer.example.com>"))
    gw = imap_gateway()
    wait_for(lambda: inbound_by_message_id(gw.app).get("dbdown@customer.example.com") == 1, timeout=60,
             what="stored once the database is back")
    assert calls["seen_during_outage"] == [False]
    assert calls["n"] == 3
    wait_for(lambda: seen_flags(dovecot) == [True], timeout=10, what="acknowledged after the commit")


def test_wrong_password_is_reported_with_what_to_fix_and_backs_off(dovecot, imap_gateway, caplog):
    caplog.set_level(logging.INFO, logger="supportgw.imap")
    dovecot.append(build(subject="Waiting for a valid login"))
    gw = imap_gateway(password={"value": "not-the-password"})

    def refusals():
        return [r for r in caplog.records if "login refused" in r.getMessage()]

    wait_for(lambda: len(refusals()) >= 3, timeout=30, what="three refused logins")
    msg = refusals()[0].getMessage()
    assert "check 'username' and the password" in msg and "support@example.test" in msg
    assert all(r.exc_info is None for r in refusals())  # a sentence, not a stack trace
    delays = [float(r.getMessage().rsplit("retrying in ", 1)[1].rstrip("s")) for r in refusals()[:3]]
    assert delays[0] <= delays[1] <= delays[2] and delays[2] >= 2 * delays[0] * 0.99
    assert tickets(gw.app) == 0 and seen_flags(dovecot) == [False]


def test_two_gateways_on_one_mailbox_one_drains_the_other_takes_over(dovecot, make_app):
    """The lease: two pollers (as two processes would) on one database and one mailbox."""
    import dataclasses

    from gateway.edges.imap import Poller

    app_a = make_app(imap=[dovecot.mailbox_config(lease_seconds=4)])
    app_b = dataclasses.replace(app_a, worker_id="other-host:4242")
    mb = app_a.config.imap[0]
    a, b = Poller(app_a, mb), Poller(app_b, mb)
    a.start()
    wait_for(lambda: load_progress(app_a, "helpdesk") is not None, timeout=20, what="a drains")
    b.start()
    dovecot.append(*mails(12, "lease"))
    try:
        wait_for(lambda: a.spooled + b.spooled == 12, timeout=30, what="12 spooled and acknowledged")
        assert (a.spooled, b.spooled) == (12, 0)
        assert spooled(app_a) == 12
        a.stop()
        a.join(15)
        dovecot.append(*mails(3, "takeover"))
        wait_for(lambda: b.spooled == 3, timeout=30, what="b takes over")
        assert spooled(app_a) == 15
        assert len({r.dedupe_key for r in spool_rows(app_a)}) == 15
    finally:
        for p in (a, b):
            p.stop()
        for p in (a, b):
            p.join(15)
    assert all(r.status == "pending" for r in spool_rows(app_a))  # no processor here: only the edge ran


def test_a_restarted_gateway_resumes_at_once_after_its_own_dead_predecessor(dovecot, make_app):
    """Same host, dead pid: the lease is taken over at once, not after lease_seconds (issue 19)."""
    import subprocess
    import sys
    import time

    from gateway.edges.imap import Poller
    from gateway.leases import take_lease

    app = make_app(imap=[dovecot.mailbox_config(lease_seconds=60)])
    killed = subprocess.Popen([sys.executable, "-c", "pass"])
    killed.wait()
    assert take_lease(app, "imap:helpdesk", f"{app.worker_id.rpartition(':')[0]}:{killed.pid}", 60)
    dovecot.append(*mails(2, "restart"))
    poller = Poller(app, app.config.imap[0])
    started = time.monotonic()
    poller.start()
    try:
        wait_for(lambda: poller.spooled == 2, timeout=20, what="the restarted gateway drains")
        assert time.monotonic() - started < 15
    finally:
        poller.stop()
        poller.join(15)


def test_mail_that_lands_just_after_the_drains_search_is_not_left_for_the_resync(dovecot, imap_gateway,
                                                                               monkeypatch):
    """Dovecot announces in IDLE only what changes after IDLE starts: a mail appended between a
    drain's SEARCH and the IDLE command waited for the re-sync (94 s in bench/latency.py). The
    mail is appended right after the SEARCH of the drain that leads into IDLE."""
    from gateway.edges import imap as imap_edge

    real = imap_edge.Poller._candidates
    landed = []

    def candidates_then_a_mail_lands(self, client, uidvalidity):
        found = real(self, client, uidvalidity)
        if not found[0] and not landed:  # the first pass over the empty folder
            dovecot.append(build(subject="Landed after the search", msgid="<late@customer.example.com>"))
            landed.append(time.monotonic())
        return found

    monkeypatch.setattr(imap_edge.Poller, "_candidates", candidates_then_a_mail_lands)
    gw = imap_gateway(poll_interval=NO_RESYNC)
    wait_for(lambda: landed, timeout=30, what="a drain that found nothing")
    wait_for(lambda: inbound_by_message_id(gw.app).get("late@customer.example.com") == 1, timeout=15,
             what="ticket for the mail that landed after the SEARCH (not left for the re-sync)")
