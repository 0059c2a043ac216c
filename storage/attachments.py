"""Content-addressed attachment files: data_dir/attachments/ab/cd/<sha256>.

The file name is the hash, never the sender's name, so no attachment name can
escape the directory.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class AttachmentStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, sha256: str) -> Path:
        if not _HEX64.match(sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, sha256: str, content: bytes) -> Path:
        path = self.path_for(sha256)
        if path.exists():
            return path
        tmp = path.with_name(f".{sha256}.{os.getpid()}.tmp")
        try:
            fh = open(tmp, "wb")  # its folder is there for all but the first file of 65,536 (no mkdir each time)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            fh = open(tmp, "wb")
        with fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        return path

    def adopt(self, tmp: Path, sha256: str) -> Path:
        """Move an already written and fsynced file into place under its hash."""
        path = self.path_for(sha256)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            tmp.unlink(missing_ok=True)
            os.utime(path)  # in use again: a sweep of unnamed old files must leave it be
            return path
        os.replace(tmp, path)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)  # the rename itself must survive a crash before the row commits
        finally:
            os.close(fd)
        return path

    def get(self, sha256: str) -> bytes:
        return self.path_for(sha256).read_bytes()
