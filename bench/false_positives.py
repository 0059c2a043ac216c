"""False positives are the worse failure: how much real customer mail does the suspended
area take, and how much robot and spam mail is still answered? (Not a timed test.)

Every set goes through the whole pipeline (spool, parse, suspend hook, handlers) into
its own fresh SQLite database, with the default settings unless `--rspamd` is given:

  person-written mail (target: 0 suspended)
    generated        bench/corpus.py's customer mail (English and Chinese, replies)
    peers            ../shared/peers/make_corpus.py (GB2312/GBK, attachments, replies)
    corpora-messages whole messages people wrote: mail-client replies, helpdesk fixtures,
                     LKML and notmuch list mail, a person forwarding a bounce
    corpora-bodies   reply, forward and Chinese bodies from the reply/forward parser
                     corpora, each sent as a new customer mail
  automatic and spam mail (target: 0 answered)
    robots           bounces, DSNs, MDNs, ARF reports, auto-replies from the corpora, and
                     the challenge-response fixtures in tests/robots/
    spam             the spam in the corpora (GTUBE, Chinese GB2312 spam, marketing)

"answered" counts any outbox row to someone who is not one of our engineers (an
acknowledgement, a status list); "suspended" the spool rows the suspended area kept;
"unacked" the tickets kept in the queue without an acknowledgement because they look
like spam ([spam] quiet_actions: rspamd's "add header" band; [spam] quiet_unaddressed: a
stranger's mail that names none of our addresses). The corpora are years old, so the
history rule (workflow.history_age_days: no acknowledgement for mail older than a week)
is switched off: the question is what the same mail gets when it arrives today. The
peers corpus is written to its own support address, which the gateway here also has.
With `--rspamd`, a private rspamd (tests/rspamd.py, offline) is started and every set
is run again with [spam] engine = "rspamd".

    python bench/false_positives.py [--generated N] [--rspamd] [--show]
"""

from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import tempfile
from collections import Counter
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from bench import bench_config  # noqa: E402
from bench.corpus import generate  # noqa: E402
from gateway.app import build_app  # noqa: E402
from gateway.pipeline.process import Source, ingest  # noqa: E402
from storage.models import Event, OutboxRow, SpoolEntry  # noqa: E402

CORPORA = Path(os.environ.get("SUPPORTGW_CORPORA") or ROOT.parent / "shared" / "corpora")
PEERS = CORPORA.parent / "peers" / "make_corpus.py"
SUPPORT = "support@support.example.test"


def _peers_support() -> str:
    """The support address ../shared/peers/make_corpus.py writes its customers' mail to: the
    gateway that corpus is meant for has it as one of its addresses (an [[address]] here)."""
    import re

    m = re.search(r'^SUPPORT = "([^"]+)"', PEERS.read_text(), re.M) if PEERS.exists() else None
    return m.group(1) if m else ""

PERSON_MESSAGES = [
    "talon/standard_replies/*.eml", "talon/reply-quotations-share-block.eml", "rt-request-tracker/**/*",
    "sisimai-set-of-emails/maildir/not/is-not-bounce-*.eml", "webklex-php-imap/*.eml", "flanker/*.eml",
    "mimekit/messages/simple-*", "notmuch-corpora/lkml/cur/*", "notmuch-corpora/default/**/*",
    "sisimai-set-of-emails/maildir/bsd/lhost-sendmail-14.eml", "sisimai-set-of-emails/maildir/err/make-test-36.eml",
    "flufl-bounce/simple_20.txt",
]
PERSON_BODIES = [
    "github-email-reply-parser/*", "zapier-email-reply-parser/*", "alfonsrv-mail-parser-reply/*",
    "crisp-reply-parser/*.txt", "crisp-forward-parser/*_body*.txt", "discourse-email-reply-trimmer/emails/*.txt",
]
NOT_PERSON_BODIES = {"discourse-email-reply-trimmer/emails/spam_1.txt", "discourse-email-reply-trimmer/emails/spam_2.txt"}
SPAM = ["spamscope-mail-parser/mail_test_5", "spamscope-mail-parser/mail_test_8", "spamscope-mail-parser/mail_test_9",
        "spamscope-mail-parser/mail_test_12", "spamscope-mail-parser/mail_test_13",
        "spamscope-mail-parser/mail_test_16", "spamscope-mail-parser/mail_test_17",
        "mikel-mail/error_emails/content_transfer_encoding_empty.eml"]


def files(globs, exclude=()) -> list[Path]:
    out: list[Path] = []
    for g in globs:
        for f in sorted(glob.glob(str(CORPORA / g), recursive=True)):
            rel = os.path.relpath(f, CORPORA)
            if os.path.isfile(f) and rel not in exclude and Path(f) not in out:
                out.append(Path(f))
    return out


def as_customer_mail(body: bytes, name: str, i: int) -> bytes:
    m = EmailMessage()
    m["From"] = f"Customer {i} <customer{i}@client{i % 7}.example>"
    m["To"] = SUPPORT
    m["Subject"] = f"About {name}"
    m["Message-ID"] = f"<body-{i}@client{i % 7}.example>"
    m["Date"] = "Tue, 01 Dec 2026 09:00:00 +0800"
    m.set_content(body.decode("utf-8", "replace"))
    return m.as_bytes(policy=SMTP)


def person_sets(n_generated: int) -> dict[str, list[bytes]]:
    from tests.test_loops import NOT_ORDINARY

    sets = {"generated": generate(n_generated)}
    if PEERS.exists():
        with tempfile.TemporaryDirectory() as d:
            subprocess.run([sys.executable, str(PEERS), d, "-n", str(n_generated)], check=True, capture_output=True)
            sets["peers"] = [p.read_bytes() for p in sorted(Path(d).glob("*.eml"))]
    sets["corpora-messages"] = [f.read_bytes() for f in files(PERSON_MESSAGES, NOT_ORDINARY)]
    sets["corpora-bodies"] = [as_customer_mail(f.read_bytes(), f.name, i)
                              for i, f in enumerate(files(PERSON_BODIES, NOT_PERSON_BODIES))]
    return sets


def robot_sets() -> dict[str, list[bytes]]:
    from tests.test_loops import AUTOMATIC_GLOBS, NOT_AUTOMATIC_AFTER_ALL

    robots = [f.read_bytes() for f in files(AUTOMATIC_GLOBS, NOT_AUTOMATIC_AFTER_ALL)]
    robots += [p.read_bytes() for p in sorted((ROOT / "tests" / "robots").glob("*challenge*.eml"))]
    robots.append((ROOT / "tests" / "robots" / "calendar-accepted.eml").read_bytes())
    return {"robots": robots, "spam": [f.read_bytes() for f in files(SPAM)]}


def run_set(raws: list[bytes], spam: dict) -> dict:
    with tempfile.TemporaryDirectory() as d:
        # workflow.history_age_days = 0: the corpora are years old, and the history rule (no
        # acknowledgement for mail older than a week) would otherwise hide every answer; the
        # question is what the same mail gets when it arrives today.
        peers_support = _peers_support()
        cfg = bench_config(d, outbound={"rate_limit_per_hour": 1_000_000, "repeat_limit_per_hour": 0},
                           workflow={"history_age_days": 0}, **({"spam": spam} if spam else {}),
                           **({"address": [{"address": peers_support}]} if peers_support else {}))
        app = build_app(cfg)
        counts: Counter = Counter()
        for i in range(0, len(raws), 100):
            counts.update(ingest(app, [(r, Source("file", "", (SUPPORT,))) for r in raws[i:i + 100]]))
        staff = app.engineer_addresses()
        with app.db.session() as s:
            suspended = list(s.execute(select(SpoolEntry.id, SpoolEntry.reason, SpoolEntry.verdict)
                                       .where(SpoolEntry.status == "suspended")).all())
            answered = [r for r in s.execute(select(OutboxRow.envelope_to, OutboxRow.kind)).all()
                        if not set(a.lower() for a in r.envelope_to) <= staff]
            quiet = len(s.execute(select(Event.id).where(
                Event.kind == "auto_suppressed",
                Event.detail.like("%possible spam%") | Event.detail.like("%not addressed to us%"))).all())
        app.db.dispose()
    return {"mails": len(raws), "suspended": len(suspended), "answered": len(answered), "quiet": quiet,
            "tickets": counts["created"], "duplicates": counts["duplicates"] + counts["duplicate"],
            "quarantined": counts["quarantined"], "reasons": Counter(r for _, r, _ in suspended),
            "examples": [(i, r, (v or {}).get("subject", ""), (v or {}).get("reasons", [])[:1])
                         for i, r, v in suspended[:10]]}


def report(title: str, spam: dict, people: dict, robots: dict, show: bool) -> int:
    print(f"\n== {title}")
    print(f"{'set':<18} {'mails':>6} {'suspended':>10} {'answered':>9} {'tickets':>8} {'unacked':>8}  "
          f"suspended by reason   (unacked: a ticket, but no acknowledgement: [spam] quiet_actions "
          f"and quiet_unaddressed)")
    bad = 0
    for kind, sets in (("person", people), ("robot", robots)):
        for name, raws in sets.items():
            r = run_set(raws, spam)
            target = r["suspended"] if kind == "person" else r["answered"]
            bad += target
            mark = "ok" if target == 0 else ("FALSE POSITIVES" if kind == "person" else "ANSWERED")
            reasons = ", ".join(f"{k} {v}" for k, v in r["reasons"].most_common())
            print(f"{name:<18} {r['mails']:>6} {r['suspended']:>10} {r['answered']:>9} {r['tickets']:>8} {r['quiet']:>8}  "
                  f"{reasons or '-'}   [{mark}]")
            if show and kind == "person":
                for ex in r["examples"]:
                    print(f"     spool {ex[0]} {ex[1]}: {ex[2][:60]!r} {ex[3]}")
    print("targets: person-written mail suspended = 0; robot and spam mail answered = 0")
    return bad


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generated", type=int, default=500, help="mails in each generated customer corpus")
    ap.add_argument("--rspamd", action="store_true", help="also run every set with a private rspamd (offline)")
    ap.add_argument("--show", action="store_true", help="print the person-written mails that were suspended")
    args = ap.parse_args()
    people, robots = person_sets(args.generated), robot_sets()
    bad = report("default settings (no engine: upstream headers and the gateway's own robot rules)", {},
                 people, robots, args.show)
    if args.rspamd:
        from tests.rspamd import Rspamd

        with tempfile.TemporaryDirectory() as d:
            server = Rspamd(Path(d)).start()
            try:
                report("[spam] engine = rspamd (private instance, offline), default suspend_actions / quiet_actions",
                       server.config(), people, robots, args.show)
                report("[spam] engine = rspamd, suspend_actions = reject, rewrite subject, add header",
                       server.config(suspend_actions=["reject", "rewrite subject", "add header"]), people, robots,
                       False)
            finally:
                server.stop()
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
