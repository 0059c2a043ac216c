"""Content-addressed attachment files: data_dir/attachments/ab/cd/<sha256>.

The file name is the hash, never the sender's name, so no attachment name can
escape the directory.
"""

from __future__ import annotations

import itertools
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import event

from storage.rows import Session

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_staged = itertools.count()


class AttachmentStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, sha256: str) -> Path:
        if not _HEX64.match(sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def stage(self, sha256: str, content: bytes) -> str | None:
        """Write a file ahead of the transaction that will name it (the parse pool does this,
        gateway/pipeline/parse_pool.py, where the store stage would wait on creating and fsyncing
        it): into tmp/ under a name no other writer uses, fsynced, its final folder made. `put`
        then moves it into place with one rename. Never used, it is removed by whoever staged it
        (gateway.pipeline.process) or, after a crash, by `storage.spool.sweep_tmp`. None when the
        file is already stored."""
        path = self.path_for(sha256)
        if path.exists():
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.root / "tmp" / f"{sha256}.{os.getpid()}.{next(_staged)}"
        _write_synced(tmp, content)
        return str(tmp)

    def put(self, sha256: str, content: bytes, staged: str | None = None, *, session=None) -> Path:
        """Store `content` under its hash, durably: from the file `stage` wrote for it when
        there is one (a rename), else written here. With `session`, the rename is made durable
        (its folder fsynced) just before that session commits, together with the others of its
        transaction and in parallel, rather than here: an fsync of a folder took 0.2-0.4 ms,
        3% of a message's processing."""
        path = self.path_for(sha256)
        if path.exists():
            if staged:
                Path(staged).unlink(missing_ok=True)
            return path
        if staged:
            try:
                os.replace(staged, path)
            except FileNotFoundError:
                pass  # gone (a batch run again after its stage files were cleared): written below
            else:
                return _durable(path, session)
        tmp = path.with_name(f".{sha256}.{os.getpid()}.tmp")
        _write_synced(tmp, content)
        os.replace(tmp, path)
        return _durable(path, session)  # the new name must survive a crash once the row naming it commits

    def adopt(self, tmp: Path, sha256: str) -> Path:
        """Move an already written and fsynced file into place under its hash."""
        path = self.path_for(sha256)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            tmp.unlink(missing_ok=True)
            os.utime(path)  # in use again: a sweep of unnamed old files must leave it be
            return path
        os.replace(tmp, path)
        _fsync_dir(path.parent)  # the rename itself must survive a crash before the row commits
        return path

    def get(self, sha256: str) -> bytes:
        return self.path_for(sha256).read_bytes()


_FOLDERS = "attachment_folders_to_sync"  # session.info: folders a rename went into since the last commit
_syncer: tuple[int, ThreadPoolExecutor] | None = None


@event.listens_for(Session, "before_commit")
def _sync_folders(session) -> None:
    """Before the rows naming the files commit, their renames are made durable."""
    folders = session.info.pop(_FOLDERS, None)
    if not folders:
        return
    if len(folders) == 1:
        _fsync_dir(next(iter(folders)))
        return
    global _syncer
    if _syncer is None or _syncer[0] != os.getpid():  # (a pool's threads do not survive a fork)
        _syncer = (os.getpid(), ThreadPoolExecutor(4, thread_name_prefix="fsync"))
    list(_syncer[1].map(_fsync_dir, folders))  # each fsync waits on the disk, not on Python


def _durable(path: Path, session) -> Path:
    """The rename into `path` made durable: now, or with `session` just before it commits."""
    if session is not None:
        session.info.setdefault(_FOLDERS, set()).add(path.parent)
    else:
        _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_synced(tmp: Path, content: bytes) -> None:
    """Write `content` to the new file `tmp`, fsynced; its folder is made only when missing (it is
    there for all but the first file of each of the 65,536: no mkdir each time)."""
    try:
        fh = open(tmp, "wb")
    except FileNotFoundError:
        tmp.parent.mkdir(parents=True, exist_ok=True)
        fh = open(tmp, "wb")
    with fh:
        fh.write(content)
        fh.flush()
        os.fsync(fh.fileno())


def discard_staged(names) -> None:
    """Remove stage files no `put` moved into place (their message was not stored)."""
    for name in names:
        Path(name).unlink(missing_ok=True)
