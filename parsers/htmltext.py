"""HTML bodies: a readable-text rendering and a sanitised copy.

Owns `html_to_text` (our own small converter on html.parser: block elements, <br>, list
items and table rows become line breaks; script/style/title are dropped; entities decoded)
and `sanitise_html` (nh3 with a mail policy: no scripts, no event handlers, no remote
images; cid: images kept). It does not decide which MIME part is the body.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import nh3

# Converting pathological multi-megabyte HTML in pure Python costs more than it is worth;
# beyond this the text is cut (the sanitised HTML still carries everything).
MAX_HTML_FOR_TEXT = 256 * 1024

_BLOCK = frozenset(
    "p div h1 h2 h3 h4 h5 h6 ul ol dl dt dd blockquote pre table thead tbody tfoot tr "
    "section article header footer nav aside address form fieldset hr center figure "
    "figcaption main details summary caption".split()
)
# Not "head": a missing </head> is common and would swallow the whole body.
_SKIP = frozenset(("script", "style", "title", "template", "noscript"))
_SPACE = re.compile(r"[ \t\r\n\f\u200b]+")
_MANY_BLANK = re.compile(r"\n{3,}")


class _TextBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.skip_depth = 0
        self.pre_depth = 0

    def _newline(self, count: int = 1) -> None:
        self.chunks.append("\n" * count)

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in _SKIP:
            self.skip_depth += 1
        elif tag == "br":
            self._newline()
        elif tag == "li":
            self._newline()
            self.chunks.append("- ")
        elif tag in ("td", "th"):
            self.chunks.append("\t")
        elif tag in _BLOCK:
            self._newline(2 if tag in ("p", "blockquote", "table", "h1", "h2", "h3") else 1)
            if tag == "pre":
                self.pre_depth += 1
            elif tag == "hr":
                self.chunks.append("----\n")

    def handle_startendtag(self, tag: str, attrs) -> None:
        if tag not in _SKIP:  # <script/> must not open a skip region that never closes
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip_depth = max(0, self.skip_depth - 1)
        elif tag in _BLOCK or tag == "li":
            if tag == "pre":
                self.pre_depth = max(0, self.pre_depth - 1)
            self._newline(2 if tag in ("p", "blockquote", "table") else 1)

    def handle_data(self, data: str) -> None:
        if self.skip_depth:
            return
        if self.pre_depth:
            self.chunks.append(data)
        else:
            self.chunks.append(_SPACE.sub(" ", data))

    def text(self) -> str:
        joined = "".join(self.chunks).replace("\xa0", " ")
        # Whitespace collapsing leaves at most one stray space at a line start; two or
        # more come from <pre> and are kept.
        lines = [_trim(line) for line in joined.split("\n")]
        return _MANY_BLANK.sub("\n\n", "\n".join(lines)).strip()


def _trim(line: str) -> str:
    line = line.rstrip(" \t").lstrip("\t")
    return line[1:] if line.startswith(" ") and not line.startswith("  ") else line


def html_to_text(html: str) -> str:
    """Readable plain text for an HTML body (never raises)."""
    if not html:
        return ""
    builder = _TextBuilder()
    try:
        builder.feed(html[:MAX_HTML_FOR_TEXT])
        builder.close()
    except Exception:  # html.parser is lenient, but a converter must never sink a mail
        pass
    return builder.text()


_CLEANER = nh3.Cleaner(
    url_schemes=nh3.ALLOWED_URL_SCHEMES | {"cid"},
    clean_content_tags={"script", "style"},
)
# nh3 output is normalised and escapes "<" and ">" inside attribute values, so a
# tag-level regex is exact here (and far cheaper than a per-attribute Python callback).
_IMG = re.compile(r"<img\b[^>]*>", re.I)
_CID_SRC = re.compile(r'\ssrc="\s*cid:', re.I)


def _keep_local_image(match: re.Match) -> str:
    tag = match.group(0)
    return tag if _CID_SRC.search(tag) else ""  # remote image: a tracking pixel at best


def sanitise_html(html: str) -> str:
    """Safe-to-display HTML: no scripts, handlers, styles or remote images."""
    if not html:
        return ""
    try:
        cleaned = _CLEANER.clean(html)
    except Exception:
        return ""
    return _IMG.sub(_keep_local_image, cleaned) if "<img" in cleaned else cleaned
