"""The knowledge base: solutions saved as articles, found again in Chinese and English.

Owns saving an article from a resolved ticket, `search(session, words, limit)`
(the CLI's `kb search`) and `suggest(session, text, n)` (articles offered in the
acknowledgement). Chinese has no spaces between words, so text is cut into
terms two ways: Latin words (lower-cased, stop words dropped) and, for runs of
CJK characters, overlapping character bigrams ("打印机" -> "打印", "印机"); a
lone CJK character is kept as itself. An article scores the sum of the query
terms it contains, title and tags weighing more than the body.

Articles are scored in Python: a support knowledge base holds hundreds or a
few thousand articles, which is milliseconds of work and needs no full-text
extension that SQLite and PostgreSQL would spell differently.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from sqlalchemy.orm import Session

from storage.models import KbArticle
from storage.queries import kb as kb_articles

_LATIN = re.compile(r"[a-z0-9][a-z0-9_.+-]*[a-z0-9]|[a-z0-9]")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_STOP = frozenset(
    "a an and are as at be but by can do does for from has have how i in is it its my no not of on or our "
    "please so that the this to was we when why with you your re fw fwd hi hello dear thanks thank regards".split()
)
# Bigrams that occur in nearly every Chinese support mail and so tell nothing apart.
_CJK_STOP = frozenset(["问题", "您好", "你好", "谢谢", "请问", "我们", "一下", "可以", "出现", "现在", "没有", "这个"])

TITLE_WEIGHT = 3
TAG_WEIGHT = 3
BODY_WEIGHT = 1


@dataclass(frozen=True)
class Hit:
    article: KbArticle
    score: int
    matched: tuple[str, ...]  # the query terms the article contains

    @property
    def title(self) -> str:  # templates list suggestions by title
        return self.article.title


def terms(text: str) -> list[str]:
    """Search terms of a text, in order, duplicates kept (callers dedupe when they need to)."""
    text = unicodedata.normalize("NFKC", text or "").lower()
    out: list[str] = []
    for word in _LATIN.findall(_CJK.sub(" ", text)):
        if word not in _STOP and not (len(word) == 1 and not word.isdigit()):
            out.append(word)
    for run in _CJK.findall(text):
        if len(run) == 1:
            out.append(run)
        for i in range(len(run) - 1):
            gram = run[i:i + 2]
            if gram not in _CJK_STOP:
                out.append(gram)
    return out


def save_article(session: Session, *, title: str, problem: str, solution: str, tags=(), ticket_id=None,
                 now) -> KbArticle:
    tags = [t.strip().lstrip("#").lower() for t in tags if t.strip().lstrip("#")]
    article = KbArticle(ticket_id=ticket_id, title=title.strip() or "(untitled)", tags=list(dict.fromkeys(tags)),
                        problem=problem.strip(), solution=solution.strip(), created_at=now)
    session.add(article)
    session.flush()
    return article


def _score(article: KbArticle, query: list[str]) -> tuple[int, tuple[str, ...]]:
    title = set(terms(article.title))
    tag_terms = set(terms(" ".join(article.tags or [])))
    body = set(terms(article.problem + "\n" + article.solution))
    score, matched = 0, []
    for q in query:
        s = TITLE_WEIGHT * (q in title) + TAG_WEIGHT * (q in tag_terms) + BODY_WEIGHT * (q in body)
        if s:
            score += s
            matched.append(q)
    return score, tuple(matched)


def search(session: Session, words: str, limit: int = 10, *, min_matched: int = 1) -> list[Hit]:
    """Articles containing the words, best first (ties: newest first)."""
    query = list(dict.fromkeys(terms(words)))
    if not query:
        return []
    hits = []
    for article in kb_articles.newest_first(session):
        score, matched = _score(article, query)
        if score and len(matched) >= min_matched:
            hits.append(Hit(article, score, matched))
    hits.sort(key=lambda h: (-h.score, -h.article.id))
    return hits[:limit]


def suggest(session: Session, text: str, n: int = 3) -> list[Hit]:
    """Articles worth offering a customer whose mail reads `text`.

    Stricter than search: a mail is long and shares a stray term with many
    articles, so an article must match two distinct terms, one of them in its
    title or tags, before it is offered.
    """
    if n <= 0:
        return []
    out = []
    for hit in search(session, text, limit=max(n * 5, 10), min_matched=2):
        head = set(terms(hit.article.title + " " + " ".join(hit.article.tags or [])))
        if any(q in head for q in hit.matched):
            out.append(hit)
        if len(out) == n:
            break
    return out
