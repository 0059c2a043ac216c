"""Helpers for the IMAP tests: start pollers on a test app, read back what the gateway stored,
and write a supportgw.toml for a gateway run as a real subprocess."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from storage.models import Message, SpoolEntry, Ticket
from tests.conftest import free_port
from tests.mail import toml_value
from tests.dovecot import dovecot  # noqa: F401  (re-exported fixture)


def count(app, model, *where) -> int:
    with app.db.session() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def spooled(app) -> int:
    return count(app, SpoolEntry, SpoolEntry.source.like("imap:%"))


def tickets(app) -> int:
    return count(app, Ticket)


def inbound_by_message_id(app) -> dict[str, int]:
    """{message_id: number of inbound ticket messages stored for it}."""
    with app.db.session() as s:
        rows = s.execute(select(Message.message_id, func.count()).where(Message.direction == "in")
                         .group_by(Message.message_id)).all()
    return {mid.strip("<>"): n for mid, n in rows}


def spool_rows(app) -> list[SpoolEntry]:
    with app.db.session() as s:
        return list(s.execute(select(SpoolEntry).order_by(SpoolEntry.id)).scalars())


def seen_flags(server, folder: str = "INBOX") -> list[bool]:
    return [b"\\Seen" in m["flags"] for m in server.messages(folder).values()]


@pytest.fixture
def imap_gateway(make_app, dovecot):  # noqa: F811
    """start(**mailbox_overrides) -> a running Gateway (processor + IMAP poller, no SMTP)."""
    from gateway.runtime.runner import Gateway

    gws = []

    def start(app=None, **over):
        app = app or make_app(imap=[dovecot.mailbox_config(**over)])
        gw = Gateway(app, smtp=False, scheduler=False).start()
        gws.append(gw)
        return gw

    yield start
    for gw in gws:
        gw.stop()


def write_config(path: Path, *, database_url: str, data_dir: Path, imap: list[dict]) -> Path:
    sections = {
        "gateway": {"domain": "support.example.test", "support_addresses": ["support@support.example.test"],
                    "data_dir": str(data_dir), "secret_key": "test-secret-key-0123456789abcdef"},
        "database": {"url": database_url},
        "smtp": {"enabled": False, "host": "127.0.0.1", "port": free_port()},
        "outbound": {"smtp_host": "", "poll_interval": 0.5},
    }
    lines = []
    for name, kv in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in kv.items()]
        lines.append("")
    for mb in imap:
        lines.append("[[imap]]")
        lines += [f"{k} = {toml_value(v)}" for k, v in mb.items()]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


class SplittingProxy:
    """A loopback TCP proxy in front of an IMAP server that, once armed, delivers the next
    server line containing `marker` in two TCP segments a moment apart: exactly the split
    response that makes imapclient's idle_check raise AbortError (mjs/imapclient#519)."""

    def __init__(self, upstream_port: int, marker: bytes = b"EXISTS", pause: float = 0.3) -> None:
        import socket
        import threading

        self.upstream_port, self.marker, self.pause = upstream_port, marker, pause
        self.armed = threading.Event()
        self.splits = 0
        self._lsock = socket.socket()
        self._lsock.bind(("127.0.0.1", 0))
        self._lsock.listen(16)
        self.port = self._lsock.getsockname()[1]
        self._closed = False
        self._socks: list = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while not self._closed:
            try:
                client, _ = self._lsock.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._socks += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, src, dst, from_server: bool) -> None:
        import time

        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                i = data.find(self.marker) if from_server and self.armed.is_set() else -1
                if i >= 0:
                    self.armed.clear()
                    self.splits += 1
                    dst.sendall(data[:i])  # "* 7 " ... and the rest of the line later
                    time.sleep(self.pause)
                    dst.sendall(data[i:])
                else:
                    dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass

    def close(self) -> None:
        self._closed = True
        self._lsock.close()
        for s in self._socks:
            try:
                s.close()
            except OSError:
                pass
