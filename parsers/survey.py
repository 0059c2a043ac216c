"""Satisfaction-survey answers by mail: "5 - great", "4/5", "★★★★", "非常满意".

`parse_score(text)` reads the first meaningful line of a reply to a closure
survey and returns the score (1..5) with the customer's comment, or None when
the reply holds no score (then it is an ordinary reply to the ticket).

It expects the reply text alone (from `parsers.quotes.split_reply`), but is
safe on a full body too: it runs `split_reply` itself, so the quoted survey
question under the answer ("Reply with a number from 1 to 5") cannot be read
as the answer. It decides nothing about reopening; that is the ticket's job.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from parsers.quotes import split_reply


@dataclass(frozen=True)
class SurveyAnswer:
    score: int  # 1 (worst) .. 5 (best)
    comment: str  # the rest of the line after the score, then the following lines


# Longest first: "非常不满意" contains "不满意", which contains "满意".
_CHINESE = (
    ("非常不满意", 1), ("很不满意", 1), ("不太满意", 2), ("不满意", 2), ("非常满意", 5),
    ("很满意", 5), ("比较满意", 4), ("满意", 4), ("一般", 3),
)
_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
          "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
_LABEL = re.compile(r"^(?:score|rating|rate|note|评分|打分|分数|评价)\s*[:：=]?\s*", re.IGNORECASE)
_NUMBER = re.compile(
    r"^(?P<n>[1-5]|one|two|three|four|five|[一二两三四五])"
    r"(?P<scale>\s*(?:/|out\s+of|of)\s*5\b|\s*(?:分|星|颗星))?(?!\d|\.\d|[a-z]|分钟)",
    re.IGNORECASE,
)
_STARS = re.compile(r"^(?:[★☆⭐*]\s*){1,5}(?![★☆⭐*])")
_MARKUP = "*_[](){}\"'“”「」【】 \t"
_SEPARATORS = " \t-–—:：,，.。!！;；/|"
# "5 minutes later it broke again" is a sentence, not a score.
_NOT_A_SCORE_AFTER = re.compile(
    r"^\s*(?:min|minute|minutes|mins|hour|hours|hrs|day|days|week|weeks|times|people|users|"
    r"of\s+(?:the|our|us|them)|pm|am)\b|^\s*(?:%|个|天|次|小时|年|月|日|号|件|位)",
    re.IGNORECASE,
)
_OTHER_SCALE = re.compile(r"^\s*(?:/|out\s+of)\s*\d")  # "8/10" is not our 1..5 scale
_GREETING = re.compile(r"^(?:hi|hello|hey|dear\b.*|你好|您好)[\s,，!！.]*$", re.IGNORECASE)


def parse_score(text: str) -> SurveyAnswer | None:
    """The score on the first meaningful line of a survey reply, or None."""
    reply = split_reply(text or "").reply_text
    lines = [unicodedata.normalize("NFKC", line).strip() for line in reply.splitlines()]
    for index, line in enumerate(lines):
        if not line or _GREETING.match(line):
            continue
        found = _score_at_start(line)
        if found is None:
            return None
        score, rest = found
        comment = "\n".join([rest.strip(_SEPARATORS)] + lines[index + 1:]).strip()
        return SurveyAnswer(score, comment)
    return None


def _reads_as_sentence(rest: str) -> bool:
    """"Two things broke today" is prose; "5 great", "5 - great" and "5" are answers."""
    tail = rest.lstrip()
    if not tail or tail[0] in _SEPARATORS or not rest[:1].isspace() and not tail[0].isalnum():
        return False
    return len(rest.split()) > 3


def _score_at_start(line: str) -> tuple[int, str] | None:
    line = _LABEL.sub("", line.lstrip(_MARKUP.replace("*", "")), count=1)
    stars = _STARS.match(line)
    starry = stars and ("★" in stars.group() or "⭐" in stars.group() or len(stars.group().strip()) > 1)
    if starry and not line[stars.end():].lstrip()[:1].isdigit():  # "**4**" is bold, not stars
        count = sum(stars.group().count(c) for c in "★⭐*")  # "☆" is an empty star
        return (count, line[stars.end():]) if count else None
    line = line.lstrip(_MARKUP)
    for phrase, score in _CHINESE:
        if line.startswith(phrase):
            rest = line[len(phrase):]
            # "一般来说……" ("generally speaking") is prose, "一般，还行" is an answer.
            if rest and rest[0] not in _SEPARATORS + "，。！～~":
                return None
            return score, rest
    match = _NUMBER.match(line)
    if not match:
        return None
    rest = line[match.end():]
    if not match.group("scale") and (_NOT_A_SCORE_AFTER.match(rest) or _OTHER_SCALE.match(rest)):
        return None
    if not match.group("scale") and _reads_as_sentence(rest):
        return None
    token = match.group("n").lower()
    score = int(token) if token.isdigit() else _WORDS[token]
    return score, rest.lstrip(_MARKUP)
