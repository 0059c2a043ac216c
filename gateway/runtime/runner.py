"""`supportgw run`: start every part of the gateway and stop them cleanly.

SIGTERM/SIGINT: stop accepting (SMTP listener first), let in-flight spool
writes finish, stop workers, exit within a bounded time. SIGHUP: reload rules.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading

from gateway import CommandError, rules_sync
from gateway.pipeline import parse_pool
from gateway.runtime import heap
from gateway.runtime.dispatch import Dispatcher
from gateway.edges.smtp import start_listener
from gateway.jobs.scheduler import start_scheduler
from gateway.runtime.workers import Processor, SpoolWriter

log = logging.getLogger("supportgw")

SHUTDOWN_SECONDS = 10
WORKER_NICENESS = 10


def _worker_main(config, parent: int) -> None:
    """A worker process: turns spooled mail into tickets and sends the outbox.

    `parent` is the gateway's pid, passed in rather than read here: a gateway
    killed while this process was starting has already been replaced by init as
    our parent, and PDEATHSIG set after that never fires.
    """
    from gateway.app import build_app

    from gateway.logs import configure

    configure(config, role="worker")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    _die_with_parent()
    if os.getppid() != parent:
        log.error("gateway process %s died while this worker started; exiting", parent)
        return
    # The edge must answer SMTP and IMAP promptly; a burst waits safely in the spool.
    # So the worker yields the CPU to the gateway process whenever both want it.
    os.nice(WORKER_NICENESS)
    app = build_app(config, migrate=False, rules_from_database=True)
    heap.settle()
    dispatcher = Dispatcher(app)
    processor = Processor(app, on_processed=dispatcher.kick, interval=0.3)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    dispatcher.start()
    processor.start()
    while not done.wait(1.0):
        if os.getppid() != parent:  # the gateway was killed: never outlive it
            log.error("gateway process %s is gone; worker exiting", parent)
            break
    processor.stop()
    dispatcher.stop()
    processor.join(SHUTDOWN_SECONDS)
    dispatcher.join(SHUTDOWN_SECONDS)
    parse_pool.shutdown()  # else this process waits at its exit for the pool's processes, forever


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM this worker when its gateway dies, even by SIGKILL."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the getppid() check in the loop still ends us


class WorkerPool:
    """Worker processes, restarted if one dies."""

    def __init__(self, config, count: int) -> None:
        self.config, self.count = config, count
        self.ctx = multiprocessing.get_context("spawn")
        self.procs: list = []

    def start(self) -> None:
        self.procs = [self._spawn() for _ in range(self.count)]

    def _spawn(self):
        p = self.ctx.Process(target=_worker_main, args=(self.config, os.getpid()), name="supportgw-worker",
                             daemon=False)
        p.start()
        return p

    def check(self) -> None:
        for i, p in enumerate(self.procs):
            if not p.is_alive():
                log.error("worker process %s exited with %s; restarting it", p.pid, p.exitcode)
                self.procs[i] = self._spawn()

    def stop(self) -> None:
        for p in self.procs:
            if p.is_alive():
                p.terminate()  # SIGTERM: the worker finishes its transaction and exits
        for p in self.procs:
            p.join(SHUTDOWN_SECONDS)
            if p.is_alive():
                p.kill()


class _Nothing:
    def start(self): pass
    def stop(self): pass
    def join(self, *_): pass
    def kick(self): pass


class Gateway:
    """All running parts of one gateway process."""

    def __init__(self, app, *, smtp: bool = True, imap: bool = True, scheduler: bool = True,
                 workers: int = 0) -> None:
        self.app = app
        self.pool = WorkerPool(app.config, workers) if workers else None
        if self.pool:
            self.dispatcher, self.processor = _Nothing(), _Nothing()
        else:
            self.dispatcher = Dispatcher(app)
            self.processor = Processor(app, on_processed=self.dispatcher.kick)
        self.writer = SpoolWriter(app, on_spooled=self.processor.kick)
        self.controller = None
        self.pollers: list = []
        self.scheduler = None
        self._want_smtp, self._want_imap, self._want_scheduler = smtp, imap, scheduler
        self.stopped = threading.Event()

    def start(self) -> "Gateway":
        from storage.spool import sweep_orphans, sweep_tmp

        for blobs in (self.app.spool_blobs, self.app.attachments):
            if n := sweep_tmp(blobs):
                log.info("removed %d half-written file(s) left by an earlier crash in %s/tmp", n, blobs.root)
        if n := sweep_orphans(self.app.spool_blobs, self.app.db):
            log.info("removed %d spooled message file(s) in %s that no spool row names (their sender "
                     "was answered 451 over a day ago)", n, self.app.spool_blobs.root)
        # This process reads the rules file; what it loaded is what every process applies
        # (gateway.rules_sync), and it must be on record before a worker routes anything.
        rules_sync.publish(self.app)
        if self.pool:
            self.pool.start()
        self.writer.start()
        self.processor.start()
        self.dispatcher.start()
        cfg = self.app.config
        if self._want_smtp and cfg.smtp.enabled:
            try:
                _check_bindable(cfg.smtp.host, cfg.smtp.port)  # at once, not after the listener's 10 s wait
                self.controller = start_listener(self.app, self.writer)
            except (OSError, RuntimeError) as exc:  # (a port outside 1-65535 is a config error already)
                self.stop()  # the workers already started must not keep the process alive
                raise StartupError(
                    f"cannot listen for SMTP on {cfg.smtp.host}:{cfg.smtp.port}: {_reason(exc)}. Stop what holds "
                    f"that port (ss -ltnp 'sport = :{cfg.smtp.port}' shows it) or set [smtp] port/host "
                    f"in {cfg.source}") from exc
            log.info("SMTP listening on %s:%s for %s", cfg.smtp.host, self.controller.port,
                     ", ".join(cfg.all_support_addresses))
        if self._want_imap and cfg.imap:
            from gateway.edges.imap import start_pollers

            self.pollers = start_pollers(self.app, on_spooled=self.processor.kick)
        from gateway.edges.web import listen_address, start_web_server

        try:
            self.web = start_web_server(self.app)  # None unless [web] listen is set
        except OSError as exc:
            self.stop()
            raise StartupError(f"cannot listen for the web app on {listen_address(cfg)}: {_reason(exc)}. "
                               f"Stop what holds that port or set [web] listen in {cfg.source}") from exc
        if self._want_scheduler:
            self.scheduler = start_scheduler(self.app, kick=self.dispatcher.kick)
        return self

    @property
    def smtp_port(self) -> int:
        return self.controller.port if self.controller else 0

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()  # stop accepting first: clients get a refused connection, not a lost mail
        for p in self.pollers:
            p.stop()
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        if getattr(self, "web", None) is not None:
            self.web.stop()
        self.writer.stop()
        self.writer.join(SHUTDOWN_SECONDS)
        self.processor.stop()
        self.dispatcher.stop()
        for t in [self.processor, self.dispatcher, *self.pollers]:
            t.join(SHUTDOWN_SECONDS)
        if self.pool:
            self.pool.stop()
        self.stopped.set()

    def reload_rules(self, *, only_if_changed: bool = False) -> None:
        """Read the rules file again and put it in force in every process (gateway.rules_sync)."""
        ok = rules_sync.reload_from_file(self.app, only_if_changed=only_if_changed)
        if ok is not None:
            log.info("rules reload: %s", "applied" if ok else "refused, old rules stay in force")


class StartupError(CommandError):
    """The gateway could not start a part it was configured to run (a port in use, say)."""


def _check_bindable(host: str, port: int) -> None:
    import socket

    for family, kind, proto, _, addr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the listener itself binds
            probe.bind(addr)


def _reason(exc: BaseException) -> str:
    # aiosmtpd's Controller re-raises the listening thread's error, sometimes wrapped
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def run_forever(app) -> int:
    done, hup, wake = threading.Event(), threading.Event(), threading.Event()

    def _stop(signum, _frame):
        log.info("signal %s: shutting down", signum)
        done.set()
        wake.set()

    def _hup(*_):
        # Only flag it: a reload takes the rules lock and writes to the database, which a
        # signal handler interrupting this very loop mid-reload must not do.
        hup.set()
        wake.set()

    # Before anything starts: a SIGTERM while the edges come up (the listener already
    # answers) is an orderly shutdown, not death by the default action.
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGHUP, _hup)
    gw = Gateway(app, workers=app.config.gateway.workers).start()
    heap.settle()  # with workers = 0 this process stores the mail too
    while True:
        wake.wait(2)
        wake.clear()
        if done.is_set():
            break
        if gw.pool:
            gw.pool.check()
        if gw.scheduler is not None:
            gw.scheduler.check_health()  # a job stuck for several periods is logged loudly
        try:
            forced = hup.is_set()
            hup.clear()
            gw.reload_rules(only_if_changed=not forced)  # a save the database refused is tried again
            rules_sync.follow(app)  # another gateway on this database may have published newer rules
        except Exception:
            log.exception("rules reload check failed")
    gw.stop()
    log.info("stopped")
    return 0
