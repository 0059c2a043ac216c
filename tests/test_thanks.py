"""parsers.thanks: a short thank-you and nothing else (issue 18, item 13); with parsers.status_request,
never raising on any text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers.quotes import split_reply
from parsers.status_request import is_status_request
from parsers.thanks import is_thank_you

THANKS = [
    "Thanks, it works!", "Thank you!", "Thanks a lot, everything works now.", "Great, thanks!",
    "Works now, thank you very much for the quick help.", "Perfect, thanks\nLi Wei", "Many thanks!",
    "Thanks, problem solved.", "Cheers, all good now", "Thank you so much, it's working again.", "OK thanks",
    "好了，谢谢！", "谢谢", "非常感谢！", "已经可以登录了，多谢", "问题解决了，谢谢你们", "可以了，谢谢您的帮助", "谢谢，没问题了",
]
NOT_THANKS = [
    "Thanks, but it still doesn't work", "Thanks. Can you also check the VPN?", "Thanks?",
    "Thanks, it works! One more thing: the printer is down.", "Thanks, the error is back",
    "Thank you. Our invoice module crashes when exporting PDFs.", "Thanks, I will try it tomorrow",
    "It works", "It still fails", "谢谢，但是还是不能登录", "谢谢，另外打印机也坏了", "谢谢，请问什么时候能修好？",
    "感谢，不过速度还是很慢", "好了", "", "Thanks! " * 40,
]


@pytest.mark.parametrize("text", THANKS)
def test_a_short_thank_you(text):
    assert is_thank_you(text)


@pytest.mark.parametrize("text", NOT_THANKS)
def test_anything_more_is_not_a_thank_you(text):
    assert not is_thank_you(text)


def test_the_quoted_closure_mail_under_the_thanks_is_not_read():
    reply = split_reply("Thanks, it works!\n\nOn Mon, Mar 2, 2026 Support wrote:\n> Your ticket is resolved.\n"
                        "> Did it help? Reply with a number from 1 to 5.\n").reply_text
    assert is_thank_you(reply)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300), st.text(max_size=80))
def test_the_text_readers_never_raise(text, subject):
    assert is_thank_you(text) in (True, False)
    assert is_status_request(subject, text) in (True, False)
