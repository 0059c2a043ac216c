"""The IMAP poller's memory: mailbox leases, UID progress, and the retry backoff.

Lease times run on the ManualClock; these run on SQLite and on PostgreSQL
(SUPPORTGW_TEST_DB), through the same conditional UPDATE / INSERT.
"""

from __future__ import annotations

import dataclasses
import random
import threading

from gateway.edges.imap import Backoff
from gateway.edges.imap_state import load_progress, save_progress
from gateway.leases import lease_holder, release_lease, take_lease


def test_lease_is_exclusive_until_it_expires_then_taken_over(make_app, clock):
    app = make_app(clock=clock)
    assert take_lease(app, "imap:helpdesk", "gw-a", 30)
    assert not take_lease(app, "imap:helpdesk", "gw-b", 30)
    clock.advance(seconds=20)
    assert take_lease(app, "imap:helpdesk", "gw-a", 30)  # renewal pushes the expiry out
    clock.advance(seconds=20)
    assert not take_lease(app, "imap:helpdesk", "gw-b", 30)
    clock.advance(seconds=11)  # a gateway that stopped renewing is replaced
    assert take_lease(app, "imap:helpdesk", "gw-b", 30)
    assert not take_lease(app, "imap:helpdesk", "gw-a", 30)  # the old holder learns it lost it
    assert lease_holder(app, "imap:helpdesk")[0] == "gw-b"


def test_leases_of_different_mailboxes_are_independent(make_app, clock):
    app = make_app(clock=clock)
    assert take_lease(app, "imap:one", "gw-a", 30)
    assert take_lease(app, "imap:two", "gw-b", 30)
    assert not take_lease(app, "imap:two", "gw-a", 30)


def test_released_lease_is_taken_over_at_once(make_app, clock):
    app = make_app(clock=clock)
    assert take_lease(app, "imap:helpdesk", "gw-a", 30)
    release_lease(app, "imap:helpdesk", "gw-b")  # not the holder: no effect
    assert not take_lease(app, "imap:helpdesk", "gw-b", 30)
    release_lease(app, "imap:helpdesk", "gw-a")
    assert take_lease(app, "imap:helpdesk", "gw-b", 30)


def test_concurrent_takers_get_exactly_one_lease(make_app, clock):
    """Eight threads race for a fresh lease (the INSERT path) and an expired one (the UPDATE path)."""
    app = make_app(clock=clock)

    def race() -> list[str]:
        winners: list[str] = []
        barrier = threading.Barrier(8)

        def contender(i: int) -> None:
            barrier.wait()
            if take_lease(app, "imap:race", f"gw-{i}", 30):
                winners.append(f"gw-{i}")

        threads = [threading.Thread(target=contender, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        return winners

    first = race()
    assert len(first) == 1
    clock.advance(seconds=31)
    second = race()
    assert len(second) == 1
    assert lease_holder(app, "imap:race")[0] == second[0]


def test_progress_is_kept_per_mailbox_and_never_goes_back(make_app):
    app = make_app()
    assert load_progress(app, "helpdesk") is None
    save_progress(app, "helpdesk", 77, 10)
    save_progress(app, "helpdesk", 77, 8)  # a late, smaller write cannot rewind
    save_progress(app, "other", 5, 3)
    p = load_progress(app, "helpdesk")
    assert (p.uidvalidity, p.last_uid) == (77, 10)
    save_progress(app, "helpdesk", 91, 2)  # new UIDVALIDITY: numbering starts over
    p = load_progress(app, "helpdesk")
    assert (p.uidvalidity, p.last_uid) == (91, 2)
    assert load_progress(app, "other").last_uid == 3


def test_backoff_doubles_with_jitter_and_is_capped():
    b = Backoff(base=1.0, cap=60.0, rng=random.Random(3))
    delays = [b.next() for _ in range(10)]
    for n, d in enumerate(delays):
        ceiling = min(60.0, 2.0 ** n)
        assert ceiling / 2 <= d <= ceiling, (n, d)
    assert delays[-1] <= 60.0 and delays[5] >= 16.0
    assert len(set(delays)) == len(delays)  # jittered: no two pollers retry in lockstep
    b.reset()
    assert b.next() <= 1.0


def test_worker_identity_separates_gateways(make_app, clock):
    """Two App objects on one database with different worker ids behave like two processes."""
    a = make_app(clock=clock)
    b = dataclasses.replace(a, worker_id="other-host:1")
    assert take_lease(a, "imap:x", a.worker_id, 30)
    assert not take_lease(b, "imap:x", b.worker_id, 30)


def _dead_pid() -> int:
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_dead_process_of_this_host_loses_its_lease_at_once_another_hosts_keeps_it(make_app, clock):
    """A restarted gateway used to wait up to lease_seconds for its own dead predecessor (issue 19)."""
    app = make_app(clock=clock)
    host = app.worker_id.rpartition(":")[0]
    dead = _dead_pid()
    assert take_lease(app, "imap:a", f"{host}:{dead}", 30)
    assert take_lease(app, "imap:a", app.worker_id, 30)  # at once: no clock.advance
    assert lease_holder(app, "imap:a")[0] == app.worker_id
    # the scheduler's holders carry a suffix; same rule
    assert take_lease(app, "job:x", f"{host}:{dead}/abcd1234", 300)
    assert take_lease(app, "job:x", f"{app.worker_id}/ffff0000", 300)
    # another host's holder, dead pid or not, keeps it until it expires
    assert take_lease(app, "imap:b", f"other-{host}:{dead}", 30)
    assert not take_lease(app, "imap:b", app.worker_id, 30)
    # a live process of this host (our parent, say) keeps it too
    import os

    assert take_lease(app, "imap:c", f"{host}:{os.getppid()}", 30)
    assert not take_lease(app, "imap:c", app.worker_id, 30)
    clock.advance(seconds=31)
    assert take_lease(app, "imap:b", app.worker_id, 30) and take_lease(app, "imap:c", app.worker_id, 30)
