"""How well forwarded header blocks are read: parsers.forwards on crisp-forward-parser.

Every fixture of ../shared/corpora/crisp-forward-parser (Apple Mail, Gmail, Outlook 2013/
2019/new/live, Thunderbird, Yahoo, HubSpot, IONOS, MailMate, Missive; about 25 languages)
forwards or quotes the same message from John Doe, so the ground truth is known: the
original's sender address (when the block carries one) and name, its subject (when the
block carries one) and the first line of what John Doe wrote. Prints the share of fixtures
with each field right and with all of them right, beside mail-parser-reply (the library
this project already uses to trim replies) reading the same files.

    python bench/forwards.py [--corpus DIR] [--misses]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mailparser_reply import EmailReplyParser  # noqa: E402

from parsers.forwards import find_forwarded  # noqa: E402

FIELDS = ("address", "name", "subject", "text")
SUBJECT = "Integer consequat non purus"


def truth(text: str) -> dict:
    if "john.doe@acme.com" in text:
        address = "john.doe@acme.com"
    else:
        found = re.search(r"<([^<>@\s]+@[^<>\s]+)>", text)
        address = found.group(1).lower() if found else ""
    name = next((n for n in ("John Doe", "John, Doe", "Eliott Vincent") if n in text), "")
    first = "Aenean quis diam urna." if "Aenean quis diam urna." in text else "Unicum iter ad supremum."
    return {"address": address, "name": name, "subject": SUBJECT if SUBJECT in text else "", "text": first}


def ours(text: str) -> dict:
    f = find_forwarded(text)
    if f is None:
        return {}
    return {"address": f.sender.email, "name": f.sender.name, "subject": f.subject,
            "text": f.text.lstrip(" >").split("\n", 1)[0].strip()}


_REPLY = EmailReplyParser(languages=["en", "de", "fr", "es", "it", "nl", "pl", "sv", "da", "ja"])


def baseline(text: str) -> dict:
    """mail-parser-reply: the first reply that has headers; sender, name and subject read off them."""
    try:
        replies = _REPLY.read(text).replies
    except Exception:
        return {}
    for reply in replies:
        headers = reply.headers or ""
        if "@" not in headers and ":" not in headers:
            continue
        addr = re.search(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", headers)
        name = re.search(r"(?:^|[:：]\s*|,\s*)\"?([A-Z][\w.' -]{1,60}?)\"?\s*<", headers)
        subject = re.search(r"^\W*\w[\w ()]*?\s*[:：]\s*(" + re.escape(SUBJECT) + r")\s*$", headers, re.M)
        body = (reply.body or "").lstrip(" >").split("\n", 1)[0].strip()
        return {"address": addr.group(0).lower() if addr else "", "name": name.group(1).strip() if name else "",
                "subject": subject.group(1) if subject else "", "text": body}
    return {}


def score(files: list[Path], extract) -> tuple[dict, int, list[str]]:
    right = dict.fromkeys(FIELDS, 0)
    whole, misses = 0, []
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        want, got = truth(text), extract(text)
        ok = {k: got.get(k, "") == want[k] if k != "text" else got.get("text", "").startswith(want[k][:20])
              for k in FIELDS}
        for k in FIELDS:
            right[k] += ok[k]
        whole += all(ok.values())
        if not all(ok.values()):
            misses.append(f"{path.name}: " + ", ".join(f"{k}={got.get(k, '')!r} (want {want[k]!r})"
                                                       for k in FIELDS if not ok[k]))
    return right, whole, misses


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(os.environ.get("SUPPORTGW_CORPORA", ROOT.parent.parent / "shared" / "corpora"))
    ap.add_argument("--corpus", type=Path, default=default / "crisp-forward-parser")
    ap.add_argument("--misses", action="store_true", help="list what was read wrong")
    args = ap.parse_args()
    files = sorted(args.corpus.glob("*_body*.txt"))
    if not files:
        sys.exit(f"bench/forwards.py: no *_body*.txt fixtures in {args.corpus}")
    n = len(files)
    print(f"forwarded header blocks: {n} fixtures from {args.corpus.name}")
    print(f"{'':24}{'address':>9}{'name':>9}{'subject':>9}{'text':>9}{'all':>9}")
    for label, extract in (("supportgw", ours), ("mail-parser-reply", baseline)):
        right, whole, misses = score(files, extract)
        print(f"{label:24}" + "".join(f"{right[k] / n:9.1%}" for k in FIELDS) + f"{whole / n:9.1%}")
        if args.misses and label == "supportgw":
            for line in misses:
                print("   ", line)


if __name__ == "__main__":
    main()
