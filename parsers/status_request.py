"""Is this mail a customer asking for the status of their tickets? Pure text, no database.

`is_status_request(subject, body="")` recognises the usual ways to ask, in English
and Chinese, as the whole subject ("status", "What is the status of my tickets?",
"进度查询", "我的工单") or as a one-line body under an empty or greeting subject
("Hi" / "你好"). The phrase must be the whole line: "Status page shows 500 error",
"status of my order 42" or "订单状态无法更新" are problem reports, and so is a
lookup subject over a body that says anything else than a greeting, the
question itself, a thank-you and the customer's name: that text would be lost
in a lookup, while a ticket keeps it.

It expects the reply text (quote and signature removed: `parsers.quotes`).
Whether the sender gets a list, and which, is `gateway.handlers.selfservice`'s business.
"""

from __future__ import annotations

import re
import unicodedata

_REPLY_PREFIX = re.compile(r"^\s*(?:re|aw|sv|fw|fwd|回复|答复|转发)\s*[:：]\s*", re.IGNORECASE)
_EDGE_PUNCT = " \t?？!！.。,，:：;；~～-—"

# --- English: the whole line, lower-cased, punctuation at both ends removed
_NOUN = r"(?:support\s+)?(?:tickets?|requests?|cases?|issues?|enquir(?:y|ies)|inquir(?:y|ies))"
# A bare "my ..." asks only in the plural: "My issue" / "My ticket" is how a problem report starts.
_NOUNS = r"(?:support\s+)?(?:tickets|requests|cases)"
_OWN = r"(?:my|our|all\s+(?:of\s+)?(?:my|our))(?:\s+(?:open|current|pending|outstanding|support))?"
_ASK = (r"(?:(?:hi|hello|hey)[\s,]+)?(?:please\s+|pls\s+|kindly\s+)?"
        r"(?:(?:can|could|would|will)\s+(?:you|u)\s+(?:please\s+)?|i(?:'d|\s+would)\s+like\s+to\s+|"
        r"i\s+want\s+to\s+|let\s+me\s+)?"
        r"(?:(?:check|show|list|send|give|tell|get|see|know|view|request|need)(?:\s+(?:me|us))?\s+)?")
_TAIL = r"(?:[\s,]+(?:please|pls|thanks|thank\s+you))?"
_ENGLISH = [re.compile(f"^{p}{_TAIL}$") for p in (
    rf"{_ASK}(?:the\s+)?(?:current\s+)?(?:ticket\s+|tickets\s+)?status(?:\s+(?:check|update|request|enquiry|inquiry))?",
    rf"{_ASK}(?:the\s+)?(?:current\s+)?status\s+(?:of|on|for)\s+{_OWN}\s+{_NOUN}",
    rf"(?:what\s+is|what's|whats|how\s+is|how's)\s+(?:the\s+)?(?:current\s+)?status\s+(?:of|on|for)\s+{_OWN}\s+{_NOUN}",
    rf"{_ASK}(?:a\s+)?(?:list\s+of\s+)?{_OWN}\s+{_NOUNS}(?:\s+(?:status|list|overview))?",
    rf"{_OWN}\s+{_NOUN}(?:'|’)?\s*status",
    rf"(?:any\s+)?(?:status\s+)?updates?\s+(?:on|for|about)\s+{_OWN}\s+{_NOUN}",
    rf"(?:where|how)\s+are\s+{_OWN}\s+{_NOUN}(?:\s+(?:going|doing|at|now))?",
    rf"(?:check|checking)\s+(?:on\s+)?{_OWN}\s+{_NOUN}",
)]

# --- Chinese: the whole line, spaces and punctuation removed
_ZH_ASK = r"(?:您好|你好)?(?:请问|请|麻烦|帮我|帮忙|我想|我要|想)?(?:告诉我|告知|发我|发给我)?(?:查询|查看|查一下|查下|查|看一下|看看|了解一下|了解|问一下|问下)?(?:一下)?"
_ZH_OWN = r"(?:我的|我们的|我司的|我方的|我|我们)"
_ZH_TICKET = r"(?:工单|问题单|服务单|支持单|服务请求|报障单)"
_ZH_STATE = r"(?:状态|进度|处理进度|处理状态|处理情况|处理结果|情况|处理)"
_ZH_HOW = r"(?:如何|怎么样|怎样|怎么样了|如何了|到哪了|到哪一步了|到哪一步|怎么样啦)?(?:谢谢)?"
_CHINESE = [re.compile(f"^{p}$") for p in (
    rf"{_ZH_ASK}(?:{_ZH_OWN}的?)?{_ZH_TICKET}(?:的?{_ZH_STATE})?(?:查询)?{_ZH_HOW}",
    rf"{_ZH_ASK}{_ZH_OWN}的?(?:问题|请求|申请)的?{_ZH_STATE}(?:查询)?{_ZH_HOW}",
    rf"{_ZH_ASK}{_ZH_STATE}(?:查询)?{_ZH_HOW}",
    r"(?:工单|进度|状态)?查询",
)]

# Lines that say nothing about the matter: a greeting, a thank-you, a sign-off.
_FILLER = re.compile(
    r"^(?:(?:hi|hello|hey|dear)\b.{0,30}|(?:many\s+)?thanks?(?:\s+you)?(?:\s+in\s+advance)?|thx|cheers|regards|"
    r"best(?:\s+regards)?|kind\s+regards|best\s+wishes|您好|你好|.{0,10}您好|谢谢|多谢|感谢|谢谢您|祝好|此致|敬礼)"
    r"[\s,，.。!！:：]*$", re.IGNORECASE)
_GENERIC_SUBJECTS = frozenset({"", "hi", "hello", "hey", "question", "query", "enquiry", "inquiry", "help",
                               "你好", "您好", "咨询", "请问", "(no subject)", "no subject"})
# A sign-off name under the question ("Li Wei", "王先生"): letters only, at most three words.
_NAME = re.compile(r"^[^\W\d_]+(?:[ .'-][^\W\d_]+){0,2}$")


def _normalise(text: str) -> str:
    text = " ".join(unicodedata.normalize("NFKC", text or "").split())
    while True:
        shorter = _REPLY_PREFIX.sub("", text, count=1)
        if shorter == text:
            break
        text = shorter
    return text.strip(_EDGE_PUNCT).casefold().replace("’", "'")


def is_status_phrase(line: str) -> bool:
    """The whole line asks for the status of the writer's tickets."""
    text = _normalise(line)
    if not text:
        return False
    if any(p.match(text) for p in _ENGLISH):
        return True
    compact = re.sub(r"[\s,，.。!！?？:：;；、~～]+", "", text)
    return bool(compact) and any(p.match(compact) for p in _CHINESE)


def _own_lines(body: str) -> list[str]:
    lines = [ln.strip() for ln in (body or "").splitlines() if ln.strip()]
    return [ln for ln in lines if not _FILLER.match(unicodedata.normalize("NFKC", ln))]


def _only_the_question(lines: list[str]) -> bool:
    """Nothing in these lines but the question and perhaps a name: a lookup loses no text."""
    if len(lines) > 3:  # the question (perhaps asked twice) and a name at most: the rest is a story
        return False
    rest = [ln for ln in lines if not is_status_phrase(ln)]
    return not rest or (len(rest) == 1 and len(rest[0]) <= 24 and bool(_NAME.match(rest[0])))


def is_status_request(subject: str, body: str = "") -> bool:
    """A status lookup by its subject, or by a one-line body under an empty or greeting subject."""
    lines = _own_lines(body)
    if is_status_phrase(subject):
        return _only_the_question(lines)
    if _normalise(subject) not in _GENERIC_SUBJECTS:
        return False
    return _only_the_question(lines) and sum(1 for ln in lines if is_status_phrase(ln)) == 1
