"""One installation: every gateway on a database shares its data_dir and its secret key.

Attachments, large spooled mail, the sent Maildir and OAuth tokens live in the data_dir,
and the database names them: a gateway with a folder of its own stores files the
others cannot find (a notification forwarded without its attachment, an export
missing files). The reply addresses and survey links one gateway signs must verify on
every other: a gateway with another secret key refuses its colleagues' mail.

So the data_dir carries an identity (`installation.id`, made when the first gateway
starts on it), and the database records that identity and a check value of the key
(`Signer.key_check`, a MAC: it reveals nothing of the key). A command that stores or
sends mail (`run`, `ingest`, `import`) first compares the two with its own (`verify`):
a mismatch is one line that says what to do, exit 2, before anything is written.
`supportgw db adopt` records this gateway's folder and key as the installation's, for
when one was replaced on purpose (a lost folder rebuilt, a leaked key changed).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from sqlalchemy.exc import IntegrityError

from gateway.config import ConfigError
from storage.queries import installation as marks

ID_FILE = "installation.id"


def folder_id(data_dir: Path, *, create: bool) -> str:
    """The data_dir's identity; made (written durably) when missing and `create`, else ""."""
    path = data_dir / ID_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        if not create:
            return ""
    value = uuid.uuid4().hex
    tmp = path.with_name(f".{ID_FILE}.{os.getpid()}.tmp")
    with open(tmp, "w") as fh:
        fh.write(value + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    try:
        os.link(tmp, path)  # never replaces one another gateway made meanwhile
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_text().strip()


def verify(app) -> None:
    """Refuse (ConfigError: one line) unless this gateway's data_dir and key are the installation's;
    the first gateway on a database records its own."""
    cfg = app.config
    with app.db.session() as s:
        known = marks.marks(s)
    mine_dir = folder_id(cfg.data_dir, create=not known.get("data_dir_id"))
    mine = {"data_dir_id": mine_dir, "key_check": app.signer.key_check()}
    missing = {k: v for k, v in mine.items() if k not in known}
    if missing:
        try:
            with app.db.session() as s:
                for name, value in missing.items():
                    marks.put(s, name, value, at=app.now(), by=app.worker_id)
        except IntegrityError:  # another gateway recorded its own at the same moment: compare with it
            return verify(app)
        known = {**known, **missing}
    if known["data_dir_id"] != mine_dir:
        raise ConfigError(
            f"{cfg.source}: gateway.data_dir {cfg.data_dir} is not the folder the other gateways on this database "
            f"use (it {'has no ' + ID_FILE if not mine_dir else 'is another installation: ' + ID_FILE + ' differs'}): "
            f"every gateway on one database shares one data_dir (attachments and large mail are files there); point "
            f"gateway.data_dir at that folder, or, if this folder replaces it on purpose, run 'supportgw db adopt' once")
    if known["key_check"] != mine["key_check"]:
        raise ConfigError(
            f"{cfg.source}: gateway.secret_key is not the key the other gateways on this database sign with: the "
            f"reply addresses and survey links they sent would not verify here; use the same key on every gateway, "
            f"or, if the key was replaced on purpose, run 'supportgw db adopt' once (links already sent stop working)")


def adopt(app) -> list[str]:
    """Record this gateway's data_dir and key as the installation's; returns what changed."""
    mine = {"data_dir_id": folder_id(app.config.data_dir, create=True), "key_check": app.signer.key_check()}
    with app.db.session() as s:
        known = marks.marks(s)
        changed = [name for name, value in mine.items() if known.get(name) != value]
        for name in changed:
            marks.put(s, name, mine[name], at=app.now(), by=app.worker_id)
    return changed
