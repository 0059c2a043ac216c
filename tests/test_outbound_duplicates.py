"""Outbound duplicates after a crash, measured with kill -9 against a real `supportgw run`.

Handing a mail to the transport and committing "sent" cannot be atomic. The Maildir
transport is idempotent by Message-ID: no duplicate, whatever the kill. For SMTP the
dispatcher records "handing_over" just before the final "." of DATA; a row killed
before that was never taken by the relay, and a row killed in "handing_over" is sent
again with the same Message-ID. So a duplicate is possible only for a kill that landed
between the relay taking the mail and our commit, at most one per kill (one worker
sends one mail at a time). Each test prints its figure."""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from email import message_from_bytes
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gateway.app import build_app
from gateway.config import load_config
from gateway.outbox import queue
from storage.models import OutboxRow
from templates import Rendered
from tests.conftest import drop_database, fresh_database_url
from tests.gwproc import GatewayProcess, write_run_config

MAILS = 240
KILLS = 6


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def _kill_all(gw: GatewayProcess) -> None:
    """SIGKILL the gateway and its worker at the same instant: nobody finishes a send."""
    pids = _children(gw.proc.pid) + [gw.proc.pid]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    gw.proc.wait(30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() and
                                              "zombie" not in _state(p) for p in pids):
        time.sleep(0.05)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:", 1)[1].split("\n", 1)[0].lower()
    except (OSError, IndexError):
        return "zombie"


def _fill_outbox(config: Path) -> tuple[object, list[str]]:
    app = build_app(load_config(config), migrate=False)
    mids = []
    with app.db.session() as s:
        for i in range(MAILS):
            mids.append(queue(app, s, kind="test", ticket=None, to=[f"c{i}@customer{i % 9}.example.com"],
                              rendered=Rendered(f"Notice {i}", f"Hello {i},\nthis is notice {i}.\n" * 40, "")))
    return app, mids


def _unsent(app) -> int:
    with app.db.session() as s:
        return s.execute(select(func.count(OutboxRow.id)).where(OutboxRow.status != "sent")).scalar_one()


def _handing_over(app) -> set[str]:
    with app.db.session() as s:
        return set(s.execute(select(OutboxRow.message_id).where(OutboxRow.status == "handing_over")).scalars())


def _settled(delivered, quiet: float = 0.5, limit: float = 10.0) -> set[str]:
    """What the receiving side holds once it has taken nothing new for `quiet` seconds."""
    seen, since = delivered(), time.monotonic()
    deadline = since + limit
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = delivered()
        if now != seen:
            seen, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return seen


def _run_with_kills(tmp_path, config, port, app, delivered) -> tuple[int, set[str]]:
    """Kill -9 the running gateway KILLS times while it sends; returns (kills, the mails
    a kill caught after the transport took them and before their commit)."""
    gw = GatewayProcess(config, port, tmp_path / "gateway.log")
    rng = random.Random(9)
    in_window: set[str] = set()
    gw.start()
    try:
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.3, 1.5))  # a random moment while sending (fault injection)
            _kill_all(gw)
            # the relay runs in this process: the last bytes a killed sender wrote may still be
            # in its socket, so wait until it has taken what it is going to take
            in_window |= _handing_over(app) & _settled(delivered)  # taken, not committed: sent again
            gw.start()
        deadline = time.monotonic() + 240
        while _unsent(app) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _unsent(app) == 0, (tmp_path / "gateway.log").read_text()[-3000:]
        assert gw.terminate(15) == 0
    finally:
        gw.stop_quietly()
    return KILLS, in_window


@pytest.mark.slow
def test_maildir_transport_delivers_each_mail_once_whatever_the_kills(tmp_path):
    url = fresh_database_url(tmp_path)
    config, port = write_run_config(tmp_path, url, 25, outbound={"smtp_host": "", "poll_interval": 0.05})
    app, mids = _fill_outbox(config)
    maildir = Path(load_config(config).data_dir) / "sent"

    def delivered() -> set[str]:
        out = set()
        for sub in ("new", "cur"):
            for f in (maildir / sub).glob("*") if (maildir / sub).exists() else ():
                out.add((message_from_bytes(f.read_bytes())["Message-ID"] or "").strip().strip("<>"))
        return out

    try:
        kills, _ = _run_with_kills(tmp_path, config, port, app, delivered)
        per_id = Counter((message_from_bytes(f.read_bytes())["Message-ID"] or "").strip().strip("<>")
                         for sub in ("new", "cur") for f in (maildir / sub).glob("*"))
    finally:
        app.db.dispose()
        drop_database(url)
    doubled = {m: n for m, n in per_id.items() if n > 1}
    print(f"\nmaildir: {MAILS} mails, {kills} kills -9, {len(doubled)} delivered twice, "
          f"{len(set(mids) - set(per_id))} missing")
    assert set(per_id) == set(mids) and doubled == {}


@pytest.mark.slow
def test_smtp_duplicates_only_for_a_kill_between_the_relays_reply_and_our_commit(tmp_path, relay):
    url = fresh_database_url(tmp_path)
    config, port = write_run_config(tmp_path, url, relay.port, outbound={"poll_interval": 0.05})
    app, mids = _fill_outbox(config)

    def delivered() -> set[str]:
        with relay.lock:
            raws = [m["raw"] for m in relay.messages]
        return {(message_from_bytes(r)["Message-ID"] or "").strip().strip("<>") for r in raws}

    try:
        kills, in_window = _run_with_kills(tmp_path, config, port, app, delivered)
    finally:
        app.db.dispose()
        drop_database(url)
    per_id = Counter((message_from_bytes(m["raw"])["Message-ID"] or "").strip().strip("<>") for m in relay.messages)
    doubled = {m: n for m, n in per_id.items() if n > 1}
    print(f"\nsmtp: {MAILS} mails, {kills} kills -9, {len(in_window)} landed between the relay's 250 and our "
          f"commit, {len(doubled)} delivered twice")
    assert set(per_id) == set(mids)  # nothing lost
    assert all(n == 2 for n in doubled.values()) and set(doubled) == in_window and len(in_window) <= kills


def test_the_maildir_transport_stores_a_message_id_once_even_after_a_reader_moved_it(tmp_path):
    from gateway.runtime.transports import MaildirTransport

    raw = b"Message-ID: <once@support.example.test>\r\nSubject: hi\r\n\r\nbody\r\n"
    t = MaildirTransport(tmp_path / "sent")
    t.send("bounces+1@support.example.test", ["a@customer.example.com"], raw)
    t.send("bounces+1@support.example.test", ["a@customer.example.com"], raw)
    [first] = list((tmp_path / "sent" / "new").iterdir())
    first.rename(tmp_path / "sent" / "cur" / (first.name + ":2,S"))  # a mail client read it
    t.send("bounces+1@support.example.test", ["a@customer.example.com"], raw)
    assert list((tmp_path / "sent" / "new").iterdir()) == []
    assert len(list((tmp_path / "sent" / "cur").iterdir())) == 1


def test_smtp_hand_over_is_recorded_before_the_relay_can_have_the_mail(relay):
    from gateway.runtime.transports import SmtpTransport

    seen_at_handover = []
    t = SmtpTransport("127.0.0.1", relay.port)
    try:
        t.send("bounces+1@support.example.test", ["a@customer.example.com"],
               b"Message-ID: <h@support.example.test>\r\nSubject: hi\r\n\r\n.leading dot\r\nbody\r\n",
               on_handover=lambda: seen_at_handover.append(len(relay.messages)))
    finally:
        t.close()
    assert seen_at_handover == [0] and len(relay.messages) == 1
    assert b"\r\n.leading dot\r\n" in relay.messages[0]["raw"]  # dot-stuffed on the wire, unstuffed by the relay
