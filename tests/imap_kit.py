"""Helpers for the IMAP tests: start pollers on a test app, read back what the gateway stored,
and write a supportgw.toml for a gateway run as a real subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from storage.models import Message, SpoolEntry, Ticket
from tests.conftest import free_port
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
    from gateway.runner import Gateway

    gws = []

    def start(app=None, **over):
        app = app or make_app(imap=[dovecot.mailbox_config(**over)])
        gw = Gateway(app, smtp=False, scheduler=False).start()
        gws.append(gw)
        return gw

    yield start
    for gw in gws:
        gw.stop()


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(v)


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
        lines += [f"{k} = {_toml_value(v)}" for k, v in kv.items()]
        lines.append("")
    for mb in imap:
        lines.append("[[imap]]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in mb.items()]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
