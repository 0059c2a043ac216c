"""The stdlib's compat32 MIME parse (email.message_from_bytes), without its one regular-expression
compile per multipart part.

Owns `message_from_bytes(raw)`: the same Message tree, built by the same code (the stdlib's
FeedParser._parsegen, run with one name of its module rebound), fed the same way. The one
change is the boundary matcher. The stdlib compiles a pattern for every multipart boundary it
meets, `(?P<sep>--BOUNDARY)(?P<end>--)?(?P<ws>[ \\t]*)(?P<linesep>\\r\\n|\\r|\\n)?$`, and a
boundary is unique to its message, so Python's pattern cache never helps: compiling it (pure
Python, re._parser) cost a third of the stdlib's whole parse of a typical two-part mail. Here
the literal part is a `str.startswith` and the rest one pattern compiled once, matched where
the literal ends: the same lines match, with the same groups ('end', 'ws', 'linesep').

Any other pattern the parser might compile, in this Python or a later one, goes to re.compile
unchanged; so does a boundary pattern of another shape. Must not: change what is parsed.
tests/test_parse_feed.py compares the trees with the stdlib's on the corpora.
"""

from __future__ import annotations

import email.feedparser as _stdlib
import re
import types
from email.policy import compat32
from io import StringIO

_HEAD, _TAIL = "(?P<sep>", r")(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$"
_AFTER_SEPARATOR = re.compile(_TAIL[1:])  # matched at the separator's end: no ^, the same $


class _Boundary:
    """A compiled boundary pattern's `match`, for the parser's two uses: a line's test, and the
    sub-file's end-of-part predicate."""

    __slots__ = ("separator", "_at")

    def __init__(self, separator: str) -> None:
        self.separator = separator
        self._at = len(separator)

    def match(self, line: str):
        if not line.startswith(self.separator):
            return None
        return _AFTER_SEPARATOR.match(line, self._at)


def _compile(pattern, flags=0):
    if flags == 0 and isinstance(pattern, str) and pattern.startswith(_HEAD) and pattern.endswith(_TAIL):
        escaped = pattern[len(_HEAD):-len(_TAIL)]
        separator = re.sub(r"\\(.)", r"\1", escaped, flags=re.S)
        if re.escape(separator) == escaped:  # exactly the stdlib's re.escape(separator): a literal
            return _Boundary(separator)
    return re.compile(pattern, flags)


class _Re(types.ModuleType):
    """`re` as the feed parser's code sees it: compile as above, everything else re's own."""

    compile = staticmethod(_compile)

    def __getattr__(self, name):
        return getattr(re, name)


_GLOBALS = dict(vars(_stdlib), re=_Re("re"))
_parsegen = _stdlib.FeedParser._parsegen
_lean_parsegen = types.FunctionType(_parsegen.__code__, _GLOBALS, _parsegen.__name__, _parsegen.__defaults__,
                                    _parsegen.__closure__)


class _FeedParser(_stdlib.FeedParser):
    _parsegen = _lean_parsegen


def message_from_bytes(raw: bytes):
    """email.message_from_bytes(raw) (compat32), faster on multipart mail; raises as it does."""
    parser = _FeedParser(policy=compat32)
    fp = StringIO(raw.decode("ascii", errors="surrogateescape"))
    while True:  # as email.parser.Parser.parse feeds it
        data = fp.read(8192)
        if not data:
            break
        parser.feed(data)
    return parser.close()
