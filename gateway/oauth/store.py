"""The OAuth token store: one file per account under `data_dir/oauth/`, readable by us alone.

An account is an `[[imap]]` mailbox's name or `outbound`. Its file (mode 0600, in a
0700 folder) holds the refresh token `supportgw oauth login` obtained, the current
access token and its expiry, and the state of the last refresh: when it first
failed, why, and whether the administrators were told. Tokens are never written
to the database or to a log.

Several gateways share one data_dir (it already holds spool-blobs), so every
read-modify-write happens under `locked()`: an exclusive POSIX lock on a sibling
`.lock` file (fcntl.lockf, which Linux also honours over NFS). A process that waited
for the lock re-reads the file first, so when one gateway has just refreshed (and
the provider rotated the refresh token) the others use its result instead of
spending the old, now invalid refresh token. Writes are atomic: a temporary file,
fsync, rename.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import threading
from pathlib import Path

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")
# POSIX locks belong to a process, not a thread: the IMAP poller and the outbound
# dispatcher of one process also take this per-file thread lock first.
_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


class TokenStore:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def path(self, account: str) -> Path:
        return self.folder / f"{_SAFE.sub('_', account)}.json"

    def _ensure_folder(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.folder, 0o700)

    def load(self, account: str) -> dict:
        """The account's record, {} when nobody signed in yet."""
        try:
            return json.loads(self.path(account).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {}

    def save(self, account: str, record: dict) -> None:
        self._ensure_folder()
        final = self.path(account)
        tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(record, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    @contextlib.contextmanager
    def locked(self, account: str):
        """Hold the account's lock (across processes and hosts sharing data_dir)."""
        self._ensure_folder()
        lock_path = self.folder / f".{_SAFE.sub('_', account)}.lock"
        with _THREAD_LOCKS_GUARD:
            tlock = _THREAD_LOCKS.setdefault(str(lock_path.resolve()), threading.Lock())
        with tlock:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX)
                yield
            finally:
                with contextlib.suppress(OSError):
                    fcntl.lockf(fd, fcntl.LOCK_UN)
                os.close(fd)

    def update(self, account: str, **values) -> dict:
        """Merge `values` into the record (call under `locked`)."""
        record = self.load(account)
        record.update(values)
        self.save(account, record)
        return record
