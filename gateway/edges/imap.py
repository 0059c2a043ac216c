"""IMAP edge: one poller thread per configured mailbox drains it into the spool.

Per mailbox: take the lease `imap:<name>` (one gateway process drains a mailbox),
connect, SELECT, then loop: fetch new messages in bounded batches, commit the
raw bytes with `pipeline.spool`, and only then acknowledge them on the server
(\\Seen, move or delete), record the last UID, and wake the processor. A drain
that took mail is followed by another at once (mail that arrived meanwhile was
announced in its replies, and IDLE does not announce it again); after an empty
one a NOOP asks whether mail came after its SEARCH (IDLE announces only what
changes once it has started), and then wait in IDLE (re-issued every
IDLE_REISSUE seconds, under the 29-minute limit) or poll every `poll_interval`
seconds.

Which messages are new: after the first drain of a folder, every UID above the
recorded last UID. On the first drain (or after UIDVALIDITY changed) the
server's own state says it: UNSEEN messages for `after = seen`, every message
for move/delete; progress is recorded only when that first pass completes, so
a crash during it repeats the same rule. The spool's Message-ID + hash dedupe
is the backstop for a crash between commit and acknowledgement.

Any failure (refused, dropped mid-FETCH, login refused, BYE, imapclient's
idle_check abort #519, database down) is one log line and a retry after an
exponential backoff with jitter. With `auth = "oauth2"` the access token is
refreshed before it expires even while the session sits in IDLE, so a revoked
consent is noticed (and the administrators told, gateway/oauth/alert.py) at the
next refresh, not when the connection happens to drop. This module holds no
ticket logic.
"""

from __future__ import annotations

import logging
import random
import threading
import time

from gateway.edges import imap_batch
from gateway.oauth import tokens as oauth, alert as oauth_alert
from gateway.config import ConfigError
from gateway.edges.imap_conn import NETWORK_ERRORS, SERVER_ERRORS, ImapProblem, close, connect, select, where
from gateway.edges.imap_state import load_progress, mark_synced, save_progress
from gateway.leases import release_lease, take_lease
from gateway.pipeline.process import Source, spool
from storage.db import StorageUnavailable
from storage.spool import SpoolSink

log = logging.getLogger("supportgw.imap")

IDLE_REISSUE = 25 * 60  # RFC 2177: servers may drop an IDLE after 30 minutes
IDLE_TICK = 1.0  # how often the IDLE loop looks up (stop request, lease renewal)


class LeaseLost(Exception):
    pass


class Backoff:
    """Exponential delays with jitter: base*2^n scaled by a random factor in [0.5, 1], capped."""

    def __init__(self, base: float = 1.0, cap: float = 300.0, rng: random.Random | None = None) -> None:
        self.base, self.cap = base, cap
        self.rng = rng or random.Random()
        self.failures = 0

    def next(self) -> float:
        ceiling = min(self.cap, self.base * (2 ** min(self.failures, 30)))
        self.failures += 1
        return ceiling * (0.5 + 0.5 * self.rng.random())

    def reset(self) -> None:
        self.failures = 0


def source_of(mailbox) -> Source:
    """What the spool records about mail drained from `mailbox`. With `address` set, that
    [[address]] is the envelope recipient, as it is for mail the SMTP edge takes for it: the
    mailbox is where mail for that address is delivered, so it comes before the To and Cc
    headers when the pipeline asks which brand the customer wrote to (config.brand_for)."""
    return Source(f"imap:{mailbox.name}", envelope_to=(mailbox.address,) if mailbox.address else ())


class Poller(threading.Thread):
    """Drains one mailbox until stop(); safe to run in several processes (lease)."""

    def __init__(self, app, mailbox, on_spooled=None, backoff: Backoff | None = None) -> None:
        super().__init__(name=f"imap-{mailbox.name}", daemon=True)
        self.app, self.mb = app, mailbox
        self.on_spooled = on_spooled
        self.backoff = backoff or Backoff()
        self.lease_name = f"imap:{mailbox.name}"
        self.source = source_of(mailbox)
        self._halt = threading.Event()
        self._renew_at = 0.0
        self._holding = False
        self.spooled = 0  # messages committed by this poller (for logs and benches)
        self.last_error = ""
        self.tokens = oauth.source_for(app.config, mailbox.name) if mailbox.auth == "oauth2" else None
        self._token_retry_at = 0.0
        self._token_backoff = Backoff(base=5.0, cap=300.0)

    # ------------------------------------------------------------ lifecycle

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        try:
            while not self._halt.is_set():
                if not self._hold_lease():
                    self._halt.wait(min(2.0, self.mb.lease_seconds / 4))
                    continue
                client, clean = None, False
                try:
                    client = connect(self.mb, self.tokens)
                    self._session(client)
                    clean = True
                except LeaseLost:
                    log.warning("imap %s: lease taken over by another gateway; standing by", self.mb.name)
                except ImapProblem as exc:
                    if exc.kind == "oauth":
                        self._tell_admins(str(exc), exc.permanent)
                    self._failed(str(exc))
                except StorageUnavailable as exc:
                    self._failed(f"{where(self.mb)}: database unavailable ({exc}); "
                                 "messages stay unacknowledged on the server")
                except NETWORK_ERRORS as exc:
                    self._failed(f"{where(self.mb)}: connection lost ({type(exc).__name__}: {exc})")
                except SERVER_ERRORS as exc:
                    self._failed(f"{where(self.mb)}: server error ({exc})")
                except Exception as exc:  # never let one mailbox's thread die
                    log.exception("imap %s: unexpected error", self.mb.name)
                    self._failed(f"{where(self.mb)}: unexpected {type(exc).__name__}: {exc}")
                finally:
                    close(client, graceful=clean)
        finally:
            if self._holding:
                try:
                    release_lease(self.app, self.lease_name, self.app.worker_id)
                except Exception as exc:
                    log.warning("imap %s: could not release lease: %s", self.mb.name, exc)

    def _failed(self, message: str) -> None:
        delay = self.backoff.next()
        self.last_error = message
        log.warning("%s; retrying in %.1fs", message, delay)
        try:
            mark_synced(self.app, self.mb.name, error=message)
        except Exception:  # the database may be what failed; the log line above says it
            pass
        self._halt.wait(delay)

    # ------------------------------------------------------------ lease

    def _hold_lease(self) -> bool:
        try:
            ok = take_lease(self.app, self.lease_name, self.app.worker_id, self.mb.lease_seconds)
        except StorageUnavailable as exc:
            self._failed(f"imap {self.mb.name}: cannot take lease, database unavailable ({exc})")
            return False
        if ok and not self._holding:
            log.info("imap %s: this gateway (%s) drains the mailbox", self.mb.name, self.app.worker_id)
        self._holding = ok
        self._renew_at = time.monotonic() + self.mb.lease_seconds / 3
        return ok

    def _sink(self) -> SpoolSink:
        return SpoolSink(self.app.spool_blobs, self.app.config.gateway.spool_inline_max)

    def _renew_if_due(self) -> None:
        if time.monotonic() >= self._renew_at and not self._hold_lease():
            raise LeaseLost()
        self._refresh_token_if_due()

    def _refresh_token_if_due(self) -> None:
        """Refresh ahead of expiry while connected: the session keeps working meanwhile,
        and a refusal is told now rather than at the next reconnection."""
        if self.tokens is None or not self.tokens.due() or time.monotonic() < self._token_retry_at:
            return
        try:
            self.tokens.token()
            self._token_backoff.reset()
        except oauth.OAuthFailure as exc:
            self._token_retry_at = time.monotonic() + self._token_backoff.next()
            log.warning("%s; the current session goes on until the server ends it", exc)
            self._tell_admins(str(exc), exc.permanent)

    def _tell_admins(self, message: str, permanent: bool) -> None:
        try:
            oauth_alert.alert(self.app, self.mb.name, message, permanent=permanent)
        except StorageUnavailable as exc:
            log.error("%s; could not queue the administrators' alert (database unavailable: %s)", message, exc)

    # ------------------------------------------------------------ one connection

    def _session(self, client) -> None:
        sel = select(client, self.mb)
        uidvalidity = int(sel.get(b"UIDVALIDITY", 0))
        uidnext = int(sel.get(b"UIDNEXT", 0))
        ack = imap_batch.Acknowledger(client, self.mb)
        idle = self.mb.idle and client.has_capability("IDLE")
        log.info("imap %s: connected to %s, folder %r (UIDVALIDITY %s), %s", self.mb.name,
                 f"{self.mb.host}:{self.mb.port}", self.mb.folder, uidvalidity,
                 "waiting in IDLE" if idle else f"polling every {self.mb.poll_interval:g}s")
        took = self._drain(client, ack, uidvalidity, uidnext)
        self.backoff.reset()
        self.last_error = ""
        while not self._halt.is_set():
            # After a drain that took mail, look again before waiting: mail that arrived during
            # it was announced in the replies to its FETCH/STORE, which IDLE will not repeat.
            if not took:
                if idle:
                    # Mail that arrived after the drain's last SEARCH is announced by nobody:
                    # Dovecot reports in IDLE only what changes after IDLE starts (it tells the
                    # rest at the next command). A NOOP first asks; an announcement means drain.
                    if not _announced(client.noop()):
                        self._idle(client)
                else:
                    self._poll_wait()
                    client.noop()  # a non-IDLE session sees new mail only after a sync
            if self._halt.is_set():
                break
            took = self._drain(client, ack, uidvalidity, uidnext)

    def _candidates(self, client, uidvalidity: int) -> tuple[list[int], bool]:
        """(UIDs to take, whether this is a first pass over the folder)."""
        prog = load_progress(self.app, self.mb.name)
        if prog is not None and prog.uidvalidity == uidvalidity:
            uids = client.search(["UID", f"{prog.last_uid + 1}:*", "NOT", "DELETED"])
            return sorted(u for u in uids if u > prog.last_uid), False
        if prog is not None:
            log.warning("imap %s: UIDVALIDITY changed (%s -> %s): the server renumbered the folder; "
                        "re-reading it, duplicates are recognised by Message-ID and content",
                        self.mb.name, prog.uidvalidity, uidvalidity)
        crit = ["UNSEEN", "NOT", "DELETED"] if self.mb.after == "seen" else ["NOT", "DELETED"]
        return sorted(client.search(crit)), True

    def _drain(self, client, ack, uidvalidity: int, uidnext: int) -> int:
        """Take every new message; returns how many there were."""
        uids, first_pass = self._candidates(client, uidvalidity)
        if uids:
            log.info("imap %s: %d new message(s)", self.mb.name, len(uids))
        done = 0
        for batch in imap_batch.plan(client, uids, max(1, self.mb.batch_size)):
            if self._halt.is_set():
                return len(uids)
            self._renew_if_due()
            msgs = imap_batch.fetch(client, batch, on_progress=self._renew_if_due, sink=self._sink)
            if msgs:
                results = spool(self.app, [(raw, self.source) for _, raw in msgs])  # committed here
                dups = sum(1 for r in results if r.duplicate)
                if dups:
                    log.info("imap %s: %d of %d already spooled before (acknowledging again)",
                             self.mb.name, dups, len(msgs))
            ack(batch)  # only now: the bytes are safe in the spool
            done = max(done, batch[-1])
            if not first_pass:
                save_progress(self.app, self.mb.name, uidvalidity, batch[-1])
            self.spooled += len(msgs)
            if msgs and self.on_spooled:
                self.on_spooled()
        mark_synced(self.app, self.mb.name)  # drained to the end: what /readyz calls a good sync
        if first_pass:
            # Everything that existed at SELECT time has been judged; newer UIDs come next.
            save_progress(self.app, self.mb.name, uidvalidity, max(done, uidnext - 1, 0))
        return len(uids)

    # ------------------------------------------------------------ waiting

    def _poll_wait(self) -> None:
        deadline = time.monotonic() + self.mb.poll_interval
        while not self._halt.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._halt.wait(min(left, IDLE_TICK))
            self._renew_if_due()

    def _idle(self, client) -> None:
        """IDLE until the server reports new mail, a stop request, or time to re-issue."""
        client.idle()
        started = time.monotonic()
        while not self._halt.is_set():
            t0 = time.monotonic()
            responses = client.idle_check(timeout=IDLE_TICK)
            news = False
            for r in responses:
                if r and r[0] in (b"BYE", b"NO", b"BAD"):
                    # BYE: the server is going away. NO/BAD while idling: the session is broken
                    # (e.g. the folder was deleted and recreated); a fresh one re-reads UIDVALIDITY.
                    text = b" ".join(x for x in r if isinstance(x, bytes)).decode(errors="replace")
                    raise ImapProblem("server", f"{where(self.mb)}: server interrupted the session ({text})")
                if len(r) > 1 and r[1] in (b"EXISTS", b"RECENT"):
                    news = True
            if news:
                break
            # idle_check returns early and empty when the server closed the socket
            # (it swallows EOF); leave IDLE so the reply to DONE tells dead from alive.
            if not responses and time.monotonic() - t0 < IDLE_TICK / 2:
                break
            self._renew_if_due()
            # Re-issue before the server's 30-minute limit, and resync every poll_interval:
            # a guard for whatever the NOOP before IDLE could not see (mail landing in the
            # instant between the NOOP's reply and the IDLE command).
            if time.monotonic() - started > min(IDLE_REISSUE, self.mb.poll_interval):
                break
        client.idle_done()


def _announced(noop_reply) -> bool:
    """Whether a NOOP's untagged replies announce new mail (EXISTS or RECENT)."""
    _text, responses = noop_reply
    return any(isinstance(r, tuple) and len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses)


def start_pollers(app, on_spooled=None) -> list[Poller]:
    """Start one poller per [[imap]] mailbox; the caller stops and joins them."""
    names = [mb.name for mb in app.config.imap]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"[[imap]] mailbox names must be unique; repeated: {', '.join(dupes)}")
    pollers = [Poller(app, mb, on_spooled=on_spooled) for mb in app.config.imap]
    for p in pollers:
        p.start()
    return pollers
