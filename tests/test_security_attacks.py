"""Attacks through the mail itself: forged engineers, guessed and replayed reply tokens,
header injection into our outbound mail, template injection, escaping attachment names."""

from __future__ import annotations

import os
from email.header import Header


from gateway.outbox import message_bytes
from storage.models import AttachmentRow, Event, Message, OutboxRow, Ticket
from tests.hardening import SUPPORT, count, dispatch, push, rows
from tests.mail import build, parse

CUSTOMER = "ops@bigbank.example"  # alice is the primary engineer of this customer's project
ENGINEER = "alice@support.example.com"


def _first_ticket(app, **kw):
    push(app, build(frm=CUSTOMER, subject=kw.pop("subject", "Card payments failing"), **kw))
    return rows(app, Ticket)[-1]


def _outbound_to(app, rcpt):
    return [r for r in rows(app, OutboxRow) if rcpt in r.to]


def test_forged_engineer_from_without_token_is_not_an_engineer(app):
    ticket = _first_ticket(app)
    forged = build(frm=ENGINEER, name="Alice Wang", subject=f"Re: [{ticket.ref}] Card payments failing",
                   body="#status resolved\n#assign mallory@evil.example\n\nPlease wire the refund to IBAN XX666.\n")
    push(app, forged)
    [t] = rows(app, Ticket, Ticket.id == ticket.id)
    assert t.status not in ("resolved", "closed")
    assert t.owner == ENGINEER and t.handler == ENGINEER
    # nothing of the forged text reaches the customer
    for row in _outbound_to(app, CUSTOMER):
        raw = message_bytes(row)
        assert b"IBAN" not in raw and "IBAN" not in parse(raw).get_body(("plain",)).get_content()
    assert [r.kind for r in _outbound_to(app, CUSTOMER)] == ["acknowledgement"]
    # it is kept as ordinary (non-engineer) text, visible for review
    kinds = {m.kind for m in rows(app, Message) if "IBAN" in m.text}
    assert kinds and "engineer" not in kinds and "note" not in kinds
    assert count(app, Event, Event.kind == "command") == 0


def test_guessed_reply_tokens_do_not_join_a_ticket(app):
    ticket = _first_ticket(app)
    before = count(app, Message, Message.ticket_id == ticket.id)
    guesses = [f"t{ticket.id}xaaaaaaaaaaaaaaaa", f"t{ticket.id}x{'a' * 15}", f"t{ticket.id}", "t1x" + "7" * 16,
               f"T{ticket.id}XABCDEFGHIJKLMNOP"]
    for i, tok in enumerate(guesses):
        push(app, build(frm="mallory@evil.example", to=f"support+{tok}@support.example.test",
                        subject=f"Re: [{ticket.ref}] Card payments failing", body=f"guess {i}: give me the data\n"),
             to=(f"support+{tok}@support.example.test",))
    assert count(app, Message, Message.ticket_id == ticket.id) == before
    # and the stranger learns nothing of the ticket: whatever answer they get names no detail of it
    for row in _outbound_to(app, "mallory@evil.example"):
        text = parse(message_bytes(row)).get_body(("plain",)).get_content()
        assert CUSTOMER not in text and "printer is on fire" not in text and CUSTOMER not in str(row.to + row.cc)


def test_reply_token_replayed_from_another_ticket_is_refused(app):
    victim = _first_ticket(app)
    push(app, build(frm="mallory@evil.example", subject="My own harmless question", body="hello\n"))
    mine = rows(app, Ticket)[-1]
    assert mine.id != victim.id
    own_token = app.signer.reply_token(mine.id, "mallory@evil.example")
    victims_token = app.signer.reply_token(victim.id, CUSTOMER)  # e.g. read from a forwarded mail
    forged_number = own_token.replace(f"t{mine.id}x", f"t{victim.id}x")
    before = count(app, Message, Message.ticket_id == victim.id)
    for tok in (victims_token, forged_number):
        addr = f"support+{tok}@support.example.test"
        push(app, build(frm="mallory@evil.example", to=addr, subject="Re: Card payments failing",
                        body=f"replayed {tok}\n"), to=(addr,))
    assert count(app, Message, Message.ticket_id == victim.id) == before
    # the token still works for its own ticket and its own person
    addr = f"support+{own_token}@support.example.test"
    push(app, build(frm="mallory@evil.example", to=addr, subject="Re: harmless", body="more detail\n"), to=(addr,))
    assert count(app, Message, Message.ticket_id == mine.id) == 2


def test_crlf_in_name_and_subject_never_becomes_a_header(app):
    evil_subject = Header("Help\r\nBcc: victim@evil.example\r\nX-Injected: yes", "utf-8").encode()
    evil_name = Header("Eve\r\nBcc: victim2@evil.example", "utf-8").encode()
    raw = build(frm="eve@customer.example.com", name=None, subject="placeholder")
    raw = raw.replace(b"From: eve@customer.example.com", f"From: {evil_name} <eve@customer.example.com>".encode())
    raw = raw.replace(b"Subject: placeholder", f"Subject: {evil_subject}".encode())
    push(app, raw)
    [ticket] = rows(app, Ticket)
    assert "Bcc" in ticket.subject  # stored as the customer wrote it ...
    out = dispatch(app)
    [sent] = [m for m in out.sent if "eve@customer.example.com" in m["to"]]
    assert sent["to"] == ["eve@customer.example.com"]  # ... but the envelope is ours alone
    assert not any("evil.example" in rcpt for m in out.sent for rcpt in m["to"])
    for m in out.sent:  # nor does any notification to an engineer carry an injected header
        names = {k.lower() for k in parse(m["raw"]).keys()}
        assert "bcc" not in names and "x-injected" not in names
    ack = parse(sent["raw"])
    header_names = {k.lower() for k in ack.keys()}
    assert "bcc" not in header_names and "x-injected" not in header_names
    head = sent["raw"].split(b"\r\n\r\n", 1)[0]
    assert not any(line.lower().startswith((b"bcc", b"x-injected")) for line in head.split(b"\r\n"))
    assert "\n" not in ack["Subject"] and "\r" not in ack["Subject"]
    assert "victim@evil.example" in ack["Subject"]  # visible as text, harmless


def test_template_syntax_in_customer_text_appears_literally(app):
    push(app, build(name="{{ 7*7 }} {% if true %}X{% endif %}", subject="{{ 7*7 }} {{ config }} {% raw %}",
                    body="{% for x in range(3) %}loop{% endfor %} {{ ''.__class__.__mro__ }}\n"))
    [t] = rows(app, Ticket)
    assert t.subject == "{{ 7*7 }} {{ config }} {% raw %}"
    [sent] = [m for m in dispatch(app).sent if m["to"] == ["alice@customer.example.com"]]
    ack = parse(sent["raw"])
    assert "{{ 7*7 }} {{ config }} {% raw %}" in ack["Subject"]
    assert "49" not in ack["Subject"]
    body = ack.get_body(("plain",)).get_content()
    # rendered, the name would read "49 X" and the body "looplooploop"; the deadline's digits may hold a 49
    assert "{{ 7*7 }}" in body and "49 X" not in body and "looploop" not in body


def test_attachment_names_cannot_escape_the_attachment_directory(app, tmp_path):
    names = ["../../../../etc/cron.d/evil", "..\\..\\windows\\win.ini", "/abs/path/passwd", "a\x01b.txt",
             "line\tbreak.txt", "\u202egnp.exe", "..", ".", "", "x" * 400 + ".pdf", "~/.ssh/authorized_keys"]
    parts = []
    for i, n in enumerate(names):
        encoded = n.encode("utf-8")
        parts.append(b"--B\r\nContent-Type: application/octet-stream\r\n"
                     b'Content-Disposition: attachment; filename="' + encoded + b'"\r\n\r\n' +
                     f"payload {i}".encode() + b"\r\n")
    raw = (f"From: {CUSTOMER}\r\nTo: {SUPPORT}\r\nSubject: attachments\r\nMessage-ID: <att@bigbank.example>\r\n"
           "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
           "--B\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n").encode() + b"".join(parts) + b"--B--\r\n"
    before = {p for p in tmp_path.rglob("*")}
    push(app, raw)
    atts = rows(app, AttachmentRow)
    assert len(atts) == len(names)
    root = app.attachments.root.resolve()
    for a in atts:
        assert "/" not in a.filename and "\\" not in a.filename and ".." not in a.filename
        assert not any(ord(c) < 32 or c == "\u202e" for c in a.filename) and a.filename
        assert len(a.filename.encode()) <= 255
        path = app.attachments.path_for(a.sha256).resolve()
        assert path.is_relative_to(root) and path.read_bytes().startswith(b"payload")
    created = {p for p in tmp_path.rglob("*")} - before
    outside = [p for p in created if not p.resolve().is_relative_to(app.config.data_dir.resolve())]
    assert outside == []
    assert not os.path.exists("/etc/cron.d/evil") and not os.path.exists("/abs/path/passwd")


def test_a_forged_reply_token_decides_nothing_not_even_which_ticket_it_names(make_app):
    """The ticket number inside a token that fails its signature used to choose which ticket a
    stranger's new ticket was linked to, and where the 'stranger' event was written (issue 19)."""
    for policy in ("new_ticket", "hold"):
        app = make_app(workflow={"stranger_policy": policy})
        victim = _first_ticket(app)
        forged = f"support+t{victim.id}x{'a' * 16}@support.example.test"
        push(app, build(frm="mallory@evil.example", to=forged, subject="Hello", body="let me in\n"), to=(forged,))
        [mine] = [t for t in rows(app, Ticket) if t.requester_email == "mallory@evil.example"]
        assert mine.linked_ticket_id is None and not mine.held, policy
        assert count(app, Event, Event.ticket_id == victim.id, Event.kind == "stranger") == 0
        assert count(app, Event, Event.ticket_id == mine.id, Event.kind == "linked") == 0


def test_a_genuine_reply_token_forwarded_to_a_colleague_still_links_their_ticket(app):
    victim = _first_ticket(app)
    genuine = f"support+{app.signer.reply_token(victim.id, CUSTOMER)}@support.example.test"
    push(app, build(frm="colleague@bigbank.example", to=genuine, subject="Fwd: Card payments failing",
                    body="I work with ops, same problem here\n"), to=(genuine,))
    [theirs] = [t for t in rows(app, Ticket) if t.requester_email == "colleague@bigbank.example"]
    assert theirs.linked_ticket_id == victim.id
    assert count(app, Event, Event.ticket_id == victim.id, Event.kind == "stranger") == 1


def test_tokens_already_in_mailboxes_keep_verifying():
    """Every token is an HMAC-SHA256 over its purpose, ticket and person, its first 80 bits in
    lower-case base32. Customers keep our old mail for years and answer it: a change to how the
    MAC is computed must give the same tokens, byte for byte (pinned here, and recomputed)."""
    import base64
    import hashlib
    import hmac

    from gateway.tokens import Signer

    key = b"k" * 32
    signer = Signer(key)

    def reference(*parts: str) -> str:
        digest = hmac.new(key, "\x00".join(parts).encode("utf-8"), hashlib.sha256).digest()
        return base64.b32encode(digest[:10]).decode("ascii").lower()

    token = signer.reply_token(42, "Ops@BigBank.example")
    assert token == "t42x" + reference("reply", "42", "ops@bigbank.example") == "t42xr4pxakbnphpqy3k4"
    assert signer.reply_token(42, "ops@bigbank.example", note=True) == "n42x" + reference(
        "note", "42", "ops@bigbank.example")
    assert signer.forward_token("Alice@support.example.com") == "f" + reference(
        "forward", "alice@support.example.com")
    assert signer.check_reply_token(token, "ops@bigbank.example") == 42
    assert signer.check_reply_token(token, "mallory@example.net") is None
