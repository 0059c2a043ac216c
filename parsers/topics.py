"""Is a customer's reply a new question inside an old thread?

`new_topic(subject, text, thread_subject, thread_text) -> str` gives the reason ("" when
it is the same matter): the subject was changed to something else, or the reply asks a
question with enough words of its own and shares almost none of them with the thread.
Short follow-ups ("Any update? It still happens.") are never a new topic: too few words to
tell. Words are lower-cased Latin words of three letters or more and, for Chinese, pairs
of adjacent characters; common words are left out. Text in, a string out; the gateway
decides what to do with it.
"""

from __future__ import annotations

import re

MIN_OWN_WORDS = 6  # fewer distinct words than this: too short to call a new topic
MAX_SHARED = 0.15  # share of the reply's words found in the thread, at most, for a new question
MIN_SUBJECT_OVERLAP = 0.5  # subjects sharing less than this (either way round) differ

_PREFIX = re.compile(r"^\s*(?:(?:re|fw|fwd|aw|wg|tr|sv|vs|antw|答复|回复|转发|回覆|轉寄)\s*[:：]\s*)+", re.I)
_REF = re.compile(r"\[[A-Za-z][A-Za-z0-9]{0,9}-\d{1,12}\]")
_WORD = re.compile(r"[a-z][a-z0-9'-]{2,}|\d{3,}")
_CJK_RUN = re.compile(r"[\u4e00-\u9fff]+")
_QUESTION = re.compile(r"[?？]|(?:^|\n)\s*(?:how|what|why|when|where|which|who|can|could|would|is there|are there|"
                       r"do you|does|is it)\b|吗|怎么|如何|能否|是否|为什么|请问", re.I)
_STOP = frozenset("""the and for you your our are was were has have had this that with from not but can
could would should will all any been into out about also just than then them they there their its
it's i'm we're don't does did get got yes please thanks thank regards hello dear best kind team
support hi sent wrote ticket request received update still again since today morning when what
how why which who""".split())
_CJK_STOP = frozenset(["您好", "谢谢", "请问", "你好", "我们", "一下", "问题", "已经", "可以", "是否", "如何", "怎么"])


def words(text: str) -> set[str]:
    text = (text or "").lower()
    found = {w for w in _WORD.findall(text) if w not in _STOP}
    for run in _CJK_RUN.findall(text):
        found.update(run[i:i + 2] for i in range(len(run) - 1))
        if len(run) == 1:
            found.add(run)
    return found - _CJK_STOP


def clean_subject(subject: str) -> str:
    subject = _REF.sub(" ", subject or "")
    before = None
    while before != subject:
        before = subject
        subject = _PREFIX.sub("", subject).strip()
    return " ".join(subject.split())


def asks_question(text: str) -> bool:
    return bool(_QUESTION.search(text or ""))


def subject_changed(subject: str, thread_subject: str) -> bool:
    a, b = words(clean_subject(subject)), words(clean_subject(thread_subject))
    if not a or not b:
        return False  # an empty subject changes nothing
    shared = len(a & b)
    return max(shared / len(a), shared / len(b)) < MIN_SUBJECT_OVERLAP


def new_topic(subject: str, text: str, thread_subject: str, thread_text: str) -> str:
    """Why this reply looks like a new question ("" when it does not)."""
    if subject_changed(subject, thread_subject):
        return "subject"
    own = words(text)
    if len(own) < MIN_OWN_WORDS or not asks_question(text):
        return ""
    thread = words(thread_subject) | words(thread_text)
    if len(own & thread) / len(own) <= MAX_SHARED:
        return "unrelated"
    return ""
