"""Where a history comes from: mbox files, Maildir folders, folders of .eml files, an IMAP folder.

Owns reading them twice: `keys()` once to list the messages, then `get(key)`
for each message in the order the importer writes conversations, so a history
of any size is never held in memory. Knows nothing of tickets.

Must not: change a mailbox (IMAP folders are opened read-only, no \\Seen set).
"""

from __future__ import annotations

import mmap
import re
from datetime import datetime, timezone
from pathlib import Path


class SourceError(Exception):
    """A path or mailbox that cannot be read; worded for the person who typed it."""


class FileSource:
    """An mbox file, a Maildir, a single .eml file, or a folder of them (recursively)."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.label = str(self.path)
        p = self.path
        if p.is_dir():  # a Maildir (cur/, new/), nested Maildirs, a folder of .eml: every file in it
            self.kind, self.box = "folder", None
        elif p.is_file():
            with open(p, "rb") as fh:
                head = fh.read(5)
            if head == b"From ":
                self.kind, self.box = "mbox", _Mbox(p)
            else:
                self.kind, self.box = "file", None
        else:
            raise SourceError(f"{p}: no such file or folder")

    def keys(self) -> list:
        if self.kind == "mbox":
            return self.box.keys()
        if self.kind == "folder":
            # a Maildir's tmp/ holds deliveries not finished yet; dot-files are index files of mail clients
            return sorted(str(x.relative_to(self.path)) for x in self.path.rglob("*")
                          if x.is_file() and not x.name.startswith(".") and "tmp" not in x.relative_to(self.path).parts[:-1])
        return [""]

    def get(self, key) -> bytes:
        if self.box is not None:
            return self.box.get_bytes(key)
        return (self.path / key).read_bytes() if key else self.path.read_bytes()

    def where(self, key) -> tuple:
        """Where message `key` lies, as plain values that `read_at` turns into its bytes in any
        process: the importer's parsing processes read the file themselves instead of having
        every message's bytes shipped to them."""
        if self.box is not None:
            return ("mbox", str(self.path)) + self.box._spans[key]
        return ("file", str(self.path / key) if key else str(self.path))

    def delivered(self, key) -> datetime | None:
        """When the message was delivered, for one whose Date header is missing or unreadable: the
        mbox From_ line's date, a Maildir file name's leading timestamp, else the file's mtime."""
        if self.kind == "mbox":
            return self.box.delivered(key)
        p = self.path / key if key else self.path
        stamp = p.name.split(".", 1)[0]
        try:
            secs = int(stamp) if stamp.isdigit() and len(stamp) >= 9 else p.stat().st_mtime
        except OSError:
            return None
        return datetime.fromtimestamp(secs, timezone.utc)

    def close(self) -> None:
        if self.kind == "mbox":
            self.box.close()


class _Mbox:
    """An mbox file read through a memory map: the messages' offsets found by one regular-expression
    pass (the stdlib's mailbox.mbox reads it line by line, which cost as much as parsing the
    headers). A message is its bytes between "From " lines, the From_ line and the blank line
    before the next one left out, as mailbox.mbox gives them."""

    _SEP = re.compile(rb"\n(?=From )")

    def __init__(self, path: Path) -> None:
        self._fh = open(path, "rb")
        self._map = mmap.mmap(self._fh.fileno(), 0, access=mmap.ACCESS_READ)
        starts = [0] + [m.end() for m in self._SEP.finditer(self._map)]
        self._spans = list(zip(starts, starts[1:] + [len(self._map)]))

    def keys(self) -> list:
        return list(range(len(self._spans)))

    def get_bytes(self, key) -> bytes:
        start, end = self._spans[key]
        return _mbox_message(self._map[start:end])

    def delivered(self, key) -> datetime | None:
        start, end = self._spans[key]
        line = self._map[start:self._map.find(b"\n", start, end)].decode("ascii", "replace").split()
        try:  # "From sender Tue Mar 14 09:30:00 2019": the last five words, asctime
            when = datetime.strptime(" ".join(line[-5:]), "%a %b %d %H:%M:%S %Y")
        except ValueError:
            return None
        return when.replace(tzinfo=timezone.utc)

    def close(self) -> None:
        self._map.close()
        self._fh.close()


def _mbox_message(chunk: bytes) -> bytes:
    """One mbox entry (its From_ line to the next one's) as mailbox.mbox gives the message."""
    body = chunk.find(b"\n")
    chunk = chunk[body + 1:] if body >= 0 else b""
    for blank in (b"\r\n\r\n", b"\n\n"):
        if chunk.endswith(blank):
            return chunk[:-len(blank) // 2]
    return chunk


def read_all(wheres: list) -> list[bytes]:
    """The bytes of messages given by `FileSource.where(key)` (or the bytes themselves, as an
    IMAP folder's are shipped), in order; in whichever process calls it. An mbox is opened once
    for all its messages in the list."""
    out: list[bytes] = []
    files: dict = {}
    try:
        for w in wheres:
            if isinstance(w, bytes):
                out.append(w)
            elif w[0] == "mbox":
                fh = files.get(w[1]) or files.setdefault(w[1], open(w[1], "rb"))
                fh.seek(w[2])
                out.append(_mbox_message(fh.read(w[3] - w[2])))
            else:
                out.append(Path(w[1]).read_bytes())
    finally:
        for fh in files.values():
            fh.close()
    return out


class ImapSource:
    """One folder of a configured [[imap]] mailbox, read-only (EXAMINE, BODY.PEEK)."""

    def __init__(self, app, name: str, folder: str | None) -> None:
        from gateway.edges.imap_conn import connect

        boxes = {m.name: m for m in app.config.imap}
        if name not in boxes:
            raise SourceError(f"no [[imap]] mailbox named {name!r}; configured: {', '.join(boxes) or 'none'}")
        self.cfg = boxes[name]
        self.folder = folder or self.cfg.folder
        self.label = f"imap:{name}/{self.folder}"
        try:
            self.client = connect(self.cfg)
            self.client.select_folder(self.folder, readonly=True)
        except Exception as exc:
            raise SourceError(f"{self.label}: {exc}") from exc

    def keys(self) -> list:
        return sorted(self.client.search(["ALL"]))

    def get(self, key) -> bytes:
        got = self.client.fetch([key], ["BODY.PEEK[]"])
        return got[key][b"BODY[]"]

    def get_many(self, keys: list) -> dict:
        got = self.client.fetch(keys, ["BODY.PEEK[]"]) if keys else {}
        return {k: v[b"BODY[]"] for k, v in got.items()}

    def close(self) -> None:
        try:
            self.client.logout()
        except Exception:
            pass
