"""Keyword matching for Chinese and English, prepared once per email.

Owns how text is normalised (NFKC, case-folded) and what "the email contains
keyword K" means:

- a keyword with CJK characters matches as a substring (Chinese has no spaces);
- a Latin-script keyword matches whole words only ("down" is not in
  "download"); hyphens and spaces between its words are interchangeable.

All keywords of all rules go into one `KeywordIndex` at load time. For each
email the index is asked once per field which of its keywords occur; a rule's
keyword test is then a set intersection, which keeps 200 rules cheap.
"""

from __future__ import annotations

import re
import unicodedata

# Latin-script word characters: ASCII letters/digits plus Latin-1 to Latin Extended-B.
_WORD = re.compile(r"[0-9a-z\u00c0-\u024f]+")
_CJK = re.compile(r"[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f\U00020000-\U0002fa1f]")
_SIMPLE = re.compile(r"[0-9a-z\u00c0-\u024f]+(?:[\s\-]+[0-9a-z\u00c0-\u024f]+)*")

MAX_SCAN = 100_000  # characters of a body that matching looks at; bounds pathological mail


def fold(text: str) -> str:
    """NFKC (full-width Ｏｕｔａｇｅ becomes outage) then case-fold."""
    return unicodedata.normalize("NFKC", text).casefold()


class FieldText:
    """One field of one email, folded and tokenised on demand."""

    __slots__ = ("raw", "folded", "_words", "_joined")

    def __init__(self, raw: str):
        self.raw = unicodedata.normalize("NFKC", raw[:MAX_SCAN])
        self.folded = self.raw.casefold()
        self._words: frozenset[str] | None = None
        self._joined: str | None = None

    @property
    def words(self) -> frozenset[str]:
        if self._words is None:
            self._tokenise()
        return self._words

    @property
    def joined(self) -> str:
        """The Latin words separated by single spaces, padded: ' all users are down '."""
        if self._joined is None:
            self._tokenise()
        return self._joined

    def _tokenise(self) -> None:
        tokens = _WORD.findall(self.folded)
        self._words = frozenset(tokens)
        self._joined = " " + " ".join(tokens) + " "


class KeywordIndex:
    """Every keyword of every rule, sorted by how it must be matched."""

    def __init__(self) -> None:
        self.words: set[str] = set()  # single Latin words: set lookup
        self.phrases: dict[str, str] = {}  # key -> " padded phrase "
        self.substrings: dict[str, str] = {}  # key -> needle: CJK (or mixed) keywords, regex literals
        self.patterns: dict[str, re.Pattern] = {}  # Latin with punctuation: guarded regex

    def add(self, keyword: str) -> str:
        """Register a keyword; return the key that `find` reports when it occurs."""
        key = fold(keyword).strip()
        if not key:
            raise ValueError("empty keyword")
        if _CJK.search(key):
            self.substrings[key] = key
        elif _SIMPLE.fullmatch(key):
            tokens = _WORD.findall(key)
            if len(tokens) == 1:
                self.words.add(key)
            else:
                self.phrases[key] = " " + " ".join(tokens) + " "
        else:  # "c++", "node.js", "#500": whole word, punctuation kept literally
            edge = r"[0-9a-z\u00c0-\u024f]"
            self.patterns[key] = re.compile(f"(?<!{edge}){re.escape(key)}(?!{edge})")
        return key

    def add_literal(self, literal: str) -> str:
        """Register text a regex cannot match without; its key never collides with a keyword."""
        key = "\0" + literal.casefold()
        self.substrings[key] = key[1:]
        return key

    def find(self, text: FieldText) -> frozenset[str]:
        """The keys of every registered keyword that occurs in `text`."""
        hits = set(self.words & text.words) if self.words else set()
        if self.phrases:
            joined = text.joined
            hits.update(k for k, p in self.phrases.items() if p in joined)
        if self.substrings:
            folded = text.folded
            hits.update(k for k, needle in self.substrings.items() if needle in folded)
        if self.patterns:
            folded = text.folded
            hits.update(k for k, p in self.patterns.items() if p.search(folded))
        return frozenset(hits)


def required_literal(pattern: str) -> str | None:
    """The longest run of plain characters every match of `pattern` must contain, or None.

    Only runs at the top level of the pattern count (not inside groups, branches or
    repeats), and only ASCII or CJK characters, whose case-folding is one character
    for one: then "literal in folded text" is false only when the regex cannot match
    the NFKC text case-insensitively, so it is a safe pre-filter.
    """
    from re import _constants as c, _parser  # the stdlib's own regex parser

    try:
        items = list(_parser.parse(pattern, re.IGNORECASE))
    except re.error:
        return None
    best, run = "", ""
    for op, arg in items:
        ch = chr(arg) if op is c.LITERAL else ""
        if ch and (ch.isascii() or _CJK.match(ch)):
            run += ch
        else:
            best, run = max(best, run, key=len), ""
    best = max(best, run, key=len)
    return best.casefold() if best.strip() else None
