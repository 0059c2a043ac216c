"""Forwarded header blocks as mail clients write them, in English and Chinese: who wrote the
original, when, about what, and what they said (parsers.forwards)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from parsers.forwards import find_forwarded, parse_date
from tests.conftest import corpus

BODY = "服务器从昨晚开始无法连接。\nThe server has been unreachable since last night."
CST = timezone(timedelta(hours=8))

BLOCKS = {
    "gmail_en": ("---------- Forwarded message ---------\nFrom: 王芳 <wang.fang@customer.example>\n"
                 "Date: Mon, Mar 2, 2026 at 9:05 AM\nSubject: 服务器无法连接\nTo: Bob <bob@support.example.com>\n"),
    "gmail_zh": ("---------- 转发的邮件 ---------\n发件人： 王芳 <wang.fang@customer.example>\n"
                 "日期：2026年3月2日周一 上午9:05\n主题：服务器无法连接\n收件人：Bob <bob@support.example.com>\n"),
    "outlook_en": ("________________________________\nFrom: 王芳 <wang.fang@customer.example>\n"
                   "Sent: Monday, March 2, 2026 9:05 AM\nTo: Bob <bob@support.example.com>\nSubject: 服务器无法连接\n"),
    "outlook_zh": ("________________________________\n发件人: 王芳 <wang.fang@customer.example>\n"
                   "发送时间: 2026年3月2日 9:05\n收件人: Bob <bob@support.example.com>\n主题: 服务器无法连接\n"),
    "outlook_old": ("-----Original Message-----\nFrom: 王芳 [mailto:wang.fang@customer.example]\n"
                    "Sent: Monday, March 2, 2026 9:05 AM\nTo: Bob\nSubject: 服务器无法连接\n"),
    "apple_en": ("Begin forwarded message:\n\nFrom: 王芳 <wang.fang@customer.example>\nSubject: 服务器无法连接\n"
                 "Date: 2 March 2026 at 09:05:00 GMT+8\nTo: Bob <bob@support.example.com>\n"),
    "apple_zh": ("以下是转发的邮件：\n\n发件人: 王芳 <wang.fang@customer.example>\n主题: 服务器无法连接\n"
                 "日期: 2026年3月2日 GMT+8 上午9:05:00\n收件人: Bob <bob@support.example.com>\n"),
    "thunderbird_en": ("-------- Forwarded Message --------\nSubject: \t服务器无法连接\nDate: \tMon, 2 Mar 2026 09:05:00 +0800\n"
                       "From: \t王芳 <wang.fang@customer.example>\nTo: \tbob@support.example.com\n"),
    "thunderbird_zh": ("-------- 转发的消息 --------\n主题：\t服务器无法连接\n日期：\tMon, 2 Mar 2026 09:05:00 +0800\n"
                       "发件人：\t王芳 <wang.fang@customer.example>\n收件人：\tbob@support.example.com\n"),
    "foxmail_zh": ("------------------ 原始邮件 ------------------\n发件人: \"王芳\"<wang.fang@customer.example>;\n"
                   "发送时间: 2026年3月2日(星期一) 上午9:05\n收件人: \"Bob\"<bob@support.example.com>;\n"
                   "主题: 服务器无法连接\n"),
    "qq_en": ("------------------ Original ------------------\nFrom: \"王芳\"<wang.fang@customer.example>;\n"
              "Date: Mon, Mar 2, 2026 09:05 AM\nTo: \"Bob\"<bob@support.example.com>;\nSubject: 服务器无法连接\n"),
    "netease_zh": ("-------- 转发邮件信息 --------\n发件人：\"王芳\" <wang.fang@customer.example>\n"
                   "发送日期：2026-03-02 09:05:00\n收件人：bob@support.example.com\n主题：服务器无法连接\n"),
    "netease_en": ("-------- Forwarding messages --------\nFrom: \"王芳\" <wang.fang@customer.example>\n"
                   "Date: 2026-03-02 09:05:00\nTo: bob@support.example.com\nSubject: 服务器无法连接\n"),
}


@pytest.mark.parametrize("client", sorted(BLOCKS))
def test_forwarded_block_gives_the_original_sender_subject_date_and_text(client):
    text = "Customer called about this too, please handle.\n\n" + BLOCKS[client] + "\n" + BODY + "\n"
    f = find_forwarded(text, assume=CST)  # the forwarder's clock: zone-less dates are theirs
    assert f is not None
    assert (f.sender.name, f.sender.email) == ("王芳", "wang.fang@customer.example")
    assert f.subject == "服务器无法连接"
    assert f.text == BODY
    assert f.intro == "Customer called about this too, please handle."
    assert f.date == datetime(2026, 3, 2, 9, 5, tzinfo=CST), client


def test_a_quoted_apple_mail_forward_and_a_chinese_reply_attribution():
    quoted = "> Begin forwarded message:\n>\n> From: Li <li@customer.example>\n> Subject: VPN\n> Date: x\n>\n> VPN down\n"
    f = find_forwarded(quoted)
    assert (f.sender.email, f.subject, f.text) == ("li@customer.example", "VPN", "VPN down")
    f = find_forwarded("在 2026年3月2日 09:05，王芳 <wang.fang@customer.example> 写道：\n> 服务器无法连接\n")
    assert (f.sender.name, f.sender.email, f.text) == ("王芳", "wang.fang@customer.example", "服务器无法连接")


def test_a_from_line_in_prose_is_not_a_forward():
    assert find_forwarded("From: the logs I see nothing.\nThanks") is None
    assert find_forwarded("Hello,\nplease reset my password.") is None


def test_dates_as_clients_write_them():
    assert parse_date("Mon, 2 Mar 2026 09:05:00 +0800") == datetime(2026, 3, 2, 9, 5, tzinfo=CST)
    assert parse_date("2026年3月2日(星期一) 下午3:05", CST) == datetime(2026, 3, 2, 15, 5, tzinfo=CST)
    assert parse_date("Wed, Oct 27, 2021 at 9:31 AM") == datetime(2021, 10, 27, 9, 31, tzinfo=timezone.utc)
    assert parse_date("yesterday-ish") is None


def test_crisp_forward_corpus_is_read_almost_entirely():
    """bench/forwards.py's figure, held: sender, name, subject and text all right on 95 % or more."""
    from bench.forwards import ours, score

    files = sorted(corpus("crisp-forward-parser").glob("*_body*.txt"))
    assert len(files) > 150
    right, whole, misses = score(files, ours)
    assert right["address"] == len(files), misses
    assert whole / len(files) >= 0.95, misses
