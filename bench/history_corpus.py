"""A generated support history with broken references, and its ground truth.

Each conversation is a customer's question, answers from an engineer (in a Sent
folder, From the engineer's address) and follow-ups, years back. Some links are
broken on purpose, the way real clients break them:

- `irt-only`: a reply with In-Reply-To but no References;
- `ghost`: the question was deleted from the export; two replies name it;
- `no-refs`: a customer's "Re:" with no References or In-Reply-To at all (subject only);
- `dup`: a message present twice (an inbox copy of a mail also in Sent);
- `loop`: two messages naming each other in References;
- `same-subject`: a different customer using the same subject ("Re: help"), not the same problem.

`write(folder, n)` writes an mbox `inbox.mbox` and a Maildir `Sent/` and returns
{Message-ID: conversation number} (duplicates once).
"""

from __future__ import annotations

import mailbox
import random
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

ENGINEERS = ["alice@support.example.com", "bob@support.example.com"]
SUPPORT = "support@support.example.test"
TOPICS = ["VPN drops every hour", "Invoice for March is wrong", "Database deadlock on nightly job",
          "Printer offline", "Cannot log in after password change", "help", "Slow query on reports"]


def _mail(frm, to, subject, mid, when, body, irt=None, refs=None) -> bytes:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"], m["Message-ID"] = frm, to, subject, f"<{mid}>"
    m["Date"] = format_datetime(when)
    if irt:
        m["In-Reply-To"] = f"<{irt}>"
    if refs:
        m["References"] = " ".join(f"<{r}>" for r in refs)
    m.set_content(body)
    return m.as_bytes()


def conversations(n: int, seed: int = 23, start=datetime(2016, 1, 4, 9, 0, tzinfo=timezone.utc)):
    """Yield (conversation number, folder 'inbox'|'sent', Message-ID, raw bytes, deleted) in date order."""
    rnd = random.Random(seed)
    for c in range(n):
        when = start + timedelta(hours=7 * c)
        cust = f"customer{c}@client{c % 97}.example.net"
        topic = TOPICS[c % len(TOPICS)]
        flaw = ["ok", "irt-only", "ghost", "no-refs", "dup", "loop", "same-subject", "ok"][c % 8]
        q = f"q{c}@client{c % 97}.example.net"
        yield c, "inbox", q, _mail(cust, SUPPORT, topic, q, when, f"Hello,\n{topic.lower()} since yesterday.\n"), \
            flaw == "ghost"
        eng = ENGINEERS[c % 2]
        a = f"a{c}@support.example.com"
        t = when + timedelta(hours=2)
        if flaw == "irt-only":
            raw = _mail(eng, cust, "Re: " + topic, a, t, "Please try the new client.\n", irt=q)
        else:
            raw = _mail(eng, cust, "Re: " + topic, a, t, "Please try the new client.\n", irt=q, refs=[q])
        yield c, "sent", a, raw, False
        if flaw == "dup":
            yield c, "inbox", a, raw, False  # the engineer copied the support mailbox
        r = f"r{c}@client{c % 97}.example.net"
        t += timedelta(hours=rnd.randint(3, 48))
        if flaw == "no-refs":
            raw = _mail(cust, SUPPORT, "RE: " + topic, r, t, "Still broken.\n")
        elif flaw == "ghost":
            raw = _mail(cust, SUPPORT, "Re: " + topic, r, t, "Thanks, it works.\n", irt=a, refs=[q, a])
        elif flaw == "loop":
            raw = _mail(cust, SUPPORT, "Re: " + topic, r, t, "Thanks.\n", irt=a, refs=[q, f"z{c}@x", a])
        else:
            raw = _mail(cust, SUPPORT, "Re: " + topic, r, t, "Thanks, it works.\n", irt=a, refs=[q, a])
        yield c, "inbox", r, raw, False
        if flaw == "loop":  # a broken client: its References name a later message, which names it back
            z = f"z{c}@x"
            yield c, "inbox", z, _mail(cust, SUPPORT, "Re: " + topic, z, t + timedelta(minutes=5), "Also...\n",
                                       refs=[r]), False
        if flaw == "same-subject":
            o = f"o{c}@other{c}.example.org"
            yield n + c, "inbox", o, _mail(f"other{c}@other{c}.example.org", SUPPORT, "Re: " + topic, o,
                                           t + timedelta(hours=1), "Same subject, another problem.\n"), False


def write(folder: Path, n: int, seed: int = 23) -> dict[str, int]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    box = mailbox.mbox(str(folder / "inbox.mbox"), create=True)
    sent = mailbox.Maildir(str(folder / "Sent"), create=True)
    truth: dict[str, int] = {}
    box.lock()
    try:
        for conv, where, mid, raw, deleted in conversations(n, seed):
            if deleted:
                continue
            truth.setdefault(mid, conv)
            (box if where == "inbox" else sent).add(raw)
    finally:
        box.flush()
        box.unlock()
        box.close()
    return truth
