"""Reading the DATA section of an SMTP transaction in chunks, straight into the spool.

aiosmtpd reads DATA a line at a time into a list and joins it at the end, so a
50 MB message costs several times 50 MB of memory and one await per line. Here
the stream is read up to each ".\\r\\n" (or a 64 KiB slice when there is none),
which is the end of the data only when a line break precedes it (RFC 5321
§4.1.1.4); lines are un-stuffed (§4.5.2) as they pass, and the bytes go into a
`storage.spool.SpoolSink` that keeps small messages in memory and streams large
ones to a file. Memory per session stays at one slice whatever the size.

`StreamingDATA` is the one place that reaches into aiosmtpd beyond its public hooks
(tests/test_smtp_internals.py says when that breaks); everything else in the SMTP edge
is a handler hook (gateway/edges/smtp.py).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aiosmtpd.smtp import SMTP, syntax

log = logging.getLogger("supportgw.smtp")

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


# What StreamingDATA uses of aiosmtpd that its documentation does not promise; each is
# checked by tests/test_smtp_internals.py against the installed aiosmtpd.
RELIES_ON = (
    "_reader",  # the connection's asyncio.StreamReader (set in _cb_client_connected)
    "check_helo_needed",  # the preconditions aiosmtpd's own smtp_DATA checks before 354 ...
    "check_auth_needed",  # ... in this order (compared with its source by the test)
)


class StreamingDATA(SMTP):
    """aiosmtpd's SMTP with DATA read in slices into a sink instead of a list of lines.

    Why an override: aiosmtpd has no hook during DATA. `handle_DATA`, its public hook, is
    called once the whole message is in memory (a list of lines, joined at the end: several
    times the message's size, one await per line). Streaming to disk therefore means
    replacing `smtp_DATA`, which aiosmtpd documents as overridable ("Subclasses can override
    these", the SMTP class's `smtp_<COMMAND>`). The override keeps to the documented parts
    where there are any: `push()`, `envelope`, `session`, `transport`, `event_handler`,
    `data_size_limit`, `line_length_limit` (the reader's limit, hence our slice size),
    `_create_envelope()` to reset after DATA, and the handler's own `handle_DATA` hook,
    called with the envelope aiosmtpd promises it (`original_content` and `content`, the
    un-stuffed bytes). It still needs what `RELIES_ON` lists; tests/test_smtp_internals.py
    fails when an aiosmtpd release changes any of it, or adds a precondition to its DATA.

    The handler gives the sink: `event_handler.open_sink()` -> an object with `write`,
    `finish() -> bytes | Stored`, `discard()`, `size` and `inline_max` (storage.spool.SpoolSink).
    """

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        sink = self.event_handler.open_sink()
        try:
            result = await read_data(self._reader, sink.write, self.data_size_limit)
            if result.error is not None:
                raise result.error
            if result.too_big:
                sink.discard()
                await self._done("552 5.3.4 Message too big for this system")
                return
            content = sink.finish() if sink.size <= sink.inline_max else \
                await asyncio.get_running_loop().run_in_executor(None, sink.finish)  # fsync off the loop
        except asyncio.CancelledError:
            sink.discard()
            log.info("connection lost during DATA")
            if self.transport is not None:
                self.transport.close()
            raise
        except OSError as exc:  # the blob store is unwritable (disk full, permissions)
            sink.discard()
            if isinstance(exc, ConnectionResetError):
                raise
            log.error("451: could not write the message to the spool: %s", exc)
            await self._done("451 4.3.0 Temporary storage failure, please try again later")
            return
        self.envelope.content = self.envelope.original_content = content
        status = await self.event_handler.handle_DATA(self, self.session, self.envelope)
        await self._done(status)

    async def _done(self, status: str) -> None:
        """End the transaction as aiosmtpd does after DATA: a fresh envelope, then the reply."""
        self.envelope = self._create_envelope()
        await self.push(status)
