"""Bad input through the whole pipeline: whatever arrives ends as a ticket message or a
quarantine entry with a reason, nothing escapes, nothing is fetched or unpacked."""

from __future__ import annotations

import http.server
import io
import json
import threading
import zipfile

import pytest

from gateway.pipeline.process import Source, process_pending, spool
from parsers.message import parse_email
from storage.models import AttachmentRow, Message, SpoolEntry, Ticket
from tests.hardening import SUPPORT, acks, cli, count, push, rows, spool_outcomes_are_complete, write_config

CRLF = b"\r\n"


def _raw(headers: str, body: bytes = b"body\r\n") -> bytes:
    return headers.replace("\n", "\r\n").encode("utf-8", "surrogateescape") + CRLF + body


BAD = {
    "no_headers_at_all": b"just some text without any header\r\n",
    "empty": b"",
    "binary_garbage": bytes(range(256)) * 8,
    "header_without_colon": _raw("From: a@customer.example.com\nThis is not a header\nSubject: x\n"),
    "folded_forever": _raw("From: a@customer.example.com\nSubject: x\n" + " y\n" * 5000),
    "from_without_address": _raw("From: just a name\nSubject: who am I\n"),
    "two_froms": _raw("From: a@customer.example.com\nFrom: b@customer.example.com\nSubject: two\n"),
    "multipart_without_boundary": _raw("From: a@customer.example.com\nSubject: mp\nContent-Type: multipart/mixed\n",
                                       b"--x\r\nContent-Type: text/plain\r\n\r\nhello\r\n--x--\r\n"),
    "multipart_unterminated": _raw("From: a@customer.example.com\nSubject: mp2\n"
                                   "Content-Type: multipart/mixed; boundary=b\n",
                                   b"--b\r\nContent-Type: text/plain\r\n\r\nstart of something\r\n--b\r\n"
                                   b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBER"),
    "bad_base64": _raw("From: a@customer.example.com\nSubject: b64\nContent-Transfer-Encoding: base64\n",
                       b"!!!not base64 at all###\r\n"),
    "lying_charset_ascii_gbk": _raw("From: a@customer.example.com\nSubject: lying\n"
                                    "Content-Type: text/plain; charset=us-ascii\n",
                                    # (a one-line GBK body is read as EUC-KR by detection: too short to tell)
                                    "您好，我们的服务器从今天早上开始无法启动，错误日志显示数据库连接超时。"
                                    "请尽快安排工程师处理，谢谢！".encode("gbk") + CRLF),
    "lying_charset_utf8_latin1": _raw("From: a@customer.example.com\nSubject: latin\n"
                                      "Content-Type: text/plain; charset=utf-8\n",
                                      "Grüße aus München, die Maschine läuft nicht".encode("latin-1") + CRLF),
    "unknown_charset": _raw("From: a@customer.example.com\nSubject: =?x-unknown-42?Q?caf=E9?=\n"
                            "Content-Type: text/plain; charset=x-unknown-42\n", b"caf\xe9\r\n"),
    "eight_bit_headers": ("From: 王伟 <wang@customer.example.com>\r\nSubject: 打印机着火了 printer\r\n"
                          "To: 支持 <support@support.example.test>\r\n\r\n正文\r\n").encode("utf-8"),
    # raw GBK in headers; the body's declared charset is the only hint (without it a 5-character
    # subject is too short for detection and comes out as EUC-KR)
    "eight_bit_gbk_headers": ("From: 王伟 <wang2@customer.example.com>\r\nSubject: 打印机坏了\r\n"
                              "Content-Type: text/plain; charset=gbk\r\n\r\n正文\r\n").encode("gbk"),
    "nul_bytes": _raw("From: a@customer.example.com\nSubject: nul\x00here\n", b"nul \x00 in body\r\n"),
}


def _nested_rfc822(depth: int) -> bytes:
    inner = b"From: deep@customer.example.com\r\nSubject: level 0\r\n\r\ninnermost text\r\n"
    for i in range(1, depth + 1):
        inner = (f"From: a@customer.example.com\r\nSubject: level {i}\r\nMIME-Version: 1.0\r\n"
                 f"Content-Type: multipart/mixed; boundary=n{i}\r\n\r\n--n{i}\r\nContent-Type: text/plain\r\n\r\n"
                 f"wrapper {i}\r\n--n{i}\r\nContent-Type: message/rfc822\r\n\r\n").encode() + inner + f"\r\n--n{i}--\r\n".encode()
    return inner


def _multipart_bomb(depth: int) -> bytes:
    head = b"From: a@customer.example.com\r\nSubject: nesting bomb\r\nMIME-Version: 1.0\r\n"
    body = b"".join(f"Content-Type: multipart/mixed; boundary=d{i}\r\n\r\n--d{i}\r\n".encode() for i in range(depth))
    return head + body + b"Content-Type: text/plain\r\n\r\nbottom\r\n"


BAD["nested_rfc822_3"] = _nested_rfc822(3)
BAD["nested_rfc822_60"] = _nested_rfc822(60)
BAD["multipart_bomb_500"] = _multipart_bomb(500)


def test_every_bad_message_ends_as_ticket_message_or_quarantine(app):
    for name, raw in BAD.items():
        counts = push(app, raw)
        assert sum(counts.values()) >= 1, name
    assert spool_outcomes_are_complete(app) == []
    stored = count(app, Message)
    quarantined = count(app, SpoolEntry, SpoolEntry.status == "quarantined")
    print(f"\nbad input: {len(BAD)} messages -> {stored} ticket messages, {quarantined} quarantined")
    assert stored + quarantined + count(app, SpoolEntry, SpoolEntry.status == "duplicate") == len(BAD)


def test_lying_and_eight_bit_charsets_become_readable_text(app):
    for name in ("lying_charset_ascii_gbk", "lying_charset_utf8_latin1", "eight_bit_headers", "eight_bit_gbk_headers"):
        push(app, BAD[name])
    texts = {m.subject: m for m in rows(app, Message)}
    assert "服务器从今天早上开始无法启动" in texts["lying"].text
    assert "Grüße aus München" in texts["latin"].text
    assert "打印机着火了 printer" in texts
    assert any(m.sender_name == "王伟" for m in texts.values())
    assert "打印机坏了" in texts


def test_nested_messages_are_stored_with_their_text(app):
    push(app, BAD["nested_rfc822_3"])
    [msg] = rows(app, Message)
    assert "wrapper 3" in msg.text
    assert "innermost text" in msg.text or any(a.content_type == "message/rfc822" for a in rows(app, AttachmentRow))


def test_tnef_is_kept_and_noted(app):
    raw = _raw("From: outlook@customer.example.com\nSubject: from Outlook\nMIME-Version: 1.0\n"
               "Content-Type: multipart/mixed; boundary=t\n",
               b"--t\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n--t\r\n"
               b"Content-Type: application/ms-tnef; name=winmail.dat\r\nContent-Transfer-Encoding: base64\r\n"
               b"Content-Disposition: attachment; filename=winmail.dat\r\n\r\neJ8+IgEAAQaQCAAEAAAAAAABAAEAAQeQBgAIAAAA5AQAAAAAAADoAAEIgAcAGAAAAElQTS5NaWNyb3NvZnQgTWFpbC5Ob3RlADEIAQ2ABAACAAAAAgACAAEFgAMADgAAAOIHBQAQAA8AKgAAAAMAQAEBIIADAA4AAADiBwUAEAAPACoAAAADAEABAQmAAQAhAAAAMjQ4RTlBMzdGMTA2RDQ0QkE1RDlBNUY0NTM4Q0UyMUMA\r\n--t--\r\n")
    assert "tnef" in parse_email(raw).defects
    push(app, raw)
    [att] = rows(app, AttachmentRow)
    assert att.filename == "winmail.dat" and "tnef" in att.content_type
    assert app.attachments.get(att.sha256)[:4] == b"\x78\x9f\x3e\x22"  # TNEF signature, bytes kept as sent


def test_zip_bomb_is_stored_as_one_file_never_unpacked(app):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(4):
            z.writestr(f"zeros{i}.bin", b"\0" * (64 * 1024 * 1024))  # 256 MB unpacked
    data = buf.getvalue()
    assert len(data) < 2 * 1024 * 1024
    import base64

    raw = _raw("From: a@customer.example.com\nSubject: logs attached\nMIME-Version: 1.0\n"
               "Content-Type: multipart/mixed; boundary=z\n",
               b"--z\r\nContent-Type: text/plain\r\n\r\nthe logs\r\n--z\r\nContent-Type: application/zip\r\n"
               b"Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=logs.zip\r\n\r\n"
               + base64.encodebytes(data).replace(b"\n", b"\r\n") + b"--z--\r\n")
    push(app, raw)
    [att] = rows(app, AttachmentRow)
    assert att.filename == "logs.zip" and att.size == len(data)
    total = sum(p.stat().st_size for p in app.attachments.root.rglob("*") if p.is_file())
    assert total == len(data)


class _CountingHandler(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802
        _CountingHandler.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/gif")
        self.end_headers()
        self.wfile.write(b"GIF89a")

    def log_message(self, *a):
        pass


def test_html_is_sanitised_and_remote_images_never_fetched(app):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CountingHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    _CountingHandler.hits = []
    html = (f'<html><body onload="steal()"><p>Printer <b>broken</b></p><script>alert(1)</script>'
            f'<img src="{url}/track.gif?u=alice"><img src=x onerror="alert(2)">'
            f'<a href="javascript:alert(3)">click</a><iframe src="{url}/frame"></iframe>'
            f'<style>body{{background:url({url}/bg.png)}}</style>'
            f'<div style="background-image:url({url}/css.png)">styled</div></body></html>')
    raw = _raw("From: a@customer.example.com\nSubject: html\nMIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n",
               html.encode())
    try:
        push(app, raw)
        dispatch_all = __import__("tests.hardening", fromlist=["dispatch"]).dispatch
        dispatch_all(app)
    finally:
        server.shutdown()
    [msg] = rows(app, Message)
    assert "Printer" in msg.text and "broken" in msg.text
    low = msg.html.lower()
    for bad in ("<script", "alert(", "onload", "onerror", "javascript:", "<iframe", url, "<style"):
        assert bad not in low, bad
    assert _CountingHandler.hits == []


def test_oversized_message_from_imap_is_stored_and_quarantined(make_app, tmp_path):
    app = make_app(smtp={"max_message_size": 10_000})
    big = _raw("From: a@customer.example.com\nSubject: huge log\n", b"x" * 70 + CRLF) + (b"y" * 76 + CRLF) * 200
    # written to us: a stranger's mail that names none of our addresses gets no acknowledgement
    small = _raw(f"From: b@customer.example.com\nTo: {SUPPORT}\nSubject: small\n")
    spool(app, [(big, Source("imap:helpdesk")), (small, Source("imap:helpdesk"))])
    counts = process_pending(app)
    assert counts["quarantined"] == 1 and counts["created"] == 1  # the poison does not block the rest
    [entry] = rows(app, SpoolEntry, SpoolEntry.status == "quarantined")
    assert entry.raw == big  # stored, not dropped
    assert "max_message_size" in entry.error and str(len(big)) in entry.error
    assert count(app, Ticket) == 1 and acks(app)[0].to == ["b@customer.example.com"]
    cfg = write_config(app, tmp_path / "gw.toml", smtp={"max_message_size": 10_000})
    out = cli(cfg, "quarantine", "list", "--json")
    assert out.returncode == 0, out.stderr
    [listed] = json.loads(out.stdout)
    assert listed["id"] == entry.id and "too large" in listed["reason"]
    # after raising the limit, retry turns it into a ticket
    cfg = write_config(app, tmp_path / "gw2.toml", smtp={"max_message_size": 1_000_000})
    out = cli(cfg, "quarantine", "retry", str(entry.id))
    assert out.returncode == 0, out.stdout + out.stderr
    assert count(app, Ticket) == 2


@pytest.mark.slow
def test_fifty_megabyte_message_over_smtp(running):
    import base64
    import resource
    import smtplib
    import tracemalloc

    from tests.conftest import wait_for

    gw = running(smtp={"max_message_size": 80 * 1024 * 1024})
    payload = bytes(range(256)) * (37 * 1024 * 4)  # ~37 MB binary, ~50 MB as base64
    raw = _raw("From: big@customer.example.com\nSubject: core dump\nMIME-Version: 1.0\n"
               "Content-Type: multipart/mixed; boundary=q\n",
               b"--q\r\nContent-Type: text/plain\r\n\r\ncore dump attached\r\n--q\r\nContent-Type: application/octet-stream\r\n"
               b"Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=core.bin\r\n\r\n"
               + base64.encodebytes(payload).replace(b"\n", b"\r\n") + b"--q--\r\n")
    size = len(raw)
    assert size > 50 * 1000 * 1000
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tracemalloc.start()
    try:
        with smtplib.SMTP("127.0.0.1", gw.smtp_port, timeout=120) as s:
            s.sendmail("big@customer.example.com", [SUPPORT], raw)
        wait_for(lambda: rows(gw.app, AttachmentRow), timeout=120, what="the 50 MB message stored")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    [att] = rows(gw.app, AttachmentRow)
    assert att.size == len(payload) and gw.app.attachments.get(att.sha256) == payload
    print(f"\n50 MB over SMTP: message {size / 1e6:.1f} MB, traced peak {peak / 1e6:.0f} MB "
          f"({peak / size:.1f}x), peak RSS growth {(rss_after - rss_before) / 1e6:.0f} MB "
          f"({(rss_after - rss_before) / size:.1f}x)")
    # Generous: aiosmtpd holds the whole message, then the spool and the parser copy it.
    assert peak < 16 * size


@pytest.mark.parametrize("value", [b"\x00", b"<ab\x00c@customer.example.com>", b"<x\x01y@customer.example.com> tail",
                                   b"bare\x7fid@customer.example.com"])
def test_control_characters_in_a_message_id_never_reach_the_database(app, value):
    """PostgreSQL refuses NUL in text: the spool's cheap Message-ID peek strips what the parser strips."""
    from parsers.quick import message_id

    raw = b"From: a@customer.example.com\r\nSubject: odd id\r\nMessage-ID: " + value + b"\r\n\r\nhello\r\n"
    peeked = message_id(raw)
    assert not any(c < " " or c == "\x7f" for c in peeked)
    parsed = parse_email(raw).message_id
    assert peeked == parsed or not peeked  # an id that strips to nothing gets a synthetic one when parsed
    [sp] = spool(app, [(raw, Source("smtp", "", (SUPPORT,)))])
    assert process_pending(app)["created"] == 1
    with app.db.session() as s:
        assert s.get(SpoolEntry, sp.spool_id).message_id == peeked


def test_unstorable_characters_in_the_envelope_are_dropped_not_refused(app):
    raw = b"From: a@customer.example.com\r\nSubject: odd envelope\r\nMessage-ID: <env@customer.example.com>\r\n\r\nhi\r\n"
    [sp] = spool(app, [(raw, Source("smtp", "a\x00b@customer.example.com", (SUPPORT + "\udcff",)))])
    with app.db.session() as s:
        entry = s.get(SpoolEntry, sp.spool_id)
        assert entry.envelope_from == "ab@customer.example.com" and entry.envelope_to == [SUPPORT]
    assert process_pending(app)["created"] == 1
