"""Could a faster, maintained mail parser serve as parse_email's base? (issue 26, item 5)

Every file of the shared corpora (SUPPORTGW_CORPORA, default /work/shared/corpora) is
parsed, in one process and in turns, by:

- our parse_email (parsers/message.py), which builds its MIME tree with mail-parser and
  walks it with its own charset, body and attachment rules;
- mail-parser's parse_from_bytes alone (the issue's reference rate);
- the MIME step parse_email takes from mail-parser (parsers.message._message), which is
  all a faster library could replace: the walk, our charset repairs, HTML to text, quote
  and signature splitting, loop detection and language stay ours;
- fast-mail-parser (Rust, PyPI `fast-mail-parser`), when it is importable (give its
  folder in FAST_MAIL_PARSER_PATH to try it without installing it into the project).

Correctness is agreement with parse_email, whose behaviour the corpus tests pin:
sender, subject, Message-ID, attachment count and the plain text, per message, plus how
many messages each library refuses (raises on).

    python bench/parsers.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
if os.environ.get("FAST_MAIL_PARSER_PATH"):
    sys.path.append(os.environ["FAST_MAIL_PARSER_PATH"])

import mailparser  # noqa: E402

from parsers.message import SYNTHETIC_DOMAIN, _message, parse_email  # noqa: E402

try:
    import fast_mail_parser
except ImportError:  # not a dependency of the project
    fast_mail_parser = None

CORPORA = Path(os.environ.get("SUPPORTGW_CORPORA", "/work/shared/corpora"))
_SPACE = re.compile(r"\s+")


def corpus() -> list[tuple[str, bytes]]:
    out = []
    for p in sorted(CORPORA.rglob("*")):
        if p.is_file() and p.name not in ("SOURCES.md", "README.md", "LICENSE"):
            out.append((str(p.relative_to(CORPORA)), p.read_bytes()))
    return out


def timed(fn, msgs: list[bytes]) -> tuple[float, int]:
    """(seconds for fn over every message, how many raised)"""
    errors = 0
    t = time.perf_counter()
    for raw in msgs:
        try:
            fn(raw)
        except Exception:
            errors += 1
    return time.perf_counter() - t, errors


def norm(s: str) -> str:
    return _SPACE.sub(" ", s or "").strip()


def ours_fields(p) -> dict:
    return {"sender": p.sender.email, "subject": norm(p.subject), "message_id": p.message_id,
            "attachments": len(p.attachments), "text": norm(p.text)}


def fmp_fields(m) -> dict:
    mid = next(iter(m.headers.get("Message-ID") or m.headers.get("Message-Id") or m.headers.get("message-id") or [""]))
    return {"sender": (m.from_.address.lower() if getattr(m, "from_", None) else ""), "subject": norm(m.subject),
            "message_id": mid.strip().strip("<>"), "attachments": len(m.attachments),
            "text": norm("\n".join(m.text_plain))}


def mp_fields(m) -> dict:
    frm = m.from_[0][1].lower() if m.from_ else ""
    return {"sender": frm, "subject": norm(m.subject), "message_id": (m.message_id or "").strip().strip("<>"),
            "attachments": len(m.attachments), "text": norm("\n".join(m.text_plain))}


def agreement(items: list[tuple[str, bytes]], parse, fields) -> tuple[dict[str, list[int]], int, int]:
    """({field: [messages agreeing with parse_email, messages compared]}, messages compared, refused)"""
    agree: dict[str, list[int]] = {}
    compared = refused = 0
    for _, raw in items:
        ours = ours_fields(parse_email(raw))
        try:
            theirs = fields(parse(raw))
        except Exception:
            refused += 1
            continue
        compared += 1
        for k, v in ours.items():
            # The text is compared only where both found a plain-text part: parse_email
            # converts HTML-only mail to text, the others leave it empty.
            if k == "text" and not theirs["text"]:
                continue
            if k == "message_id" and v.endswith("@" + SYNTHETIC_DOMAIN):
                continue  # none in the mail: parse_email makes one from the content hash
            cell = agree.setdefault(k, [0, 0])
            cell[0] += theirs[k] == v
            cell[1] += 1
    return agree, compared, refused


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    items = corpus()
    msgs = [raw for _, raw in items]
    print(f"corpus: {len(msgs)} files, {sum(map(len, msgs)) / 1e6:.1f} MB, from {CORPORA}")
    parsers = {"parse_email (ours)": parse_email, "mail-parser parse_from_bytes": mailparser.parse_from_bytes,
               "parse_email's MIME step (mail-parser)": lambda raw: _message(raw, [])}
    if fast_mail_parser is not None:
        parsers["fast-mail-parser parse_email"] = lambda raw: fast_mail_parser.parse_email(raw, mode="full")
    else:
        print("fast-mail-parser is not importable: set FAST_MAIL_PARSER_PATH or install it to compare it")
    times: dict[str, list[float]] = {k: [] for k in parsers}
    errors: dict[str, int] = {}
    for _ in range(args.rounds):
        for name, fn in parsers.items():
            secs, errors[name] = timed(fn, msgs)
            times[name].append(secs)
    base = statistics.median(times["mail-parser parse_from_bytes"])
    ours = statistics.median(times["parse_email (ours)"])
    print(f"\nrates, whole corpus, median of {args.rounds} rounds in turns (one process):")
    for name, ts in times.items():
        t = statistics.median(ts)
        print(f"  {name:<40} {len(msgs) / t:8.0f} msgs/s  {t * 1000 / len(msgs):6.3f} ms/msg  "
              f"{base / t:5.2f} x mail-parser  raised on {errors[name]}")
    mime = statistics.median(times["parse_email's MIME step (mail-parser)"])
    print(f"\nthe MIME step is {mime / ours:.0%} of parse_email's time: a free MIME parser would bring "
          f"parse_email to at most {base / (ours - mime):.2f} x mail-parser's rate")
    if fast_mail_parser is not None:
        fmp = statistics.median(times["fast-mail-parser parse_email"])
        print(f"fast-mail-parser in place of the MIME step (same work after it): about "
              f"{base / (ours - mime + fmp):.2f} x mail-parser's rate (now {base / ours:.2f})")

    print("\nagreement with parse_email, per field (agreeing / compared; text only where both found plain text, Message-ID only where the mail has one):")
    others = [("mail-parser", mailparser.parse_from_bytes, mp_fields)]
    if fast_mail_parser is not None:
        others.append(("fast-mail-parser", lambda raw: fast_mail_parser.parse_email(raw, mode="full"), fmp_fields))
    for name, parse, fields in others:
        agree, compared, refused = agreement(items, parse, fields)
        cells = ", ".join(f"{k} {ok}/{n}" for k, (ok, n) in agree.items())
        print(f"  {name:<17} refused {refused}; {cells}")


if __name__ == "__main__":
    main()
