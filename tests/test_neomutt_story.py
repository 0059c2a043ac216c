"""A real mail client drives the story: neomutt (in tmux, it needs a tty) reads
the engineer's notification from a private Dovecot mailbox and replies through
the gateway's SMTP listener; the customer receives the answer from the support
address, with neomutt's quote stripped and the engineer's address nowhere.

`NeomuttReplier` is this file's own driver, written after the loopback rig's
mutt-reply recipe: a muttrc and a non-interactive "editor" under a private
HOME, keys pushed at start-up, success read from the screen ("Mail sent").
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.dovecot import running_dovecot
from tests.engineer_mail import ALICE, CUSTOMER, SUPPORT, all_text, latest_ticket_id, messages, ticket
from tests.mail import body_text, build, parse, send

BANK_CUSTOMER = "wang@bigbank.example"  # bigbank is strategic: its manager carol watches every ticket
CAROL = "carol@support.example.com"


def _tools_or_skip() -> None:
    missing = [t for t in ("neomutt", "tmux") if not shutil.which(t)]
    if not missing:
        return
    if os.environ.get("SUPPORTGW_ALLOW_SKIP") == "1":
        pytest.skip(f"{', '.join(missing)} not installed (SUPPORTGW_ALLOW_SKIP=1)")
    pytest.fail(f"{', '.join(missing)} not installed: apt-get install neomutt tmux "
                "(or set SUPPORTGW_ALLOW_SKIP=1 to skip)")


class NeomuttReplier:
    """Reply to one IMAP message with neomutt, non-interactively."""

    def __init__(self, *, imap_host: str, imap_port: int, user: str, password: str, smtp_port: int,
                 from_header: str):
        self.work = Path(tempfile.mkdtemp(prefix="sgwmutt-", dir="/tmp"))  # short: tmux socket paths
        self.socket = f"sgwmutt{os.getpid()}{self.work.name[-6:]}"
        self.settings = dict(imap_host=imap_host, imap_port=imap_port, user=user, password=password,
                             smtp_port=smtp_port, from_header=from_header)

    def _write_files(self, text: str) -> Path:
        (self.work / "reply.txt").write_text(text, encoding="utf-8")
        editor = self.work / "editor.sh"
        # the "editor": the reply text goes above the quote neomutt prepared
        editor.write_text(f'#!/bin/sh\n{{ cat "{self.work}/reply.txt"; echo; cat "$1"; }} > "$1.new" '
                          '&& mv "$1.new" "$1"\n')
        editor.chmod(0o755)
        s = self.settings
        user = s["user"].replace("@", "%40")
        rc = self.work / "muttrc"
        rc.write_text("\n".join([
            f'set folder="imap://{user}@{s["imap_host"]}:{s["imap_port"]}/"',
            'set spoolfile="+INBOX"',
            f'set imap_user="{s["user"]}"',
            f'set imap_pass="{s["password"]}"',  # neomutt ignores a password in the URL
            f'set smtp_url="smtp://127.0.0.1:{s["smtp_port"]}/"',
            f'set from="{s["from_header"]}"',
            "set use_from=yes", "set ssl_starttls=no", "set ssl_force_tls=no",
            "set include=yes", "set fast_reply=yes", "set reply_to=yes",  # answer the Reply-To, no prompt
            f'set editor="{editor}"', "set edit_headers=no", "set copy=no", 'set record=""',
            "set postpone=no", "set abort_unmodified=no", 'set header_cache=""', 'set message_cachedir=""',
            "set quit=yes", "set wait_key=no", "set mark_old=no", 'set send_charset="utf-8"',
        ]) + "\n")
        return rc

    def reply(self, message_id: str, text: str, *, delivered=lambda: False, timeout: float = 30.0) -> str:
        """Reply to the message with this Message-ID; returns the final screen. Raises on failure.

        Success is "Mail sent" on the screen, or `delivered()` turning true (the
        status line is short-lived: a redraw can wipe it before we look).
        """
        rc = self._write_files(text)
        mid = message_id.strip().strip("<>")
        # ~i takes a regex and the id passes several quoting layers: metacharacters become '.'
        pattern = re.sub(r"[][\\.*^$+?(){}|\"' ]", ".", mid)
        keys = f'push "<limit>~i {pattern}<enter><first-entry><reply><send-message>"'
        cmd = (f"env HOME='{self.work}' TERM=xterm LANG=C.UTF-8 neomutt -n -F '{rc}' -e '{keys}'")
        tmux = ["tmux", "-L", self.socket]
        subprocess.run(tmux + ["new-session", "-d", "-s", "m", "-x", "200", "-y", "50", cmd], check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        screen = ""
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                got = subprocess.run(tmux + ["capture-pane", "-p", "-t", "m"], capture_output=True, text=True)
                if got.returncode != 0:
                    break
                screen = got.stdout
                if "Mail sent" in screen or delivered():
                    # quit, so neomutt syncs the \\Answered flag to the server
                    subprocess.run(tmux + ["send-keys", "-t", "m", "q"], capture_output=True)
                    self._wait_gone(tmux)
                    return screen
                time.sleep(0.1)
            raise AssertionError(f"neomutt did not report 'Mail sent'; last screen:\n{screen}")
        finally:
            subprocess.run(tmux + ["kill-server"], capture_output=True)

    @staticmethod
    def _wait_gone(tmux: list[str]) -> None:
        for _ in range(50):
            if subprocess.run(tmux + ["has-session", "-t", "m"], capture_output=True).returncode != 0:
                return
            time.sleep(0.1)

    def cleanup(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)


@pytest.fixture
def alice_mailbox():
    """Alice's own IMAP mailbox on a private Dovecot (tests/dovecot.py)."""
    yield from running_dovecot(user=ALICE, password="alice-imap-pw")


def test_engineer_answers_a_notification_from_neomutt(running, relay, alice_mailbox):
    _tools_or_skip()
    gw = running()
    send(gw.smtp_port, build(frm=CUSTOMER, name="Li Wei", subject="Website returns 502",
                             body="Hello,\nour website returns 502 since 9:00.\n", msgid="<m1@mail.example.test>"),
         CUSTOMER, [SUPPORT])
    note_env = wait_for(lambda: [m for m in list(relay.messages) if m["to"] == [ALICE]], what="notification")[0]
    note = parse(note_env["raw"])
    alice_mailbox.append(note_env["raw"])  # the notification lands in alice's INBOX

    def answered():
        to_customer = [m for m in list(relay.messages) if CUSTOMER in m["to"]]
        return to_customer[1:]  # [0] is the acknowledgement

    mutt = NeomuttReplier(imap_host=alice_mailbox.host, imap_port=alice_mailbox.port, user=ALICE,
                          password="alice-imap-pw", smtp_port=gw.smtp_port,
                          from_header=f"Alice Wang <{ALICE}>")
    try:
        mutt.reply(note["Message-ID"], "#time 20m\nHello Li Wei,\n\nplease restart nginx; "
                                       "the upstream pool was exhausted.\n", delivered=answered)
    finally:
        mutt.cleanup()

    env = wait_for(answered, timeout=20, what="relayed answer to the customer")[0]
    msg = parse(env["raw"])
    text = body_text(msg).split("\n--\n")[0].strip()
    assert text == "Hello Li Wei,\n\nplease restart nginx; the upstream pool was exhausted."
    assert msg["From"].addresses[0].display_name == "Alice (Support)"
    assert msg["From"].addresses[0].addr_spec == SUPPORT
    assert msg["In-Reply-To"] == "<m1@mail.example.test>"
    for leak in (ALICE, "@support.example.com", "alice wang", "wrote:", "#time"):
        assert leak not in all_text(env["raw"]), leak

    tid = latest_ticket_id(gw.app)
    [stored] = [m for m in messages(gw.app, tid) if m.direction == "out" and m.kind == "engineer"]
    assert stored.text == text
    assert ticket(gw.app, tid).first_responded_at is not None
    # a real client marks what it answered: the notification is \Answered in alice's mailbox
    flags = [f for m in alice_mailbox.messages().values() for f in m["flags"]]
    assert b"\\Answered" in flags


@pytest.fixture
def carol_mailbox():
    """Carol's own IMAP mailbox: she watches bigbank's tickets as the project's manager."""
    yield from running_dovecot(user=CAROL, password="carol-imap-pw")


def test_a_colleagues_neomutt_reply_to_a_note_stays_internal(running, relay, carol_mailbox):
    """Carol answers the internal-note notification from neomutt, as any colleague would: her
    answer is another note, and the customer receives nothing of it (issue 17, item 1)."""
    _tools_or_skip()
    gw = running()
    send(gw.smtp_port, build(frm=BANK_CUSTOMER, name="Wang Customer", subject="Batch job fails",
                             body="The nightly batch fails with code 7.\n", msgid="<b1@bigbank.example>"),
         BANK_CUSTOMER, [SUPPORT])
    alice_env = wait_for(lambda: [m for m in list(relay.messages) if m["to"] == [ALICE]], what="notification")[0]
    alice_note = parse(alice_env["raw"])
    note = build(frm=ALICE, name="Alice Wang", to=str(alice_note["Reply-To"]), subject="Re: " + alice_note["Subject"],
                 body="#note\nTheir licence expired last week; do not mention the discount.\n",
                 in_reply_to=alice_note["Message-ID"])
    send(gw.smtp_port, note, ALICE, [alice_note["Reply-To"].addresses[0].addr_spec])

    def note_to_carol():
        return [m for m in list(relay.messages) if m["to"] == [CAROL] and "licence expired" in all_text(m["raw"])]

    carol_env = wait_for(note_to_carol, what="the note's notification to carol")[0]
    carol_mailbox.append(carol_env["raw"])
    tid = latest_ticket_id(gw.app)

    def carols_answer():
        return [m for m in messages(gw.app, tid) if m.sender_email == CAROL]

    mutt = NeomuttReplier(imap_host=carol_mailbox.host, imap_port=carol_mailbox.port, user=CAROL,
                          password="carol-imap-pw", smtp_port=gw.smtp_port, from_header=f"Carol Li <{CAROL}>")
    try:
        mutt.reply(parse(carol_env["raw"])["Message-ID"], "Agreed. I will call their CFO about the renewal.\n",
                   delivered=carols_answer)
    finally:
        mutt.cleanup()

    [kept] = wait_for(carols_answer, timeout=20, what="carol's answer stored")
    assert kept.internal and kept.kind == "note"
    assert kept.text.startswith("Agreed. I will call their CFO")
    # alice hears of it as a note; once that is out, all carol's answer caused has been dispatched
    wait_for(lambda: [m for m in list(relay.messages) if m["to"] == [ALICE] and "their cfo" in all_text(m["raw"])],
             timeout=20, what="carol's note told to alice")
    to_customer = [m for m in list(relay.messages) if BANK_CUSTOMER in m["to"]]
    assert len(to_customer) == 1  # the acknowledgement, nothing else
    for leak in ("cfo", "licence", "discount", CAROL, ALICE):
        assert leak not in all_text(to_customer[0]["raw"])
    assert not [m for m in messages(gw.app, tid) if m.direction == "out"]
