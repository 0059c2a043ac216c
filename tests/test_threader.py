"""The history threader (parsers/threader.py): conversations as notmuch would group them,
subjects only as a careful last resort."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from parsers.threader import Item, base_subject, conversations

D0 = datetime(2019, 3, 1, tzinfo=timezone.utc)
ALICE, BOB = frozenset({"alice@c.example"}), frozenset({"bob@d.example"})


def it(key, mid, refs=(), irt=(), subject="", day=0, people=ALICE):
    return Item(key=key, message_id=mid, references=tuple(refs), in_reply_to=tuple(irt), subject=subject,
                date=D0 + timedelta(days=day), people=people)


def groups(items, **kw):
    return sorted(sorted(c.keys) for c in conversations(items, **kw))


CASES = {
    "reply by In-Reply-To": ([it(1, "a"), it(2, "b", irt=["a"], day=1)], [[1, 2]]),
    "two replies to a lost (ghost) parent are one conversation":
        ([it(1, "b", refs=["ghost"]), it(2, "c", refs=["ghost"], day=1)], [[1, 2]]),
    "a deep reply whose middle is missing still joins its root":
        ([it(1, "a"), it(2, "d", refs=["a", "b", "c"], day=3)], [[1, 2]]),
    "a message naming two conversations joins them":
        ([it(1, "a"), it(2, "x", day=1), it(3, "m", refs=["a", "x"], day=2)], [[1, 2, 3]]),
    "a duplicate Message-ID is one node: both copies together":
        ([it(1, "a"), it(2, "a", day=1), it(3, "r", irt=["a"], day=2)], [[1, 2, 3]]),
    "a reference loop is harmless":
        ([it(1, "a", refs=["b"]), it(2, "b", refs=["a"], day=1)], [[1, 2]]),
    "a message naming itself stays alone": ([it(1, "a", refs=["a"]), it(2, "z", day=1)], [[1], [2]]),
    "unrelated messages stay apart": ([it(1, "a", subject="help"), it(2, "b", subject="help", day=1)], [[1], [2]]),
    "Re: without references joins by subject from the same correspondent":
        ([it(1, "a", subject="VPN drops"), it(2, "b", subject="Re: VPN drops", day=2)], [[1, 2]]),
    "Re: from someone else with the same subject does not":
        ([it(1, "a", subject="VPN drops"), it(2, "b", subject="Re: VPN drops", day=2, people=BOB)], [[1], [2]]),
    "Re: long after the conversation went quiet does not":
        ([it(1, "a", subject="VPN drops"), it(2, "b", subject="RE: VPN drops", day=90)], [[1], [2]]),
    "a subject never joins a message that has references":
        ([it(1, "a", subject="VPN"), it(2, "b", refs=["elsewhere"], subject="Re: VPN", day=1)], [[1], [2]]),
    "a reply never joins a later message by subject":
        ([it(1, "a", subject="Re: VPN", day=0), it(2, "b", subject="VPN", day=1)], [[1], [2]]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_threader_table(name):
    items, expected = CASES[name]
    assert groups(items) == expected


def test_subject_joins_are_reported_and_conversations_come_in_date_order():
    convs = conversations([it(3, "c", day=5, subject="later"), it(1, "a", subject="VPN drops"),
                           it(2, "b", subject="AW: [Support] Re: VPN drops", day=1)])
    assert [c.keys for c in convs] == [[1, 2], [3]]
    assert convs[0].by_subject == [2] and convs[0].last == D0 + timedelta(days=1)


def test_base_subject_strips_prefixes_and_list_tags_in_any_language():
    assert base_subject("Re: AW: [ext] 回复：VPN  drops") == ("vpn drops", True)
    assert base_subject("VPN drops") == ("vpn drops", False)
