"""One small test per kind of condition, and the all/any/not combinators.

Each test is a tiny object with `test(facts) -> bool` (the fast path the
engine uses) and `why(facts) -> (bool, reason)` (the slow path that says in
words what matched or what was missing, for the ticket history and
`rules explain`). `build()` turns a validated `config.Condition` into a tree
of these; regexes and keyword keys are prepared there, once, at load time.
"""

from __future__ import annotations

import fnmatch
import re
import unicodedata
from typing import Protocol

from routing import config
from routing.facts import EmailFacts
from routing.text import KeywordIndex, required_literal


class Test(Protocol):
    def test(self, f: EmailFacts) -> bool: ...
    def why(self, f: EmailFacts) -> tuple[bool, str]: ...
    def needs(self) -> frozenset[str] | None: ...


class _Base:
    def needs(self) -> frozenset[str] | None:
        """Keys (see KeywordIndex) of which an email must contain one for this test to hold;
        None when the test does not depend on the text. Lets the engine skip most rules
        with one set operation."""
        return None


def _show(values) -> str:
    return ", ".join(repr(v) for v in values)


class Sender(_Base):
    def __init__(self, addresses):
        self.addresses = frozenset(a.lower() for a in addresses)

    def test(self, f):
        return f.sender in self.addresses

    def why(self, f):
        ok = self.test(f)
        return ok, f"sender {f.sender or '(none)'} {'is' if ok else 'is not'} one of {_show(sorted(self.addresses))}"


class Domain(_Base):
    def __init__(self, domains):
        self.domains = frozenset(d.lower().lstrip("@") for d in domains)

    def test(self, f):
        return not self.domains.isdisjoint(f.sender_domains)

    def why(self, f):
        ok = self.test(f)
        dom = f.sender_domains[0] if f.sender_domains else "(none)"
        return ok, f"sender domain {dom} {'is' if ok else 'is not'} in {_show(sorted(self.domains))}"


class Organisation(_Base):
    def __init__(self, orgs):
        self.orgs = frozenset(orgs)

    def test(self, f):
        return f.organisation in self.orgs

    def why(self, f):
        ok = self.test(f)
        return ok, f"organisation {f.organisation or '(unknown)'} {'is' if ok else 'is not'} {_show(sorted(self.orgs))}"


class KnownCustomer(_Base):
    def __init__(self, wanted: bool):
        self.wanted = wanted

    def test(self, f):
        return bool(f.organisation) == self.wanted

    def why(self, f):
        who = f"customer {f.organisation}" if f.organisation else "not in the customer directory"
        return self.test(f), f"sender is {who}"


class CustomerTier(_Base):
    def __init__(self, tiers):
        self.tiers = frozenset(tiers)

    def test(self, f):
        return f.customer_tier in self.tiers

    def why(self, f):
        ok = self.test(f)
        return ok, f"customer tier {f.customer_tier} {'is' if ok else 'is not'} {_show(sorted(self.tiers))}"


class Recipient(_Base):
    """'security@example.com' matches that address; 'security@' any domain's security@."""

    def __init__(self, values):
        values = [v.lower() for v in values]
        self.addresses = frozenset(v for v in values if not v.endswith("@"))
        self.locals = frozenset(v[:-1] for v in values if v.endswith("@"))

    def test(self, f):
        return (not self.addresses.isdisjoint(f.recipients)
                or not self.locals.isdisjoint(f.recipient_locals))

    def why(self, f):
        ok = self.test(f)
        wanted = sorted(self.addresses) + sorted(v + "@" for v in self.locals)
        return ok, (f"recipients {_show(sorted(f.recipients)) or '(none)'} "
                    f"{'include' if ok else 'do not include'} {_show(wanted)}")


_WHERE = {"subject": "subject", "body": "body", "text": "subject or body"}


class Keywords(_Base):
    def __init__(self, where: str, keywords, index: KeywordIndex):
        self.where = where
        self.keys = frozenset(index.add(k) for k in keywords)

    def test(self, f):
        return not self.keys.isdisjoint(f.hits(self.where))

    def needs(self):
        return self.keys

    def why(self, f):
        found = sorted(self.keys & f.hits(self.where))
        if found:
            return True, f"{_WHERE[self.where]} has {_show(found)}"
        return False, f"{_WHERE[self.where]} has none of {_show(sorted(self.keys))}"


class Regex(_Base):
    def __init__(self, where: str, patterns, intern: dict, index: KeywordIndex):
        self.where = where
        # Case-insensitive, on NFKC text (so the pattern is NFKC'd too); identical patterns
        # in several rules share one compiled object.
        self.patterns = tuple(
            intern.setdefault(p, re.compile(unicodedata.normalize("NFKC", p), re.IGNORECASE))
            for p in patterns)
        literals = [required_literal(p.pattern) for p in self.patterns]
        self._needs = None if None in literals else frozenset(index.add_literal(x) for x in literals)

    def needs(self):
        return self._needs

    def _text(self, f):
        return f.subject.raw if self.where == "subject" else f.body.raw

    def test(self, f):
        if self._needs is not None and self._needs.isdisjoint(f.hits("text")):
            return False  # none of the patterns' required literals is there: no search needed
        text = self._text(f)
        return any(p.search(text) for p in self.patterns)

    def why(self, f):
        text = self._text(f)
        for p in self.patterns:
            m = p.search(text)
            if m:
                return True, f"{self.where} matches /{p.pattern}/ at {m.group(0)!r}"
        return False, f"{self.where} matches none of {', '.join('/' + p.pattern + '/' for p in self.patterns)}"


class Header(_Base):
    def __init__(self, spec: config.HeaderCondition):
        self.name = spec.name.lower()
        self.value = spec.value.strip().casefold() if spec.value is not None else None
        self.regex = re.compile(spec.regex, re.IGNORECASE) if spec.regex is not None else None

    def _ok(self, v: str) -> bool:
        if self.value is not None and v.strip().casefold() != self.value:
            return False
        return self.regex is None or bool(self.regex.search(v))

    def test(self, f):
        return any(self._ok(v) for v in f.header_values(self.name))

    def why(self, f):
        values = f.header_values(self.name)
        ok = any(self._ok(v) for v in values)
        want = (f" = {self.value!r}" if self.value is not None else "") + (
            f" ~ /{self.regex.pattern}/" if self.regex is not None else "")
        if not values:
            return False, f"no {self.name} header"
        return ok, f"header {self.name}: {values[0]!r} {'matches' if ok else 'does not match'}{want or ' (present)'}"


class HasAttachment(_Base):
    def __init__(self, wanted: bool):
        self.wanted = wanted

    def test(self, f):
        return bool(f.attachment_names) == self.wanted

    def why(self, f):
        n = len(f.attachment_names)
        return self.test(f), f"{n} attachment(s); wanted {'some' if self.wanted else 'none'}"


class AttachmentName(_Base):
    def __init__(self, globs):
        self.globs = tuple(globs)
        self.regex = re.compile("|".join(fnmatch.translate(g) for g in globs), re.IGNORECASE)

    def test(self, f):
        return any(self.regex.match(n) for n in f.attachment_names)

    def why(self, f):
        hit = [n for n in f.attachment_names if self.regex.match(n)]
        if hit:
            return True, f"attachment {hit[0]!r} matches {_show(self.globs)}"
        return False, f"no attachment matches {_show(self.globs)}"


class Language(_Base):
    """'zh' matches 'zh-CN'; 'zh-CN' matches only 'zh-CN'."""

    def __init__(self, langs):
        self.langs = tuple(l.lower() for l in langs)

    def test(self, f):
        lang = f.language
        return any(lang == l or lang.startswith(l + "-") for l in self.langs)

    def why(self, f):
        ok = self.test(f)
        return ok, f"language {f.language or '(unknown)'} {'is' if ok else 'is not'} {_show(self.langs)}"


class AllOf(_Base):
    def __init__(self, children):
        self.children = tuple(children)

    def test(self, f):
        return all(c.test(f) for c in self.children)

    def needs(self):
        known = [n for n in (c.needs() for c in self.children) if n is not None]
        return min(known, key=len) if known else None

    def why(self, f):
        reasons = []
        for c in self.children:
            ok, reason = c.why(f)
            if not ok:
                return False, reason
            reasons.append(reason)
        return True, " and ".join(reasons)


class AnyOf(_Base):
    def __init__(self, children):
        self.children = tuple(children)

    def test(self, f):
        return any(c.test(f) for c in self.children)

    def needs(self):
        parts = [c.needs() for c in self.children]
        return None if None in parts else frozenset().union(*parts)

    def why(self, f):
        reasons = []
        for c in self.children:
            ok, reason = c.why(f)
            if ok:
                return True, reason
            reasons.append(reason)
        return False, "none of: " + "; ".join(reasons)


class Not(_Base):
    def __init__(self, child):
        self.child = child

    def test(self, f):
        return not self.child.test(f)

    def why(self, f):
        ok, reason = self.child.why(f)
        return not ok, f"not ({reason})"


def build(spec: config.Condition, index: KeywordIndex, intern: dict) -> Test:
    """A test tree for one `when` table; several keys in a table must all hold."""
    tests: list[Test] = []
    s = spec
    if s.all is not None:
        tests.append(AllOf(build(c, index, intern) for c in s.all))
    if s.any is not None:
        tests.append(AnyOf(build(c, index, intern) for c in s.any))
    if s.not_ is not None:
        tests.append(Not(build(s.not_, index, intern)))
    if s.sender is not None:
        tests.append(Sender(s.sender))
    if s.domain is not None:
        tests.append(Domain(s.domain))
    if s.organisation is not None:
        tests.append(Organisation(s.organisation))
    if s.known_customer is not None:
        tests.append(KnownCustomer(s.known_customer))
    if s.customer_tier is not None:
        tests.append(CustomerTier(s.customer_tier))
    if s.recipient is not None:
        tests.append(Recipient(s.recipient))
    for where, words in (("subject", s.subject_keywords), ("body", s.body_keywords), ("text", s.keywords)):
        if words is not None:
            tests.append(Keywords(where, words, index))
    for where, patterns in (("subject", s.subject_regex), ("body", s.body_regex)):
        if patterns is not None:
            tests.append(Regex(where, patterns, intern, index))
    if s.header is not None:
        tests.append(Header(s.header))
    if s.has_attachment is not None:
        tests.append(HasAttachment(s.has_attachment))
    if s.attachment_name is not None:
        tests.append(AttachmentName(s.attachment_name))
    if s.language is not None:
        tests.append(Language(s.language))
    return tests[0] if len(tests) == 1 else AllOf(tests)
