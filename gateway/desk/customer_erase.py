"""`supportgw customer erase ADDRESS`: the person is removed or anonymised everywhere.

- Tickets they opened stay as anonymous shells, so the desk's figures (volume,
  SLA, satisfaction scores) stay true: the requester becomes ERASED, subject,
  solution, every message's text, the survey comments, their attachments, the
  raw mail in the spool and the outbound mail are removed; the history keeps
  what happened and when, without details.
- On other tickets (a cc, a colleague's ticket): their participant rows go,
  the mail they sent loses its text, their address and names are replaced in
  the rest (text, recipients, raw bytes of the spool and outbox).
- Their mail that made no ticket (quarantined, suspended, dropped, pending) is deleted.
- Knowledge articles from their tickets lose the quoted problem and the link;
  their address and names are replaced in every article.
- Outbound mail still waiting for them is cancelled (failed, "recipient erased").
- Files: attachment and spool-blob files nothing else names are deleted; mail in
  the sent Maildir (newcomer mode) that names them is deleted.
- Finally every text and JSON column of every table is swept for the address
  (columns other parts add are covered too), and on SQLite the file is VACUUMed
  so deleted bytes do not linger in free pages.

An audit entry records the erasure with counts only. The routing rules file may
list the address in its customer directory; that file is the operator's, so we
say so instead of editing it.
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import delete, func, text, update

from gateway.desk.customer_data import find
from storage.models import (
    AuditEntry, Event, OutboxAttempt, OutboxRow, Participant, SpoolEntry, SurveyResponse, ThreadId,
)
from storage.queries import files, kb as kb_articles, messages, outbox as outbox_rows, spool as spool_rows, sweep

ERASED = "erased@erased.invalid"
ERASED_NAME = "[erased]"


class Scrubber:
    """Replaces an address and names, case-insensitively, in str, bytes, lists and dicts."""

    def __init__(self, address: str, names: set[str]) -> None:
        words = [re.escape(address)] + [re.escape(n) for n in sorted(names, key=len, reverse=True)]
        self.pattern = re.compile("|".join(words), re.IGNORECASE)
        self.bpattern = re.compile(b"|".join(w.encode() for w in words), re.IGNORECASE)
        self.address = address

    def _sub(self, m) -> str:
        return ERASED if m.group(0).lower() == self.address else ERASED_NAME

    def _bsub(self, m) -> bytes:
        return self._sub_text(m.group(0).decode("utf-8", "replace")).encode()

    def _sub_text(self, found: str) -> str:
        return ERASED if found.lower() == self.address else ERASED_NAME

    def __call__(self, value):
        if isinstance(value, str):
            return self.pattern.sub(self._sub, value)
        if isinstance(value, bytes):
            return self.bpattern.sub(self._bsub, value)
        if isinstance(value, list):
            return [self(v) for v in value]
        if isinstance(value, dict):
            return {k: self(v) for k, v in value.items()}
        return value

    def found(self, value) -> bool:
        if isinstance(value, bytes):
            return self.bpattern.search(value) is not None
        if isinstance(value, (list, dict)):
            return self(value) != value
        return isinstance(value, str) and self.pattern.search(value) is not None


def erase(app, address: str, *, vacuum: bool = True) -> dict:
    """Erase; returns what was done (counts). Raises LookupError when nothing is held."""
    counts = {"tickets_anonymised": 0, "tickets_touched": 0, "messages_wiped": 0, "attachments_removed": 0,
              "spool_rows_deleted": 0, "outbox_rows_wiped": 0, "kb_articles_scrubbed": 0, "rows_swept": 0,
              "files_removed": 0}
    shas: set[str] = set()
    blobs: set[str] = set()
    with app.db.write_lock(), app.db.session() as s:
        h = find(app, s, address)
        if h.empty:
            raise LookupError(address)
        scrub = Scrubber(h.address, h.names)
        mine = [t.id for t in h.requested]
        theirs = {m.id for m in h.messages}
        # ---- their own tickets: anonymous shells
        for t in h.requested:
            t.requester_email, t.requester_name, t.subject, t.solution, t.tags = ERASED, "", ERASED_NAME, "", []
            counts["tickets_anonymised"] += 1
        wipe_msgs = set(theirs)
        if mine:
            wipe_msgs |= messages.ids_on(s, mine)
            s.execute(delete(ThreadId).where(ThreadId.ticket_id.in_(mine)))
            s.execute(update(Event).where(Event.ticket_id.in_(mine)).values(detail="", data={}))
            s.execute(update(SurveyResponse).where(SurveyResponse.ticket_id.in_(mine)).values(comment="", token=""))
            s.execute(delete(Participant).where(Participant.ticket_id.in_(mine), Participant.role != "watcher"))
        s.execute(delete(Participant).where(func.lower(Participant.email) == h.address))
        # ---- messages: wiped (theirs, and everything on their tickets), else scrubbed
        for m in messages.with_ids(s, wipe_msgs) if wipe_msgs else []:
            m.text = m.reply_text = m.html = ""
            m.subject = ERASED_NAME
            if m.id in theirs:
                m.message_id = ""  # their client's Message-ID can carry their name or host
            m.sender_email, m.sender_name = scrub(m.sender_email), scrub(m.sender_name)
            m.to, m.cc = scrub(list(m.to)), scrub(list(m.cc))
            counts["messages_wiped"] += 1
            for a in messages.attachment_rows(s, m.id):
                shas.add(a.sha256)
                s.delete(a)
                counts["attachments_removed"] += 1
            if m.spool_id:
                entry = s.get(SpoolEntry, m.spool_id)
                if entry is not None:
                    if entry.raw is None:
                        blobs.add(entry.sha256)
                    entry.raw, entry.message_id, entry.error = b"", "", ""
                    entry.envelope_from, entry.envelope_to = scrub(entry.envelope_from), scrub(list(entry.envelope_to))
        involved = [t.id for t in h.involved]
        if involved:
            for m in messages.on_tickets_except(s, involved, wipe_msgs):
                for col in ("text", "reply_text", "html", "subject", "sender_name"):
                    setattr(m, col, scrub(getattr(m, col)))
                m.to, m.cc = scrub(list(m.to)), scrub(list(m.cc))
            counts["tickets_touched"] = len(involved)
        # ---- outbound mail: to them, or on their tickets
        rows = outbox_rows.on_tickets(s, mine) if mine else []
        rows += [r for r in h.outbox if r.ticket_id not in mine]
        for r in {r.id: r for r in rows}.values():
            if r.status in ("pending", "sending"):
                r.status, r.last_error = "failed", "recipient erased"
            r.raw, r.draft, r.subject = b"", None, ERASED_NAME
            r.rcpt, r.to, r.cc = scrub(r.rcpt), scrub(list(r.to)), scrub(list(r.cc))
            r.envelope_to = scrub(list(r.envelope_to))
            s.execute(update(OutboxAttempt).where(OutboxAttempt.outbox_id == r.id).values(detail=""))
            counts["outbox_rows_wiped"] += 1
        # ---- their mail that made no ticket
        for e in h.unfiled:
            if e.raw is None:
                blobs.add(e.sha256)
            s.execute(update(OutboxRow).where(OutboxRow.source_spool_id == e.id).values(source_spool_id=None))
            s.delete(e)
            counts["spool_rows_deleted"] += 1
        # ---- any other spool row naming them (a colleague's mail with them on Cc, a quarantined forward)
        named = [i for i, raw in spool_rows.raw_kept(s, 200) if raw and scrub.found(raw)]
        for e in (s.get(SpoolEntry, i) for i in named):
            if e.ticket_id is None and e.status != "processed":
                s.execute(update(OutboxRow).where(OutboxRow.source_spool_id == e.id).values(source_spool_id=None))
                s.delete(e)
                counts["spool_rows_deleted"] += 1
            else:
                e.raw = scrub(e.raw)
        # ---- knowledge articles
        for kb in kb_articles.every(s):
            if kb.ticket_id in mine:
                kb.ticket_id, kb.problem, kb.title = None, ERASED_NAME, "Solution (customer data erased)"
                counts["kb_articles_scrubbed"] += 1
            if any(scrub.found(v) for v in (kb.title, kb.problem, kb.solution)):
                kb.title, kb.problem, kb.solution = scrub(kb.title), scrub(kb.problem), scrub(kb.solution)
                counts["kb_articles_scrubbed"] += 1
        s.flush()
        counts["rows_swept"] = sweep.rewrite_containing(s, h.address, scrub)
        # files nothing names any more
        s.flush()
        still = files.still_named(s, shas, spool=False) if shas else set()
        for sha in shas - still:
            counts["files_removed"] += _unlink(app.attachments.path_for(sha))
        still = files.still_named(s, blobs, spool=True) if blobs else set()
        for sha in blobs - still:
            counts["files_removed"] += _unlink(app.spool_blobs.path_for(sha))
        counts["files_removed"] += _sent_maildir(app, scrub)
        s.add(AuditEntry(at=app.now(), kind="customer_erased", actor="cli", data=dict(counts)))
    if vacuum:
        _vacuum(app)
    return counts


def _unlink(path: Path) -> int:
    try:
        path.unlink()
        return 1
    except FileNotFoundError:
        return 0


def _sent_maildir(app, scrub: Scrubber) -> int:
    root = app.config.data_dir / "sent"
    n = 0
    for sub in ("new", "cur", "tmp"):
        for f in (root / sub).glob("*") if (root / sub).is_dir() else []:
            try:
                if scrub.found(f.read_bytes()):
                    n += _unlink(f)
            except OSError:
                continue
    return n


def _vacuum(app) -> None:
    """Deleted rows leave their bytes in free pages until the file is rewritten."""
    if app.db.is_sqlite:
        with app.db.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(text("VACUUM"))
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    else:
        tables = ["tickets", "messages", "participants", "outbox", "outbox_attempts", "spool", "events",
                  "attachments", "kb_articles", "survey_responses", "thread_ids"]
        with app.db.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            for t in tables:
                conn.execute(text(f"VACUUM {t}"))
