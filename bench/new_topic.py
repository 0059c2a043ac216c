"""How often a new question inside an old thread is recognised (parsers.topics).

Two sets, each with its ground truth:
- generated: every reply of bench/corpus.py (the same matter: "Any update? It still
  happens." over the quoted request) is a negative; each also gets a new-question variant
  (another question of the kind customers ask, in the thread's language) and a changed
  subject variant, which are positives;
- real: the replies of the shared corpora (crisp-reply-parser, discourse-email-reply-trimmer,
  alfonsrv-mail-parser-reply, zapier-email-reply-parser, talon, github-email-reply-parser)
  whose new text asks a question and whose new text and quoted history both have substance:
  each reply against its own quoted history is a negative, the same reply against another
  mail's history a positive.
Prints, per set, accuracy, precision and recall, beside a baseline that calls every reply
with a question mark a new topic.

    python bench/new_topic.py [N] [--corpora DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.corpus import EN_SUBJECTS, ZH_SUBJECTS, generate  # noqa: E402
from parsers.message import parse_email  # noqa: E402
from parsers.quotes import split_reply  # noqa: E402
from parsers.topics import new_topic  # noqa: E402

NEW_EN = ["By the way, how do I export last month's invoices to CSV? Our accountant needs them by Friday.",
          "Another question: can we add two more licences for the new interns, and what would it cost?",
          "Unrelated, but is there a way to change the language of the mobile app to German?",
          "Also, could you tell me how to configure single sign-on with our Azure directory?",
          "One more thing: why does the printer driver installer ask for an administrator password?"]
NEW_ZH = ["另外想问一下，如何把上个月的发票导出成 Excel 表格？财务周五之前要用。",
          "还有一个问题：我们想给新来的实习生再开两个账号，费用是多少？",
          "顺便请问，手机客户端能不能切换成英文界面？",
          "另外，单点登录怎么和我们公司的域账号对接？"]
REAL = ("crisp-reply-parser", "discourse-email-reply-trimmer/emails", "alfonsrv-mail-parser-reply",
        "zapier-email-reply-parser", "talon", "github-email-reply-parser")


def baseline(subject, text, thread_subject, thread_text) -> str:
    return "question" if ("?" in text or "？" in text) else ""


def generated(n: int) -> list[tuple[tuple, bool]]:
    mails = [parse_email(raw) for raw in generate(n)]
    by_id = {m.message_id: m for m in mails}
    cases = []
    for i, m in enumerate(mails):
        parent = by_id.get(m.in_reply_to[0]) if m.in_reply_to else None
        if parent is None:
            continue
        thread = (parent.subject, parent.text)
        zh = parent.language == "zh-CN"
        cases.append(((m.subject, m.reply_text, *thread), False))
        other = (NEW_ZH if zh else NEW_EN)[i % len(NEW_ZH if zh else NEW_EN)]
        cases.append(((m.subject, other, *thread), True))
        subjects = ZH_SUBJECTS if zh else EN_SUBJECTS
        changed = next(s for s in subjects[i % len(subjects):] + subjects if s not in parent.subject)
        cases.append(((changed, m.reply_text, *thread), True))
    return cases


def real(root: Path) -> list[tuple[tuple, bool]]:
    pairs = []
    for sub in REAL:
        for path in sorted((root / sub).glob("*")):
            if not path.is_file() or path.stat().st_size > 200_000:
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            if text.startswith(("From ", "Return-Path", "Received", "Delivered-To", "MIME")) or "\nSubject:" in text[:2000]:
                text = parse_email(text.encode("utf-8", "replace")).text
            reply = split_reply(text)
            quoted = "\n".join(ln.lstrip("> ") for ln in reply.quoted.splitlines()) if reply.quoted else ""
            # a question: what a new topic is ("?" alone decides, so the set does not lean on our own test)
            if len(reply.reply_text) >= 40 and len(quoted) >= 80 and ("?" in reply.reply_text or "？" in reply.reply_text):
                pairs.append((reply.reply_text, quoted))
    cases = [(("", r, "", q), False) for r, q in pairs]
    k = max(1, len(pairs) // 2)
    cases += [(("", pairs[i][0], "", pairs[(i + k) % len(pairs)][1]), True) for i in range(len(pairs))
              if pairs[(i + k) % len(pairs)][1] != pairs[i][1]]
    return cases


def figures(cases, judge) -> str:
    tp = fp = tn = fn = 0
    for args, truth in cases:
        said = bool(judge(*args))
        tp += said and truth
        fp += said and not truth
        tn += not said and not truth
        fn += not said and truth
    n = len(cases) or 1
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return f"accuracy {(tp + tn) / n:6.1%}  precision {precision:6.1%}  recall {recall:6.1%}  ({len(cases)} cases)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", nargs="?", type=int, default=600, help="generated mails")
    ap.add_argument("--corpora", type=Path,
                    default=Path(os.environ.get("SUPPORTGW_CORPORA", ROOT.parent.parent / "shared" / "corpora")))
    args = ap.parse_args()
    sets = (("generated", generated(args.n)), ("real follow-ups", real(args.corpora)))
    for name, cases in sets:
        print(f"{name:16} supportgw  {figures(cases, new_topic)}")
        print(f"{'':16} '?'-only   {figures(cases, baseline)}")


if __name__ == "__main__":
    main()
