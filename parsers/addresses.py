"""Address headers, parsed strictly, and what counts as a usable address.

Owns `is_valid_address(addr)` (one pure function: is this a `local@domain` we may
ever write to?) and `getaddresses(values)`, the stdlib parser in its strict mode.

Python's `email.utils.getaddresses` is fooled by crafted headers (CVE-2023-27043):
`=?utf-8?q?Eve=0D=0ABcc:_victim@evil.example?= <eve@evil.example>` comes out as two
addresses, the first one taken from inside the encoded display name. CPython
fixed it with a strict mode (3.13, backported to some 3.11/3.12 builds as
`supports_strict_parsing`); where the runtime lacks it, the same checks are made
here: balanced parentheses, no unparsed domain literal, and exactly as many
addresses out as the header has comma-separated entries. A header that fails
yields nothing, never a guess.
"""

from __future__ import annotations

import email.utils
import re

_STRICT = getattr(email.utils, "supports_strict_parsing", False)

# RFC 5322 atext, plus any non-ASCII character but C1 controls (RFC 6531, internationalised local parts).
_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u00a0-\U0010ffff]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-"
                    r"\u00a0-\U0010ffff]+)*\Z")
_LABEL = re.compile(r"(?!-)[A-Za-z0-9\-\u00a0-\U0010ffff]{1,63}(?<!-)\Z")


def is_valid_address(addr: str) -> bool:
    """A dot-atom local part, '@', a fully qualified domain name; at most 254 characters.

    Stricter than RFC 5322 on purpose, as Postfix's reject_non_fqdn_sender is: no
    quoted local part, no domain literal, no dotless domain, no whitespace or
    control character anywhere. What fails this is never acknowledged or mailed."""
    if not addr or len(addr) > 254 or addr.count("@") != 1:
        return False
    local, domain = addr.split("@")
    if not local or len(local) > 64 or not _LOCAL.match(local):
        return False
    labels = domain.rstrip(".").split(".") if len(domain) <= 253 else []
    return len(labels) >= 2 and all(_LABEL.match(label) for label in labels) and not labels[-1].isdigit()


def getaddresses(values: list[str]) -> list[tuple[str, str]]:
    """(display name, address) pairs of one header's values; [] when the header is malformed."""
    values = [str(v) for v in values]
    if _STRICT:
        pairs = email.utils.getaddresses(values, strict=True)
    else:
        pairs = _strict_getaddresses(values)
    return [] if pairs == [("", "")] else pairs


def _strict_getaddresses(values: list[str]) -> list[tuple[str, str]]:
    """CPython's strict mode, for a runtime without it (same three checks)."""
    if not all(_balanced_parentheses(v) for v in values):
        return []
    pairs = email.utils.getaddresses(values)
    if any("[" in addr for _, addr in pairs):  # a domain literal the parser could not take apart
        return []
    expected = sum(1 + _without_quoted(v).count(",") for v in values)
    return pairs if len(pairs) == expected else []


def _escaped_chars(value: str):
    escape = False
    for ch in value:
        if escape:
            yield "\\" + ch
            escape = False
        elif ch == "\\":
            escape = True
        else:
            yield ch
    if escape:
        yield "\\"


def _without_quoted(value: str) -> str:
    """`value` without its quoted strings (a comma in "Smith, John" separates nothing)."""
    if '"' not in value:
        return value
    out, quoted = [], False
    for ch in _escaped_chars(value):
        if ch == '"':
            quoted = not quoted
        elif not quoted:
            out.append(ch)
    return "".join(out)


def _balanced_parentheses(value: str) -> bool:
    depth = 0
    for ch in _escaped_chars(_without_quoted(value)):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0
