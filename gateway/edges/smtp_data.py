"""Reading the DATA section of an SMTP transaction in chunks, straight into the spool.

aiosmtpd reads DATA a line at a time into a list and joins it at the end, so a
50 MB message costs several times 50 MB of memory and one await per line. Here
the stream is read up to each ".\\r\\n" (or a 64 KiB slice when there is none),
which is the end of the data only when a line break precedes it (RFC 5321
§4.1.1.4); lines are un-stuffed (§4.5.2) as they pass, and the bytes go into a
`storage.spool.SpoolSink` that keeps small messages in memory and streams large
ones to a file. Memory per session stays at one slice whatever the size.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

END = b".\r\n"


class Unstuffer:
    """RFC 5321 §4.5.2 transparency: drop the leading dot of every line that has one.

    Fed arbitrary slices of the stuffed stream; holds back at most the two bytes
    that could start a line break, so a "\\r\\n." split across slices is still seen.
    """

    def __init__(self) -> None:
        self._carry = b"\r\n"  # the data starts at the start of a line
        self._skip = 2  # ...and that virtual line break is not part of it

    def feed(self, chunk: bytes) -> bytes:
        buf = self._carry + chunk
        # hold back a trailing "\r\n" or "\r" unscanned: the dot that may follow is in the next slice
        keep = 2 if buf.endswith(b"\r\n") else 1 if buf.endswith(b"\r") else 0
        self._carry = buf[len(buf) - keep:]
        return self._strip(buf[:len(buf) - keep].replace(b"\r\n.", b"\r\n"))

    def close(self) -> bytes:
        out, self._carry = self._carry, b""
        return self._strip(out)

    def _strip(self, out: bytes) -> bytes:
        if self._skip and out:
            n = min(self._skip, len(out))
            out, self._skip = out[n:], self._skip - n
        return out


@dataclass
class DataResult:
    size: int  # bytes as they came over the wire (stuffed), like aiosmtpd's limit count
    too_big: bool
    error: OSError | None = None  # `write` failed (disk full...); the rest was read and dropped


async def read_data(reader: asyncio.StreamReader, write, limit: int | None) -> DataResult:
    """Read one DATA section from `reader`, passing the un-stuffed bytes to `write`.

    Past `limit` bytes the rest is read and thrown away (the client gets its 552
    only after the final dot, RFC 5321 §4.2.5), and `write` is not called again.
    The same when `write` fails: the error is returned once the data has ended,
    so the rest of the message is never taken for commands.
    """
    unstuff = Unstuffer()
    tail = b"\r\n"  # the two bytes before the slice being read
    size = 0
    too_big = False
    error: OSError | None = None
    while True:
        try:
            chunk = await reader.readuntil(END)
            at_dot = True
        except asyncio.LimitOverrunError as exc:  # no ".\r\n" within the reader's limit
            chunk = await reader.read(max(exc.consumed, 1))
            at_dot = False
        if not chunk:
            raise ConnectionResetError("connection closed during DATA")
        if at_dot and (tail + chunk[:-len(END)])[-2:] == b"\r\n":
            chunk = chunk[:-len(END)]  # the lone dot ends the data
            done = True
        else:
            done = False
        size += len(chunk)
        if limit and size > limit:
            too_big = True
        if not too_big and error is None:
            try:
                write(unstuff.feed(chunk))
                if done:
                    write(unstuff.close())
            except OSError as exc:
                error = exc
        if done:
            return DataResult(size, too_big, error)
        tail = (tail + chunk)[-2:]
