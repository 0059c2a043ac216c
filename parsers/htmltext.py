"""HTML bodies: a readable-text rendering and a sanitised copy.

Owns `html_to_text` (our own small converter on html.parser: block elements, <br>, list
items and table rows become line breaks; script/style/title are dropped; entities decoded;
quoted <blockquote> content becomes "> " lines, as a mail client's plain-text view shows
it, so parsers.quotes trims an HTML-only reply's history like a plain-text one's)
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
# a blank line left between a quote's lines by block spacing: one is enough
_QUOTE_BLANKS = re.compile(r"^(>+)\n(?:\1\n)+", re.M)
# Gmail's and Outlook's "indent" button makes a <blockquote> with no border: layout, not a quote.
_INDENT_ONLY = re.compile(r"border(?:-left)?\s*:\s*(?:none|0)\b", re.I)


class _TextBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.depths: list[int] = []  # the quote depth each chunk was written at
        self.skip_depth = 0
        self.pre_depth = 0
        self.quote_depth = 0
        self.blockquotes: list[bool] = []  # open <blockquote>s: is each a quote?
        self.links: list[tuple[str, int]] = []  # open <a href>s: (address, chunks before it)
        # Block edges ask for line breaks; they merge (as in a browser's innerText):
        # "<div>a</div><div>b</div>" is two lines, "<p>a</p><p>b</p>" two paragraphs.
        self.pending = 0  # line breaks asked for since the last text: at most this many
        self.trailing = 0  # line breaks already at the end of the output
        self.started = False

    def _add(self, text: str) -> None:
        """Text, or a hard line break (<br>, <pre> content)."""
        spacing = "\n" not in text and not text.strip(" \t")
        if spacing and (self.pending or self.trailing or not self.started):
            return  # spacing between blocks, or at a line start: not content
        if self.pending and self.started:
            self._put("\n" * max(0, self.pending - self.trailing))
        self.pending = 0
        self._put(text)

    def _put(self, text: str) -> None:
        if not text:
            return
        self.chunks.append(text)
        self.depths.append(self.quote_depth)
        kept = text.rstrip("\n")
        self.trailing = len(text) - len(kept) + (self.trailing if not kept else 0)
        self.started = self.started or bool(kept.strip())

    def _newline(self, count: int = 1) -> None:
        """A block edge: at least `count` line breaks before whatever text comes next."""
        self.pending = max(self.pending, count)

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in _SKIP:
            self.skip_depth += 1
        elif tag == "br":
            self._add("\n")
        elif tag == "li":
            self._newline()
            self._add("- ")
        elif tag in ("td", "th"):
            self._add("\t")
        elif tag == "img":
            src = (dict(attrs).get("src") or "").strip()
            if src[:4].lower() == "cid:" and src[4:]:  # an image of this mail: it stood here
                self._add(f"[cid:{src[4:]}]")
        elif tag == "a":
            self.links.append(((dict(attrs).get("href") or "").strip(), len(self.chunks)))
        elif tag in _BLOCK:
            self._newline(2 if tag in ("p", "blockquote", "table", "h1", "h2", "h3") else 1)
            if tag == "pre":
                self.pre_depth += 1
            elif tag == "hr":
                self._add("----")
                self._newline()
            elif tag == "blockquote":
                quote = not _INDENT_ONLY.search(dict(attrs).get("style") or "")
                self.blockquotes.append(quote)
                self.quote_depth += quote

    def handle_startendtag(self, tag: str, attrs) -> None:
        if tag not in _SKIP:  # <script/> must not open a skip region that never closes
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip_depth = max(0, self.skip_depth - 1)
        elif tag == "a" and self.links:
            href, start = self.links.pop()
            shown = "".join(self.chunks[start:]).strip()
            # a link's address is part of what the customer said ("the log is here"): keep it
            # after the text unless the text already is the address
            if _WEB_LINK.match(href) and shown and _bare(shown) != _bare(href) and not self.skip_depth:
                self._add(f" <{href}>")
        elif tag in _BLOCK or tag == "li":
            if tag == "pre":
                self.pre_depth = max(0, self.pre_depth - 1)
            self._newline(2 if tag in ("p", "blockquote", "table") else 1)
            if tag == "blockquote" and self.blockquotes:
                self.quote_depth -= self.blockquotes.pop()

    def handle_data(self, data: str) -> None:
        if self.skip_depth:
            return
        if self.pre_depth:
            self._add(data)
        else:
            self._add(_SPACE.sub(" ", data))

    def _lines(self) -> list[tuple[str, int]]:
        """(line, quote depth) pairs; a line's depth is that of its first chunk of text."""
        out: list[tuple[str, int]] = []
        line: list[str] = []
        depth = None
        for chunk, d in zip(self.chunks, self.depths):
            pieces = chunk.split("\n")
            for i, piece in enumerate(pieces):
                if i:
                    out.append(("".join(line), depth or 0))
                    line, depth = [], None
                if piece:
                    line.append(piece)
                    if depth is None and piece.strip():
                        depth = d
        out.append(("".join(line), depth or 0))
        return out

    def text(self) -> str:
        # Whitespace collapsing leaves at most one stray space at a line start; two or
        # more come from <pre> and are kept.
        pairs = [(_trim(line.replace("\xa0", " ")), depth) for line, depth in self._lines()]
        if any(depth for _, depth in pairs):
            pairs = _quote_blank_lines(pairs)
        text = "\n".join((">" * depth + (" " + line if line else "")) if depth else line
                         for line, depth in pairs)
        return _MANY_BLANK.sub("\n\n", _QUOTE_BLANKS.sub(r"\1\n", text)).strip()


def _quote_blank_lines(pairs: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """A blank line inside a quote is part of it ("> a", ">", "> b"), at the shallower side's depth."""
    out = list(pairs)
    prev = 0
    for i, (line, depth) in enumerate(pairs):
        if line.strip():
            prev = depth
            continue
        nxt = next((d for ln, d in pairs[i + 1:] if ln.strip()), 0)
        out[i] = ("", min(prev, nxt))
    return out


_WEB_LINK = re.compile(r"^https?://\S+$", re.I)


def _bare(address: str) -> str:
    return re.sub(r"^(?:https?://)?(?:www\.)?", "", address.strip(), flags=re.I).rstrip("/").lower()


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
