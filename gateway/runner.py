"""`supportgw run`: start every part of the gateway and stop them cleanly.

SIGTERM/SIGINT: stop accepting (SMTP listener first), let in-flight spool
writes finish, stop workers, exit within a bounded time. SIGHUP: reload rules.
"""

from __future__ import annotations

import logging
import signal
import threading

from gateway.dispatch import Dispatcher
from gateway.smtp import start_listener
from gateway.workers import Processor, SpoolWriter

log = logging.getLogger("supportgw")

SHUTDOWN_SECONDS = 10


class Gateway:
    """All running parts of one gateway process."""

    def __init__(self, app, *, smtp: bool = True, imap: bool = True, scheduler: bool = True) -> None:
        self.app = app
        self.dispatcher = Dispatcher(app)
        self.processor = Processor(app, on_processed=self.dispatcher.kick)
        self.writer = SpoolWriter(app, on_spooled=self.processor.kick)
        self.controller = None
        self.pollers: list = []
        self.scheduler = None
        self._want_smtp, self._want_imap, self._want_scheduler = smtp, imap, scheduler
        self.stopped = threading.Event()

    def start(self) -> "Gateway":
        self.writer.start()
        self.processor.start()
        self.dispatcher.start()
        cfg = self.app.config
        if self._want_smtp and cfg.smtp.enabled:
            self.controller = start_listener(self.app, self.writer)
            log.info("SMTP listening on %s:%s for %s", cfg.smtp.host, self.controller.port,
                     ", ".join(cfg.gateway.support_addresses))
        if self._want_imap and cfg.imap:
            from gateway.imap import start_pollers

            self.pollers = start_pollers(self.app, on_spooled=self.processor.kick)
        if self._want_scheduler:
            try:
                from gateway.scheduler import start_scheduler
            except ImportError:
                start_scheduler = None
            if start_scheduler is not None:
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
        self.writer.stop()
        self.writer.join(SHUTDOWN_SECONDS)
        self.processor.stop()
        self.dispatcher.stop()
        for t in [self.processor, self.dispatcher, *self.pollers]:
            t.join(SHUTDOWN_SECONDS)
        self.stopped.set()

    def reload_rules(self) -> None:
        ok = self.app.rules.reload()
        log.info("rules reload: %s", "applied" if ok else "refused, old rules stay in force")


def run_forever(app) -> int:
    gw = Gateway(app).start()
    done = threading.Event()

    def _stop(signum, _frame):
        log.info("signal %s: shutting down", signum)
        done.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGHUP, lambda *_: gw.reload_rules())
    while not done.wait(5):
        try:
            if app.rules.reload_if_changed():
                log.info("rules file changed: reloaded")
        except Exception:
            log.exception("rules reload check failed")
    gw.stop()
    log.info("stopped")
    return 0
