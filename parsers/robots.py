"""Which kind of robot wrote this mail? (bounce, auto-reply, challenge-response, ...)

`parsers.loops` says *whether* a mail is automatic (never answer it). This module
says *what kind* of robot it is, because the gateway treats the kinds differently:
a bounce, an auto-reply, a challenge-response ("click here to be added to my
allowed list"), a feedback-loop report (ARF, RFC 5965), a delivery or read receipt
(MDN, RFC 8098) or a calendar auto-response (iTIP METHOD:REPLY) that refers to
none of our tickets is nobody asking for help, so it goes to the suspended area
instead of the team's queue. Mailing-list and bulk mail, and mail a customer's own
system generates (monitoring alerts), are *not* robots here: a person may be
behind them, and losing a customer's mail is worse than one ticket too many.

Challenge-response systems often send no automatic header at all, so they are
recognised by the service that sent them (its headers or domain) or by the
wording of the challenge in the new text (not the quoted part), and only when two
independent signs agree: a person who merely *mentions* an allowed list is not one.

Pure: a ParsedEmail in, a `Robot` (kind and every reason) or None out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message

from parsers import loops
from parsers.model import ParsedEmail

KINDS = ("bounce", "auto_reply", "challenge", "feedback_report", "receipt", "calendar", "loop")
UNCLASSIFIED = object()  # not asked yet (`classify` answers None for a person)


@dataclass(frozen=True)
class Robot:
    kind: str  # one of KINDS
    reasons: tuple[str, ...]  # every piece of evidence, most specific first

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


# --- challenge-response ------------------------------------------------------------------

# The services themselves: their own headers, or mail sent from their domains.
_CR_HEADERS = ("x-boxbe-", "x-spamarrest-", "x-bluebottle-", "x-challenge", "x-cr-", "x-tmda-",
               "x-mailchannels-challenge", "x-sanebox-")
_CR_DOMAINS = ("boxbe.com", "spamarrest.com", "bluebottle.com", "mailbluebottle.com", "sanebox.com",
               "choicemail.com", "mailwasher.net", "qurb.com", "tmda.net")

# What a challenge asks of the sender ...
_CR_ASK = re.compile(
    r"""(?:verify|prove|confirm)\ (?:that\ )?you\ are\ (?:a\ )?(?:human|real\ person|not\ a\ (?:robot|spammer|machine))
      | to\ be\ added\ to\ (?:my|the|our)\ (?:allowed|approved|safe|trusted|guest)?\s?(?:list|senders?\ list|whitelist)
      | add(?:ed)?\ (?:you\ )?to\ (?:my|the)\ (?:allowed|approved|safe|trusted)\ (?:list|senders)
      | (?:allowed|approved)\ senders?\ list | whitelist | guest\ list
      | click\ (?:on\ )?(?:here|the\ link(?:\ below)?)\ to\ (?:verify|confirm|be\ added|deliver)
      | complete\ (?:a|this|the)\ (?:one-time\ )?(?:verification|challenge)
      | 请(?:点击|验证)|验证您(?:是|的身份)|加入(?:白名单|允许列表)""",
    re.I | re.X,
)
# ... and what it says about the mail it holds.
_CR_HELD = re.compile(
    r"""(?:your|the)\ (?:message|e-?mail|mail)\ (?:\w+\ ){0,3}(?:is|has\ been|was|will\ be)\ (?:being\ )?
          (?:held|pending|quarantined|waiting|delivered\ (?:once|after|when)|not\ (?:yet\ )?delivered)
      | (?:i|we)\ (?:use|am\ using|are\ using)\ (?:a\ )?(?:challenge|spam\ protection|anti-?spam|boxbe|spamarrest|sanebox)
      | challenge[\s-]response | sender\ verification | one-time\ verification
      | until\ you\ (?:verify|confirm|respond|reply)
      | 您的(?:邮件|来信)(?:已被|正在|将在)""",
    re.I | re.X,
)
_SCAN = 3000  # a challenge says what it wants at once; a long letter that mentions it is a person


def _challenge(email: ParsedEmail) -> list[str]:
    reasons = []
    for name, _ in email.headers:
        low = name.lower()
        if low.startswith(_CR_HEADERS):
            reasons.append(f"challenge:header {name}")
            break
    sender_domain = email.sender.email.rpartition("@")[2]
    if sender_domain and any(sender_domain == d or sender_domain.endswith("." + d) for d in _CR_DOMAINS):
        reasons.append(f"challenge:sender {sender_domain}")
    text = f"{email.subject}\n{(email.reply_text or email.text)[:_SCAN]}"
    ask, held = _CR_ASK.search(text), _CR_HELD.search(text)
    if ask and held:
        reasons.append(f"challenge:text {ask.group(0)!r} + {held.group(0)!r}")
    # Wording alone is one sign; a service marker is one; two signs make a challenge.
    strong = [r for r in reasons if not r.startswith("challenge:text")]
    if strong and (ask or held or email.automatic or len(strong) > 1):
        return reasons
    if ask and held and (email.automatic or _looks_like_reply(email)):
        return reasons
    return []


def _looks_like_reply(email: ParsedEmail) -> bool:
    """A challenge answers a mail (ours, or one forged in someone's name)."""
    return bool(email.in_reply_to or email.references
                or re.match(r"^\s*(?:re|aw|sv|回复|答复)\s*[:：]", email.subject, re.I))


# --- reports and calendar ------------------------------------------------------------------

def _content_type(email: ParsedEmail) -> tuple[str, str]:
    """(type, report-type) of the top-level part."""
    value = email.header("content-type")
    if not value:
        return "text/plain", ""
    m = Message()
    m["Content-Type"] = value
    return m.get_content_type(), str(m.get_param("report-type") or "").lower()


def _calendar_reply(email: ParsedEmail) -> str:
    for att in email.attachments:
        if att.content_type.lower() in ("text/calendar", "application/ics"):
            head = att.content[:4096].upper()
            if b"METHOD:REPLY" in head:
                return "calendar:METHOD:REPLY"
    if re.search(r"method=\"?reply", email.header("content-type"), re.I):
        return "calendar:method=REPLY"
    return ""


_RECEIPT_SUBJECT = re.compile(r"^\s*(?:read|gelesen|lu|已读|已讀|delivered|zugestellt|已送达)\s*[:：]", re.I)

# loops' rules, by the kind of robot each one's evidence names
_BOUNCE_RULES = (loops.report_structure, loops.daemon_sender)
_AUTO_REPLY_HEADER = re.compile(r"^header:(?:Auto-Submitted=auto-replied|X-Autoreply|X-Autorespond|"
                                r"Precedence=auto[_-]reply|X-Autogenerated)", re.I)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery|returned|failure|failed|non[\s-]?delivery|could\ not|"
    r"not\ delivered|mail\ system\ error|退信|メールエラー", re.I | re.X)


def _loop_reasons(email: ParsedEmail, own: tuple[str, ...]) -> list[str]:
    ctype = email.header("content-type").split(";", 1)[0].strip().lower()
    sender = email.sender.email
    out = []
    headers = loops.index_headers(email.headers)
    for rule in loops.RULES:
        reason = rule(headers, ctype, sender, own)
        if reason:
            out.append(reason)
    return out


_DAEMON_NAME = re.compile(r"mailer[-_ ]?daemon|postmaster|mail delivery (?:system|subsystem)", re.I)


def _second_signs(email: ParsedEmail) -> list[str]:
    """Weaker signs that back up an automatic subject: a daemon named where an address should be,
    a vendor's vacation marker."""
    out = []
    if _DAEMON_NAME.search(email.sender.name) or _DAEMON_NAME.search(email.header("return-path")):
        out.append("sender:daemon-name")
    if email.header("x-apple-action").strip().upper() == "VACATION":
        out.append("header:X-Apple-Action=VACATION")
    return out


def classify(email: ParsedEmail, own_addresses: tuple[str, ...] = ()) -> Robot | None:
    """The robot behind `email`, or None for a person (or a list, or a system a person runs)."""
    own = tuple(a.strip().lower() for a in own_addresses if a and a.strip())
    evidence = _loop_reasons(email, own)
    ctype, report_type = _content_type(email)

    if any(r in ("sender:own-address", "header:X-Loop") for r in evidence):
        return Robot("loop", tuple(evidence))
    if ctype == "multipart/report" or ctype.startswith("message/"):
        if report_type == "feedback-report" or ctype == "message/feedback-report":
            return Robot("feedback_report", (f"structure:{ctype}; report-type={report_type}", *evidence))
        if report_type == "disposition-notification" or ctype == "message/disposition-notification":
            return Robot("receipt", (f"structure:{ctype}; report-type={report_type}", *evidence))
    if any(r.lower().startswith("subject:complaint about message from") for r in evidence):
        return Robot("feedback_report", tuple(evidence))
    challenge = _challenge(email)
    if challenge:
        return Robot("challenge", tuple(challenge + evidence))
    calendar = _calendar_reply(email)
    if calendar:
        return Robot("calendar", (calendar, *evidence))
    if evidence and _RECEIPT_SUBJECT.match(email.subject) and ctype == "multipart/report":
        return Robot("receipt", (f"subject:{email.subject[:40]}", *evidence))
    by_name = loops.index_headers(email.headers)
    for rule in _BOUNCE_RULES:
        if rule(by_name, ctype, email.sender.email, own):
            return Robot("bounce", tuple(evidence))
    if any(r in ("header:X-Failed-Recipients", "header:X-Amz-Sns-Message-Id") for r in evidence):
        return Robot("bounce", tuple(evidence))
    if any(_AUTO_REPLY_HEADER.match(r) for r in evidence):
        return Robot("auto_reply", tuple(evidence))
    # A subject alone ("Out of office hours: outage") may be a person's: it takes a second sign.
    subject = next((r for r in evidence if r.startswith("subject:")), "")
    if subject:
        evidence += _second_signs(email)
    if subject and (len(evidence) > 1 or _looks_like_reply(email)):
        return Robot("bounce" if _BOUNCE_SUBJECT.search(subject) else "auto_reply", tuple(evidence))
    return None
