"""Fetching messages from a selected IMAP folder in bounded batches, and acknowledging them.

`plan(client, uids, batch_size)` sizes the candidates and groups them so that one
batch holds at most `batch_size` messages and about MAX_BATCH_BYTES; a message
over LARGE_MESSAGE is a batch of its own and is read in PARTIAL_CHUNK slices
straight into a spool sink (a file in the spool blob store), so memory stays at
one slice however big the message or the backlog.
`fetch(client, batch)` returns [(uid, raw bytes)] without setting \\Seen (PEEK).
`acknowledge(client, mb, uids)` applies the mailbox's `after` action; callers
run it only once the bytes are committed to the spool.
"""

from __future__ import annotations

import logging

from imapclient import DELETED, SEEN

log = logging.getLogger("supportgw.imap")

MAX_BATCH_BYTES = 16 * 1024 * 1024
LARGE_MESSAGE = 8 * 1024 * 1024
PARTIAL_CHUNK = 4 * 1024 * 1024
SIZE_PROBE = 500  # UIDs per RFC822.SIZE request


def plan(client, uids: list[int], batch_size: int) -> list[list[int]]:
    """Group ascending `uids` into fetch batches by count and size."""
    sizes: dict[int, int] = {}
    for i in range(0, len(uids), SIZE_PROBE):
        part = uids[i:i + SIZE_PROBE]
        for uid, data in client.fetch(part, ["RFC822.SIZE"]).items():
            sizes[uid] = int(data.get(b"RFC822.SIZE", 0))
    batches: list[list[int]] = []
    cur: list[int] = []
    cur_bytes = 0
    for uid in uids:
        if uid not in sizes:
            continue  # expunged meanwhile by someone else
        size = sizes[uid]
        if size > LARGE_MESSAGE:
            if cur:
                batches.append(cur)
                cur, cur_bytes = [], 0
            batches.append([uid])
            continue
        if cur and (len(cur) >= batch_size or cur_bytes + size > MAX_BATCH_BYTES):
            batches.append(cur)
            cur, cur_bytes = [], 0
        cur.append(uid)
        cur_bytes += size
    if cur:
        batches.append(cur)
    return batches


def fetch(client, batch: list[int], on_progress=None, sink=None) -> list[tuple[int, object]]:
    """Raw bytes of each message in `batch`, in UID order; missing ones are skipped.

    `sink()` makes a storage.spool.SpoolSink; a large message is streamed into it
    and comes back as what the sink's finish() returns (a `Stored` file reference).
    """
    if len(batch) == 1:
        size = client.fetch(batch, ["RFC822.SIZE"]).get(batch[0], {}).get(b"RFC822.SIZE", 0)
        if size > LARGE_MESSAGE:
            raw = _fetch_large(client, batch[0], int(size), on_progress, sink() if sink else None)
            return [(batch[0], raw)] if raw is not None else []
    got = client.fetch(batch, ["BODY.PEEK[]"])
    out = []
    for uid in batch:
        raw = got.get(uid, {}).get(b"BODY[]")
        if raw is None:
            log.info("uid %s vanished before it was fetched (expunged by another client)", uid)
            continue
        out.append((uid, bytes(raw)))
    return out


def _fetch_large(client, uid: int, size: int, on_progress, sink=None):
    """Read one big message in slices (BODY.PEEK[]<offset.length>) into the sink
    (or one buffer when there is none)."""
    buf = bytearray()
    offset = 0
    while True:
        got = client.fetch([uid], [f"BODY.PEEK[]<{offset}.{PARTIAL_CHUNK}>"]).get(uid)
        part = None if got is None else next((v for k, v in got.items() if k.startswith(b"BODY[]")), None)
        if part is None:
            if sink is not None:
                sink.discard()
            return None
        if sink is not None:
            sink.write(bytes(part))
        else:
            buf += part
        offset += len(part)
        if on_progress:
            on_progress()
        # the server may report a size that differs from what it streams (CRLF fixes): stop on a short slice
        if len(part) < PARTIAL_CHUNK:
            break
    if offset != size:
        log.debug("uid %s: RFC822.SIZE %s, read %s bytes", uid, size, offset)
    return sink.finish() if sink is not None else bytes(buf)


class Acknowledger:
    """Applies `after = seen | move | delete` for one connection (remembers the capabilities)."""

    def __init__(self, client, mb) -> None:
        self.client = client
        self.mb = mb
        caps = set(client.capabilities())
        self.has_move = b"MOVE" in caps
        self.has_uidplus = b"UIDPLUS" in caps
        self._target_ready = False

    def __call__(self, uids: list[int]) -> None:
        if not uids:
            return
        c, mb = self.client, self.mb
        if mb.after == "seen":
            c.add_flags(uids, [SEEN], silent=True)
        elif mb.after == "move":
            self._ensure_target()
            if self.has_move:
                c.move(uids, mb.move_to)
            else:
                c.copy(uids, mb.move_to)
                self._expunge(uids)
        else:
            self._expunge(uids)

    def _expunge(self, uids: list[int]) -> None:
        self.client.add_flags(uids, [DELETED], silent=True)
        if self.has_uidplus:
            self.client.uid_expunge(uids)
        else:
            self.client.expunge()  # whole folder: it belongs to the gateway

    def _ensure_target(self) -> None:
        if self._target_ready:
            return
        if not self.client.folder_exists(self.mb.move_to):
            log.info("imap %s: creating folder %r for processed mail", self.mb.name, self.mb.move_to)
            try:
                self.client.create_folder(self.mb.move_to)
            except Exception:
                # created by another client meanwhile is fine; anything else shows on MOVE
                if not self.client.folder_exists(self.mb.move_to):
                    raise
        self._target_ready = True
