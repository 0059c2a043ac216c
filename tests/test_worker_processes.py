"""Worker processes never outlive their gateway, however it dies and whenever."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path

from gateway.runtime.runner import _worker_main
from tests.conftest import fresh_database_url, make_config, wait_for
from tests.gwproc import GatewayProcess, write_run_config


def _children(pid: int) -> set[int]:
    out: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        out.update(int(x) for x in text)
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead; only its parent has not looked yet
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_workers_die_when_the_gateway_is_killed(tmp_path, relay):
    cfg, port = write_run_config(tmp_path, fresh_database_url(tmp_path), relay.port, gateway={"workers": 2})
    gw = GatewayProcess(cfg, port, tmp_path / "gw.log")
    gw.start()
    try:
        wait_for(lambda: len(_children(gw.proc.pid)) >= 2, timeout=30, what="two worker processes")
        workers = _children(gw.proc.pid)
        gw.kill9()
        wait_for(lambda: not any(_alive(p) for p in workers), timeout=15, what="workers gone with their gateway")
    finally:
        gw.stop_quietly()


def test_a_worker_whose_gateway_died_while_it_started_exits_at_once(tmp_path):
    """The gateway was killed between spawning the worker and the worker's first line: its
    parent is already init, so PDEATHSIG will never fire. It must notice and leave."""
    config = make_config(tmp_path, database_url=fresh_database_url(tmp_path))
    ctx = multiprocessing.get_context("spawn")
    not_our_parent = os.getppid()  # alive, but not the parent of the process we spawn
    p = ctx.Process(target=_worker_main, args=(config, not_our_parent))
    started = time.monotonic()
    p.start()
    p.join(60)
    try:
        assert not p.is_alive(), "the worker kept running for a gateway that is gone"
        assert p.exitcode == 0
        assert time.monotonic() - started < 60
    finally:
        if p.is_alive():
            os.kill(p.pid, signal.SIGKILL)


def test_a_worker_with_a_parse_pool_dies_with_its_gateway_and_takes_the_pool_along(tmp_path, relay):
    """A batch large enough is parsed ahead in the worker's process pool. Killed with its gateway,
    the worker used to stop its threads and then wait at its exit, forever, for the pool's
    processes (multiprocessing joins its children; nothing had told the pool to stop): found
    as an orphan worker still holding the database an hour after a kill test."""
    import smtplib

    from tests.mail import build

    cfg, port = write_run_config(tmp_path, fresh_database_url(tmp_path), relay.port)
    gw = GatewayProcess(cfg, port, tmp_path / "gw.log")
    gw.start()
    try:
        wait_for(lambda: len(_children(gw.proc.pid)) >= 1, timeout=30, what="the worker process")
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
            for i in range(60):
                c.sendmail(f"c{i}@customer.example", ["support@support.example.test"],
                           build(frm=f"c{i}@customer.example", subject=f"Case {i}", msgid=f"<p{i}@customer.example>",
                                 body=f"Problem number {i}.\n"))
        def grandchildren() -> set[int]:
            return {g for c in _children(gw.proc.pid) if _alive(c) for g in _children(c)}

        pool = wait_for(grandchildren, timeout=60, what="the worker's parse pool")
        everyone = _children(gw.proc.pid) | pool
        gw.kill9()
        wait_for(lambda: not any(_alive(p) for p in everyone), timeout=30,
                 what="the worker and its parse pool gone with their gateway")
    finally:
        gw.stop_quietly()
