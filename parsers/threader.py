"""Rebuild conversations from a history of mail, as a mail client would.

Owns one pure function, `conversations(items)`: message headers in, groups of
message keys out. No database, no clock, no network.

The rule is notmuch's (and, for which messages end up together, JWZ's):
every Message-ID named in References or In-Reply-To is a node, whether we have
that message or not (a *ghost* parent), and a message belongs with every node
it names. So two replies to a lost parent are one conversation; a message
that names ancestors from two conversations joins them; two messages sharing a
Message-ID are one node (a copy from the Sent folder and the one delivered,
or two different mails from a broken client: notmuch keeps the first file of
a duplicate id, we keep both, in the same conversation); a reference loop
(A names B, B names A) is only a cycle in an undirected graph and costs nothing.

Subjects join conversations only as a careful last resort, never in notmuch:
a message that names no Message-ID at all, whose subject has a reply prefix
("Re:", "AW:", "回复:"...), joins the most recent conversation with the same
base subject that it shares a correspondent with and whose last message is at
most `subject_window` older. Everything else stays apart: "Re: help" from a
different customer is a different problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

_REPLY_PREFIX = re.compile(r"^\s*((re|aw|sv|vs|antw|odp|ref|fw|fwd|wg|tr|回复|答复|回覆|转发)\s*(\[\d+\])?\s*[:：]\s*)+",
                           re.IGNORECASE)
_LIST_TAG = re.compile(r"^\s*\[[^\]]{1,40}\]\s*")


@dataclass(frozen=True)
class Item:
    """What the threader needs of one message."""

    key: object  # the caller's handle for the message
    message_id: str
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    subject: str = ""
    date: datetime | None = None
    # sender and recipients, lower-case, without the support team's own addresses (which are in
    # every conversation and so would join any two by subject)
    people: frozenset[str] = field(default_factory=frozenset)


@dataclass
class Conversation:
    keys: list  # in date order (undated last, in input order)
    by_subject: list = field(default_factory=list)  # keys that joined by subject only
    last: datetime | None = None


def base_subject(subject: str) -> tuple[str, bool]:
    """The subject without reply prefixes and list tags, and whether it had a reply prefix."""
    s, replied = subject or "", False
    while True:
        t = _LIST_TAG.sub("", s, count=1)
        m = _REPLY_PREFIX.match(t)
        if m:
            replied, s = True, t[m.end():]
        elif t != s:
            s = t
        else:
            break
    return " ".join(s.split()).casefold(), replied


class _Union:
    def __init__(self) -> None:
        self.parent: dict = {}

    def find(self, x):
        p = self.parent.setdefault(x, x)
        while p != x:
            grand = self.parent.setdefault(p, p)
            self.parent[x] = grand
            x, p = p, grand
        return x

    def join(self, a, b) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


def _order(item: Item, index: int) -> tuple:
    return (item.date is None, item.date.timestamp() if item.date else 0.0, index)


def conversations(items: list[Item], *, subject_window: timedelta = timedelta(days=30)) -> list[Conversation]:
    """Group messages into conversations; the list is in order of each conversation's first message."""
    u = _Union()
    for it in items:
        node = ("id", it.message_id)
        u.find(node)
        for ref in dict.fromkeys(it.references + it.in_reply_to):
            if ref:
                u.join(node, ("id", ref))

    ordered = sorted(range(len(items)), key=lambda i: _order(items[i], i))
    groups: dict = {}
    for i in ordered:
        groups.setdefault(u.find(("id", items[i].message_id)), []).append(i)

    # Subject last resort, in date order so that a reply only ever joins what came before it.
    convs: dict = {root: Conversation(keys=[]) for root in groups}
    joined_to: dict = {}
    recent: dict[str, list] = {}  # base subject -> conversation roots, oldest first
    people: dict = {root: set() for root in groups}
    for i in ordered:
        it = items[i]
        root = u.find(("id", it.message_id))
        base, replied = base_subject(it.subject)
        lonely = not it.in_reply_to and not it.references and len(groups[root]) == 1
        target = root
        if lonely and replied and base:
            for cand in reversed(recent.get(base, [])):
                c = convs[joined_to.get(cand, cand)]
                if (it.people & people[joined_to.get(cand, cand)] and c.last is not None and it.date is not None
                        and timedelta(0) <= it.date - c.last <= subject_window):
                    target = joined_to.get(cand, cand)
                    break
        conv = convs[target]
        conv.keys.append(it.key)
        if target != root:
            conv.by_subject.append(it.key)
            joined_to[root] = target
        people[target] |= it.people
        if it.date is not None and (conv.last is None or it.date > conv.last):
            conv.last = it.date
        if base and target == root and (not recent.get(base) or recent[base][-1] != root):
            recent.setdefault(base, []).append(root)
    return [c for c in convs.values() if c.keys]
