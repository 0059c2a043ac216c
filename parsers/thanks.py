"""Is a customer's reply only a thank-you? ("Thanks, it works!", "好了，谢谢！")

`is_thank_you(text)` is True for a short reply (quote and signature removed:
`parsers.quotes`) that thanks and reports success, and says nothing else: no
question, no "but", no "still", no new problem. Anything more is an ordinary
reply (on a resolved ticket it reopens it). When in doubt it answers False: a
thank-you taken for a problem only reopens a ticket, a problem taken for a
thank-you would leave a customer waiting.

It only reads text; what happens to the ticket is `gateway.desk.inbound`'s business.
"""

from __future__ import annotations

import re
import unicodedata

MAX_CHARS = 160  # of the customer's own words; more than that is a message, not a thank-you
MAX_LINES = 4

_THANKS = re.compile(
    r"\b(?:thanks?|thank\s*(?:you|u)|thx|ty|cheers|appreciated?|grateful|kudos)\b|谢谢|多谢|感谢|谢了|辛苦了|3q",
    re.IGNORECASE)
# Success and politeness: what a thank-you may say besides thanks.
_ALLOWED = re.compile(
    r"\b(?:it|that|this|everything|all|now|works?|working|worked|fixed|solved|resolved|sorted|perfect|great|"
    r"good|fine|ok|okay|awesome|excellent|brilliant|wonderful|nice|super|so|very|much|a\s+lot|lot|again|"
    r"for|the|your|you|u|help|quick|fast|prompt|support|team|guys|all|is|was|are|has|been|back|up|and|"
    r"many|really|indeed|confirmed|confirm|i|we|can|now|log|login|in|yes|yep|problem\s+solved|no\s+problem|"
    r"regards|best|kind|have|a|nice|day|weekend|thanks?|thank|thx|ty|cheers|appreciated?|grateful|kudos|"
    r"hi|hello|dear|everyone|all|much\s+appreciated|great\s+job|well\s+done|done|yay)\b",
    re.IGNORECASE)
_ZH_ALLOWED = re.compile(
    r"谢谢|多谢|感谢|谢了|辛苦了|非常|十分|很|太|好了|好的|可以了|可以|正常了|正常|解决了|已解决|搞定了|搞定|没问题了|没问题|"
    r"恢复了|恢复正常|能用了|能登录了|能登录|登录|登陆|使用|用了|收到|修好了|好|您|你们|你|大家|的|帮助|帮忙|支持|及时|快|了|啊|呀|哈|啦|嗯|"
    r"已经|现在|都|您好|你好|祝|工作|顺利|愉快|再次|一切|棒|给力|专业|处理|问题已|问题")
_QUESTION = re.compile(r"[?？]")
# Words that turn a thank-you into a message: a doubt, a remaining problem, a new request.
_BUT = re.compile(
    r"\b(?:but|however|though|although|still|again\s+(?:fails?|broken|down)|not|no\s+longer|doesn'?t|don'?t|"
    r"didn'?t|isn'?t|wasn'?t|can'?t|cannot|won'?t|error|fail\w*|broken|issue|problem|another|also|please|"
    r"could|would|can\s+you|need|help\s+me|when|why|how|what|where|only|except|unless)\b|"
    r"但是|但|可是|不过|仍然|仍|还是|还有|又|不能|无法|没有|不行|失败|错误|报错|异常|另外|另一个|请|麻烦|能否|可否|什么|怎么|为什么|"
    r"什么时候|只是|除了",
    re.IGNORECASE)
_POSITIVE_IDIOMS = re.compile(r"\bno\s+problem\b|\bproblem\s+solved\b|没问题|问题已解决|问题解决了", re.IGNORECASE)


def is_thank_you(text: str) -> bool:
    """A short thanks with nothing else in it: no question, no remaining problem, no request."""
    own = unicodedata.normalize("NFKC", text or "").replace("’", "'").strip()
    own = re.sub(r"\b(it|that|everything|all)'s\b", r"\1 is", own, flags=re.IGNORECASE)
    lines = [ln for ln in own.splitlines() if ln.strip()]
    if not own or len(own) > MAX_CHARS or len(lines) > MAX_LINES:
        return False
    if not _THANKS.search(own) or _QUESTION.search(own):
        return False
    if _BUT.search(_POSITIVE_IDIOMS.sub(" ", own)):
        return False
    # Every word must be one a thank-you uses; a sign-off name on the last line may stand alone.
    body = lines[:-1] if len(lines) > 1 and _looks_like_name(lines[-1]) else lines
    rest = _ZH_ALLOWED.sub(" ", _ALLOWED.sub(" ", " ".join(body)))
    return not re.search(r"[^\W\d_]", rest)


def _looks_like_name(line: str) -> bool:
    line = line.strip().strip("-–— ")
    return bool(re.fullmatch(r"[^\W\d_]+(?:[ .'-][^\W\d_]+){0,2}", line)) and len(line) <= 24 \
        and not _THANKS.search(line)
