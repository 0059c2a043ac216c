"""parsers.feed parses exactly as the stdlib does (email.message_from_bytes, compat32).

The import's parse (parsers.message.parse_history) builds its Message with parsers.feed, the
stdlib's feed parser with a boundary matcher that needs no regular-expression compile per part.
These tests hold the two to the same tree: every part's headers, type, payload, preamble,
epilogue and defects, on the shared corpora and on boundaries that need escaping.
"""

from __future__ import annotations

import email

import pytest

from parsers import feed
from tests.conftest import corpus


def _tree(msg) -> list:
    return [(p.get_content_type(), list(p.raw_items()), p.preamble, p.epilogue,
             [type(d).__name__ for d in p.defects], None if p.is_multipart() else p.get_payload())
            for p in msg.walk()]


def test_the_feed_parse_builds_the_stdlib_tree_on_the_corpora():
    compared, differ = 0, []
    for p in sorted(x for x in corpus().rglob("*") if x.is_file() and ".git" not in x.parts
                    and x.stat().st_size < 2_000_000):
        raw = p.read_bytes()
        try:
            want = _tree(email.message_from_bytes(raw))
        except RecursionError:
            continue
        compared += 1
        if _tree(feed.message_from_bytes(raw)) != want:
            differ.append(str(p))
    assert compared > 1000, f"only {compared} corpus files found"
    assert not differ, "\n".join(differ[:20])


@pytest.mark.parametrize("boundary", ["simple", "a.b+c*d?e(f)[g]{h}|i^j$k\\\\l", "==_Part_1 ' x", "-", "wé"])
@pytest.mark.parametrize("nl", ["\n", "\r\n", "\r"])
def test_boundaries_that_a_pattern_would_read_as_syntax_match_as_literals(boundary, nl):
    b = boundary.replace("\\\\", "\\")
    raw = nl.join([f'Content-Type: multipart/mixed; boundary="{b}"', "", "preamble", f"--{b}",
                   "Content-Type: text/plain", "", "one", f"--{b}x", f"--{b}  ", "", "two",
                   f"--{b}--\t", "epilogue", ""]).encode("utf-8")
    assert _tree(feed.message_from_bytes(raw)) == _tree(email.message_from_bytes(raw))
