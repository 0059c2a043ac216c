"""Which template language a mail wants: "zh-CN" or "en".

A deliberately cheap heuristic, not language identification: Chinese when CJK ideographs
are a meaningful share of the letters (>= 5 %) or simply numerous (>= 10). Only these two
languages have templates, so Japanese kanji also count as Chinese.
"""

from __future__ import annotations

import re

SAMPLE_CHARS = 8000  # the opening of a mail says enough; keeps long mails cheap
MIN_CJK_CHARS = 10
MIN_CJK_SHARE = 0.05

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]")
_LETTER = re.compile(r"[^\W\d_]")


def detect_language(subject: str, text: str) -> str:
    sample = f"{subject}\n{text[:SAMPLE_CHARS]}"
    cjk = len(_CJK.findall(sample))
    if cjk >= MIN_CJK_CHARS:
        return "zh-CN"
    if cjk == 0:
        return "en"
    letters = len(_LETTER.findall(sample))
    return "zh-CN" if cjk >= MIN_CJK_SHARE * letters else "en"
