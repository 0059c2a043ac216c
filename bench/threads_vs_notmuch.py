"""Conversations rebuilt by `supportgw import` (parsers/threader.py) beside notmuch's threads.

notmuch (Debian package `notmuch`) indexes each corpus into a database of its own (the
corpus itself is not written to); its threads, as sets of files, are compared with ours,
built from the same files by the importer's own header scan (parsers.message.parse_head)
and threader. Printed per corpus: how many of our conversations are exactly one notmuch
thread, and every difference with its reason:

- `subject`: we joined a reference-less "Re:" by subject to the same customer's
  conversation, which notmuch never does (our deliberate last resort);
- anything else is printed with the files involved, to be explained.

Corpora: notmuch's own `lkml` and `default` (../shared/corpora/notmuch-corpora), and a
generated support history with broken references (bench/history_corpus.py), whose ground
truth is printed too.

    python bench/threads_vs_notmuch.py [N_GENERATED]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import history_corpus  # noqa: E402
from parsers.message import parse_head  # noqa: E402
from parsers.threader import Item, conversations  # noqa: E402

CORPORA = Path(os.environ.get("SUPPORTGW_CORPORA", Path(__file__).resolve().parents[3] / "shared" / "corpora"))
OURS = ("support@support.example.test",) + tuple(history_corpus.ENGINEERS)


def files_of(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")
                  and ".notmuch" not in p.parts and "tmp" not in p.relative_to(root).parts[:-1])


def notmuch_threads(root: Path, work: Path) -> list[frozenset[str]]:
    cfg = work / "notmuch-config"
    cfg.write_text(f"[database]\nmail_root={root}\npath={work / 'db'}\n[new]\ntags=inbox\nignore=.notmuch\n"
                   "[maildir]\nsynchronize_flags=false\n")
    (work / "db").mkdir()
    env = dict(os.environ, NOTMUCH_CONFIG=str(cfg))
    subprocess.run(["notmuch", "new", "--quiet"], env=env, check=True, capture_output=True)
    out = subprocess.run(["notmuch", "show", "--format=json", "--body=false", "--entire-thread=true", "*"],
                         env=env, check=True, capture_output=True).stdout
    threads = []

    def walk(node, acc):
        msg, replies = node
        if msg:
            acc.update(str(Path(f).relative_to(root)) for f in msg["filename"])
        for r in replies:
            walk(r, acc)

    for thread in json.loads(out):
        acc: set[str] = set()
        for node in thread:
            walk(node, acc)
        threads.append(frozenset(acc))
    return threads


def our_conversations(root: Path) -> tuple[list[frozenset[str]], set[str]]:
    items = []
    for p in files_of(root):
        h = parse_head(p.read_bytes())
        people = frozenset(a.email for a in (h.sender,) + h.to + h.cc if a.email and a.email not in OURS)
        items.append(Item(key=str(p.relative_to(root)), message_id=h.message_id, in_reply_to=h.in_reply_to,
                          references=h.references, subject=h.subject, date=h.date, people=people))
    convs = conversations(items)
    return [frozenset(c.keys) for c in convs], {k for c in convs for k in c.by_subject}


def compare(name: str, root: Path, truth: dict[str, int] | None = None) -> None:
    with tempfile.TemporaryDirectory() as work:
        theirs = notmuch_threads(root, Path(work))
    ours, by_subject = our_conversations(root)
    their_set = set(theirs)
    exact = [c for c in ours if c in their_set]
    print(f"\n== {name}: {sum(len(c) for c in ours)} files; ours {len(ours)} conversations, "
          f"notmuch {len(theirs)} threads; exactly equal: {len(exact)} of {len(ours)}")
    where = {f: t for t in theirs for f in t}
    reasons: dict[str, list[str]] = {}
    for c in ours:
        if c in their_set:
            continue
        split = {where.get(f, frozenset({f})) for f in c}
        joined = sorted(f for f in c if f in by_subject)
        if joined and all(t <= c for t in split):
            why = "subject: a reference-less Re: joined by subject (notmuch never does)"
        elif all(t <= c for t in split):
            why = "unexplained: ours joins notmuch threads by references"
        else:
            why = "unexplained: notmuch joins what we keep apart"
        reasons.setdefault(why, []).append(f"{len(split)} notmuch threads = ours {sorted(c)[:3]}"
                                           f"{'…' if len(c) > 3 else ''}")
    for why, cases in reasons.items():
        print(f"  {len(cases):4d} differ, {why}")
        for case in cases[:3]:
            print(f"         e.g. {case}")
    if truth is not None:
        right = sum(1 for c in ours if len({truth[f] for f in c}) == 1
                    and len(c) == sum(1 for v in truth.values() if v == truth[next(iter(c))]))
        n_right = sum(1 for t in theirs if len({truth[f] for f in t}) == 1
                      and len(t) == sum(1 for v in truth.values() if v == truth[next(iter(t))]))
        print(f"  against the generated ground truth ({len(set(truth.values()))} conversations): "
              f"ours {right} right, notmuch {n_right} right")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    base = CORPORA / "notmuch-corpora"
    for name in ("lkml", "default", "threading", "duplicate", "broken"):
        compare(name, base / name)
    with tempfile.TemporaryDirectory() as d:
        root = Path(d) / "history"
        truth = {}
        for i, (conv, _where, _mid, raw, deleted) in enumerate(history_corpus.conversations(n)):
            if deleted:
                continue
            f = root / "cur" / f"{i:06d}.eml"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(raw)
            truth[str(f.relative_to(root))] = conv
        compare(f"generated history ({n} conversations, broken references)", root, truth)


if __name__ == "__main__":
    main()
