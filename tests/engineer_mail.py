"""Test helpers for the engineer side: a capturing transport, and replies built the
way real mail clients build them (Outlook, Gmail, Foxmail/QQ, mutt), quoting the
notification the engineer received."""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP
from email.utils import make_msgid

from tests.dates import sent_now

from gateway.runtime.dispatch import dispatch_due
from gateway.pipeline.process import Source, ingest
from tests.mail import body_text, build, parse

CUSTOMER = "li.wei@mail.example.test"  # an alice customer in the sample rules (project website)
SUPPORT = "support@support.example.test"
ALICE = "alice@support.example.com"
BOB = "bob@support.example.com"
CAROL = "carol@support.example.com"


class Transport:
    """Captures what the dispatcher sends (any object with send/close will do)."""

    def __init__(self):
        self.sent: list[dict] = []

    def send(self, envelope_from, recipients, raw):
        self.sent.append({"from": envelope_from, "to": list(recipients), "raw": raw, "msg": parse(raw)})
        return "250 OK"

    def close(self):
        pass


class Desk:
    """Pipeline-level story driver: mail in via ingest(), mail out via dispatch_due()."""

    def __init__(self, app):
        self.app = app
        self.transport = Transport()
        self.seen = 0

    def receive(self, raw: bytes, rcpts=None):
        msg = parse(raw)
        to = rcpts or [a.strip().split("<")[-1].rstrip(">") for a in (msg["To"] or SUPPORT).split(",")]
        counts = ingest(self.app, [(raw, Source("smtp", envelope_to=tuple(to)))])
        dispatch_due(self.app, self.transport)
        return counts

    def new_mail(self) -> list[dict]:
        out = self.transport.sent[self.seen:]
        self.seen = len(self.transport.sent)
        return out

    def customer_writes(self, subject="网站打不开 website down", body="Hello,\nour website returns 502 since 9:00.\n",
                        frm=CUSTOMER, **kw):
        return self.receive(build(frm=frm, subject=subject, body=body, name=kw.pop("name", "Li Wei"), **kw))


def to_engineer(mails: list[dict], engineer: str, kind: str | None = None) -> list[dict]:
    return [m for m in mails if engineer in m["to"]]


def quote_block(style: str, original, text: str) -> str:
    """The quoted part a client appends below the engineer's text."""
    body = body_text(original)
    frm = original["From"]
    if style == "outlook":
        return (f"\n\n________________________________\nFrom: {frm}\nSent: Monday, March 2, 2026 10:15 AM\n"
                f"To: Alice Wang <{ALICE}>\nSubject: {original['Subject']}\n\n{body}")
    if style == "gmail":
        return f"\n\nOn Mon, Mar 2, 2026 at 10:15 AM {frm} wrote:\n\n" + "".join(
            f"> {ln}\n" for ln in body.splitlines())
    if style == "foxmail":
        return (f"\n\n------------------ 原始邮件 ------------------\n发件人: \"{frm}\";\n"
                f"发送时间: 2026年3月2日(星期一) 上午10:15\n收件人: \"Alice\"<{ALICE}>;\n"
                f"主题: {original['Subject']}\n\n{body}")
    if style == "mutt":
        return f"\n\nOn Mon, Mar 02, 2026 at 10:15:00AM +0800, {frm} wrote:\n" + "".join(
            f"> {ln}\n" for ln in body.splitlines())
    raise ValueError(style)


def reply_to(original, text: str, *, frm=ALICE, name="Alice Wang", style="outlook", to=None, signature="",
             headers=None, attachments=()) -> bytes:
    """An engineer's reply to `original` (a parsed notification), as their client would send it."""
    m = EmailMessage()
    m["From"] = f"{name} <{frm}>"
    m["To"] = to or original["Reply-To"] or original["From"]
    m["Subject"] = "RE: " + original["Subject"] if style == "outlook" else "Re: " + original["Subject"]
    m["Message-ID"] = make_msgid(domain="support.example.com")
    m["Date"] = sent_now()
    m["In-Reply-To"] = original["Message-ID"]
    m["References"] = ((original["References"] or "") + " " + original["Message-ID"]).strip()
    for k, v in (headers or {}).items():
        m[k] = v
    sig = f"\n\n-- \n{signature}\n" if signature else ""
    m.set_content(text + sig + quote_block(style, original, text))
    for filename, ctype, data in attachments:
        maintype, _, subtype = ctype.partition("/")
        m.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return m.as_bytes(policy=SMTP)


def all_text(raw: bytes) -> str:
    """Headers and every decoded part, for "never anywhere" assertions."""
    msg = parse(raw)
    parts = [raw.decode("utf-8", "replace")]
    for part in msg.walk():
        if not part.is_multipart():
            payload = part.get_payload(decode=True) or b""
            parts.append(payload.decode("utf-8", "replace"))
    for k, v in msg.items():
        parts.append(f"{k}: {v}")
    return "\n".join(parts).lower()


# ---------------------------------------------------------------- database views

def latest_ticket_id(app) -> int:
    from sqlalchemy import func, select

    from storage.models import Ticket

    with app.db.session() as s:
        return s.execute(select(func.max(Ticket.id))).scalar_one()


def ticket(app, tid):
    from storage.models import Ticket

    with app.db.session() as s:
        return s.get(Ticket, tid)


def events(app, tid, kind=None):
    from sqlalchemy import select

    from storage.models import Event

    with app.db.session() as s:
        q = select(Event).where(Event.ticket_id == tid).order_by(Event.id)
        if kind:
            q = q.where(Event.kind == kind)
        return list(s.execute(q).scalars())


def messages(app, tid):
    from sqlalchemy import select

    from storage.models import Message

    with app.db.session() as s:
        return list(s.execute(select(Message).where(Message.ticket_id == tid).order_by(Message.id)).scalars())


def tickets_count(app) -> int:
    from sqlalchemy import func, select

    from storage.models import Ticket

    with app.db.session() as s:
        return s.execute(select(func.count(Ticket.id))).scalar_one()


def open_ticket(desk: Desk, engineer: str = ALICE, **kw):
    """A customer writes; returns (ticket id, the notification `engineer` received)."""
    desk.customer_writes(**kw)
    mails = desk.new_mail()
    got = [m["msg"] for m in mails if engineer in m["to"]]
    assert got, f"no notification to {engineer}; sent: {[m['to'] for m in mails]}"
    return latest_ticket_id(desk.app), got[0]


def customer_mail(mails: list[dict], customer: str = CUSTOMER) -> list[dict]:
    return [m for m in mails if customer in m["to"]]
