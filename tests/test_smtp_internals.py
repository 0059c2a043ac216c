"""What the SMTP edge's one override of aiosmtpd (gateway/edges/smtp_data.StreamingDATA)
relies on beyond aiosmtpd's documented API, checked against the installed aiosmtpd.

These fail when an aiosmtpd release changes those internals: renames the stream reader,
changes what its own smtp_DATA checks before "354", or resets more than the envelope after
DATA. Then read the new upstream smtp_DATA and bring StreamingDATA in step before raising
the pin in pyproject.toml.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import smtplib
import textwrap

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from gateway.edges.smtp_data import RELIES_ON, StreamingDATA
from tests.conftest import free_port


def _function(fn) -> ast.FunctionDef:
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    return next(n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))


def _before_354(fn) -> list[str]:
    """The calls on `self` made before (and including) the "354" reply, in order, with a
    push's text: the preconditions of DATA."""
    out: list[str] = []
    for stmt in _function(fn).body:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    isinstance(node.func.value, ast.Name) and node.func.value.id == "self":
                text = [a.value for a in node.args if isinstance(a, ast.Constant)]
                out.append(node.func.attr + (f"({text[0]!r})" if text else ""))
        if any(isinstance(n, ast.Constant) and str(n.value).startswith("354") for n in ast.walk(stmt)):
            return out
    raise AssertionError(f"{fn.__qualname__} sends no 354")


def test_aiosmtpd_checks_the_same_preconditions_before_354_as_the_override():
    upstream = _before_354(SMTP.smtp_DATA)
    assert upstream[:2] == ["check_helo_needed", "check_auth_needed('DATA')"]  # RELIES_ON's two checks
    assert _before_354(StreamingDATA.smtp_DATA) == upstream


def test_the_checks_it_calls_are_coroutines_with_the_arguments_it_passes():
    for name in RELIES_ON[1:]:
        assert inspect.iscoroutinefunction(getattr(SMTP, name)), name
    assert list(inspect.signature(SMTP.check_helo_needed).parameters) == ["self", "helo"]
    assert list(inspect.signature(SMTP.check_auth_needed).parameters) == ["self", "caller_method"]


def test_after_data_aiosmtpd_resets_only_the_envelope_as_the_override_does():
    body = _function(SMTP._set_post_data_state).body
    body = [s for s in body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]  # docstring
    assert [ast.unparse(s) for s in body] == ["self.envelope = self._create_envelope()"]
    assert "_set_post_data_state" in inspect.getsource(SMTP.smtp_DATA)  # ... and still ends DATA with it


def test_the_stream_reader_is_where_it_reads_commands_and_its_limit_is_line_length_limit():
    src = inspect.getsource(SMTP)
    assert "self._reader = reader" in src  # _cb_client_connected
    assert "limit=self.line_length_limit" in src  # the StreamReader's limit: our slice size


class _Sink:
    inline_max = 1 << 30

    def __init__(self):
        self.data = bytearray()

    def write(self, b):
        self.data += b

    @property
    def size(self):
        return len(self.data)

    def finish(self):
        return bytes(self.data)

    def discard(self):
        self.data.clear()


class _Recorder:
    def __init__(self):
        self.got = []

    def open_sink(self):
        return _Sink()

    async def handle_DATA(self, server, session, envelope):
        self.got.append({"reader": server._reader, "rcpt": list(envelope.rcpt_tos),
                         "original": envelope.original_content, "content": envelope.content})
        return "250 2.0.0 stored"


class _Probe(StreamingDATA):
    line_length_limit = 64 * 1024


class _ProbeController(Controller):
    def factory(self):
        return _Probe(self.handler, **self.SMTP_kwargs)


def test_a_live_session_streams_data_unstuffed_and_starts_each_transaction_afresh():
    handler = _Recorder()
    ctl = _ProbeController(handler, hostname="127.0.0.1", port=free_port(), data_size_limit=100_000)
    ctl.start()
    try:
        with smtplib.SMTP("127.0.0.1", ctl.port, timeout=10) as c:
            c.ehlo("probe.example")
            assert c.docmd("DATA")[0] == 503  # no recipient yet: the same answer as aiosmtpd's
            long_line = b"x" * 5000  # over aiosmtpd's 1001, under our 64 KiB slice
            first = b"Subject: one\r\n\r\n.leading dot\r\n" + long_line + b"\r\n"  # smtplib stuffs it
            c.sendmail("a@example.com", ["one@example.com"], first)
            c.sendmail("a@example.com", ["two@example.com"], b"Subject: two\r\n\r\nsecond\r\n")
            code, _ = c.docmd("MAIL FROM:<a@example.com>")
            assert code == 250
            c.docmd("RCPT TO:<three@example.com>")
            c.docmd("DATA")
            c.send(b"y" * 100_001 + b"\r\n.\r\n")
            assert c.getreply()[0] == 552
    finally:
        ctl.stop()
    one, two = handler.got
    assert isinstance(one["reader"], asyncio.StreamReader)
    assert one["original"] == one["content"] == first  # un-stuffed, as handle_DATA is promised
    assert (one["rcpt"], two["rcpt"]) == (["one@example.com"], ["two@example.com"])  # a fresh envelope each
    assert len(handler.got) == 2  # the oversized one never reached the handler
