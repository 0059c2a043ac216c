"""parse_score: a customer's answer to the closure survey, in the forms customers write it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers.survey import SurveyAnswer, parse_score

ANSWERS = {
    "bare_digit": ("5", 5, ""),
    "digit_dash_comment": ("5 - great", 5, "great"),
    "digit_space_comment": ("4 good enough", 4, "good enough"),
    "slash_five": ("4/5", 4, ""),
    "out_of_five": ("3 out of 5, slow answer", 3, "slow answer"),
    "stars": ("★★★★", 4, ""),
    "stars_with_empty_ones": ("★★★☆☆ ok", 3, "ok"),
    "emoji_stars": ("⭐⭐⭐⭐⭐", 5, ""),
    "asterisks": ("*****", 5, ""),
    "word": ("five", 5, ""),
    "word_capitalised": ("Two, it took a week", 2, "it took a week"),
    "score_label": ("Score: 3", 3, ""),
    "rating_label": ("Rating 4 - fine", 4, "fine"),
    "very_satisfied_zh": ("非常满意", 5, ""),
    "satisfied_zh": ("满意", 4, ""),
    "neutral_zh": ("一般", 3, ""),
    "unsatisfied_zh": ("不满意", 2, ""),
    "very_unsatisfied_zh": ("非常不满意", 1, ""),
    "very_satisfied_zh_with_comment": ("非常满意！响应很快", 5, "响应很快"),
    "points_zh": ("5分", 5, ""),
    "stars_zh": ("五星", 5, ""),
    "label_zh": ("评分：4", 4, ""),
    "full_width_digit": ("５", 5, ""),
    "full_width_digit_points": ("４分，还可以", 4, "还可以"),
    "html_bold": ("**4**", 4, ""),
    "html_nbsp": ("\u00a05\u00a0- thanks", 5, "thanks"),
    "greeting_first": ("Hi,\n\n4 - ok", 4, "ok"),
    "comment_on_following_lines": ("2\nIt took three days.\nPlease be faster.", 2, "It took three days.\nPlease be faster."),
}


@pytest.mark.parametrize("text, score, comment", ANSWERS.values(), ids=ANSWERS.keys())
def test_survey_answer_is_read(text, score, comment):
    assert parse_score(text) == SurveyAnswer(score, comment)


NOT_ANSWERS = {
    "ordinary_reply": "The VPN is down again, please reopen.",
    "number_in_a_sentence": "5 minutes after the fix it broke again",
    "word_number_in_a_sentence": "Two things are still broken after the update",
    "ten_point_scale": "8/10",
    "out_of_range": "7",
    "zero": "0",
    "other_scale_with_valid_digit": "4/10",
    "decimal": "4.5",
    "generally_speaking_zh": "一般来说这个问题会自动恢复",
    "count_zh": "3个问题还没解决",
    "empty_stars": "☆☆☆☆☆",
    "empty": "",
    "only_quote": "> Please reply with a number from 1 to 5",
    "score_only_in_quoted_history": (
        "Thanks for fixing this.\n\nOn Mon, 1 Jan 2024 at 10:00, Support <s@example.com> wrote:\n> 5\n"
    ),
}


@pytest.mark.parametrize("text", NOT_ANSWERS.values(), ids=NOT_ANSWERS.keys())
def test_reply_without_a_score_is_none(text):
    assert parse_score(text) is None


def test_score_above_quoted_survey_question_is_read_not_the_question():
    text = (
        "4 - fixed, but slow\n\n"
        "On Mon, 1 Jan 2024 at 10:00, Support <s@example.com> wrote:\n"
        "> How satisfied are you? Reply with 1 (bad) to 5 (great).\n"
    )
    assert parse_score(text) == SurveyAnswer(4, "fixed, but slow")


def test_score_above_outlook_history_in_chinese():
    text = (
        "满意\r\n\r\n发件人: 技术支持 <s@example.com>\r\n发送时间: 2025年3月1日 10:00\r\n"
        "收件人: 客户\r\n主题: 满意度调查\r\n\r\n请回复 1 到 5 的数字，5 为非常满意。\r\n"
    )
    assert parse_score(text) == SurveyAnswer(4, "")


def test_signature_is_not_part_of_the_comment():
    assert parse_score("5\n\nSent from my iPhone") == SurveyAnswer(5, "")


def test_html_derived_text_with_markup_leftovers():
    text = "\n\n  *5* - excellent support\n\n[cid:image001.png]\n"
    answer = parse_score(text)
    assert answer is not None and answer.score == 5
    assert answer.comment.startswith("excellent support")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_parse_score_never_raises_and_stays_in_range(text):
    answer = parse_score(text)
    assert answer is None or 1 <= answer.score <= 5
