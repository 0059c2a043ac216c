"""`supportgw customer erase ADDRESS`: the person is removed or anonymised everywhere.

- Tickets they opened stay as anonymous shells, so the desk's figures (volume,
  SLA, satisfaction scores) stay true: the requester becomes ERASED, subject,
  solution, every message's text, the survey comments, their attachments, the
  raw mail in the spool and the outbound mail are removed; the history keeps
  what happened and when, without details.
- On other tickets (a cc, a colleague's ticket): their participant rows go,
  the mail they sent loses its text, their address and names are replaced in
  the rest (text, recipients, raw bytes of the spool and outbox).
- Any other mail kept as bytes (the spool's, and our outbound mail built with its
  attachments) is searched too, on every ticket and on none: a colleague's mail
  with them on Cc, an engineer's answer forwarding mail that names them.
- Their mail that made no ticket (quarantined, suspended, dropped, pending) is deleted.
- Knowledge articles from their tickets lose the quoted problem and the link;
  their address and names are replaced in every article.
- Outbound mail still waiting for them is cancelled (failed, "recipient erased"); the
  other outbound mail of tickets they are on is kept with their address and names replaced.
- Raw mail of others is searched in its bytes, inside RFC 2047 encoded words
  (`=?utf-8?b?...?=`, a name in a header), and in its text parts sent base64 or
  quoted-printable (decoded, scrubbed, encoded again as they came); the same for our
  outbound raw mail and the sent Maildir. Large mail kept as a spool blob file is
  scrubbed into a new file a chunk at a time (its bytes and encoded words) and the
  old file removed.
- Files: attachment and spool-blob files nothing else names are deleted; mail in
  the sent Maildir (newcomer mode) that names them is deleted.
- Finally every text and JSON column of every table is swept for the address
  (columns other parts add are covered too), and the storage is rewritten so deleted
  bytes do not linger: VACUUM on SQLite, VACUUM FULL of every table on PostgreSQL.

An audit entry records the erasure with counts only. The routing rules file may
list the address in its customer directory; that file is the operator's, so we
say so instead of editing it.
"""

from __future__ import annotations

import base64
import binascii
import quopri
import re
from email import message_from_bytes
from email.errors import HeaderParseError
from email.header import Header, decode_header, make_header
from email.policy import compat32
from pathlib import Path

from sqlalchemy import delete, func, text, update

from gateway.desk.customer_data import find
from storage.spool import SpoolSink
from storage.models import (
    AuditEntry, Base, Event, OutboxAttempt, OutboxRow, Participant, SpoolEntry, SurveyResponse, ThreadId,
)
from storage.queries import files, kb as kb_articles, messages, outbox as outbox_rows, spool as spool_rows, sweep

ERASED = "erased@erased.invalid"
ERASED_NAME = "[erased]"


# A run of RFC 2047 encoded words (=?charset?b|q?...?=), the folding whitespace between them
# being no part of the text: a name in a header of someone else's raw mail hides in one.
ENCODED_RUN = re.compile(rb"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=(?:\s+=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=)*")
# A part sent base64 or quoted-printable: its text is not in the mail's bytes as written.
ENCODED_BODY = re.compile(rb"content-transfer-encoding:[ \t]*(?:base64|quoted-printable)", re.IGNORECASE)


class Scrubber:
    """Replaces an address and names, case-insensitively, in str, bytes, lists and dicts.

    In bytes (raw mail) it also looks inside RFC 2047 encoded words: a run that decodes to
    something naming the person is replaced by one UTF-8 encoded word of the scrubbed text.
    A whole mail (`mail`) has its base64 and quoted-printable text parts decoded too.
    """

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

    def _decoded(self, run: bytes) -> str:
        try:
            return str(make_header(decode_header(run.decode("ascii"))))
        except (UnicodeError, ValueError, LookupError, binascii.Error, HeaderParseError):
            return ""

    def _encoded(self, m) -> bytes:
        found = self._decoded(m.group(0))
        if not found or self.pattern.search(found) is None:
            return m.group(0)
        return Header(self.pattern.sub(self._sub, found), "utf-8", maxlinelen=100_000).encode().encode("ascii")

    def __call__(self, value):
        if isinstance(value, str):
            return self.pattern.sub(self._sub, value)
        if isinstance(value, bytes):
            return ENCODED_RUN.sub(self._encoded, self.bpattern.sub(self._bsub, value))
        if isinstance(value, list):
            return [self(v) for v in value]
        if isinstance(value, dict):
            return {k: self(v) for k, v in value.items()}
        return value

    def mail(self, raw: bytes) -> bytes:
        """A whole raw mail scrubbed: its bytes and encoded words, as `self(raw)`, and its text parts
        sent base64 or quoted-printable, each decoded, scrubbed and encoded again as it came (the
        mail is then written out again, headers as they were)."""
        raw = self(raw)
        again = self._bodies(raw)
        return raw if again is None else again

    def found_in_mail(self, raw: bytes) -> bool:
        return self.found(raw) or self._bodies(raw) is not None

    def _bodies(self, raw: bytes) -> bytes | None:
        """`raw` with every base64 or quoted-printable text part naming them scrubbed; None when none does."""
        if not ENCODED_BODY.search(raw):
            return None
        msg = message_from_bytes(raw, policy=compat32)
        changed = False
        for part in msg.walk():
            payload = self._body(part)
            if payload is not None:
                part.set_payload(payload)
                changed = True
        if not changed:
            return None
        return msg.as_bytes(policy=compat32.clone(linesep="\r\n" if b"\r\n" in raw else "\n"))

    def _body(self, part) -> str | None:
        """A leaf text part's payload, scrubbed and encoded again; None unless it is sent base64 or
        quoted-printable and names them."""
        if part.is_multipart() or part.get_content_maintype() != "text":
            return None
        cte = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
        if cte not in ("base64", "quoted-printable"):
            return None
        data = part.get_payload(decode=True) or b""
        charset = part.get_content_charset() or "us-ascii"
        try:
            text = data.decode(charset)
            new = self(text).encode(charset)
        except (LookupError, UnicodeError):  # a charset Python lacks, or bytes that are not in it
            new = self.bpattern.sub(self._bsub, data)
        if new == data:
            return None
        return (base64.encodebytes(new) if cte == "base64" else quopri.encodestring(new)).decode("ascii")

    def found(self, value) -> bool:
        if isinstance(value, bytes):
            return self.bpattern.search(value) is not None or any(
                self.pattern.search(self._decoded(m.group(0))) for m in ENCODED_RUN.finditer(value))
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
        # ---- outbound mail of others' tickets they are on (notifications quoting a colleague's
        # mail that names them): kept, with the address and names replaced
        wiped = {r.id for r in rows}
        done = set(wiped)
        for r in outbox_rows.on_tickets(s, involved) if involved else []:
            if r.id in done:
                continue
            done.add(r.id)
            r.subject, r.rcpt = scrub(r.subject), scrub(r.rcpt)
            r.to, r.cc, r.envelope_to = scrub(list(r.to)), scrub(list(r.cc)), scrub(list(r.envelope_to))
            if r.draft is not None:
                r.draft = scrub(dict(r.draft))
            if r.raw:
                r.raw = scrub.mail(r.raw)
        # ---- any other outbound mail built with its bytes that names them (an engineer's answer with
        # an attachment, on a ticket they are not on, quoting or forwarding mail that names them)
        # (scrubbed in the one pass that finds them: a mail's text parts are parsed once; few mails match)
        named = {i: new for i, raw in outbox_rows.raw_kept(s, 200) if i not in done and raw
                 and (new := scrub.mail(raw)) != raw}
        for i, new in named.items():
            s.get(OutboxRow, i).raw = new
        # ---- their mail that made no ticket
        for e in h.unfiled:
            if e.raw is None:
                blobs.add(e.sha256)
            s.execute(update(OutboxRow).where(OutboxRow.source_spool_id == e.id).values(source_spool_id=None))
            s.delete(e)
            counts["spool_rows_deleted"] += 1
        # ---- any other spool row naming them (a colleague's mail with them on Cc, a quarantined forward)
        named = {i: new for i, raw in spool_rows.raw_kept(s, 200) if raw and (new := scrub.mail(raw)) != raw}
        for i, new in named.items():
            e = s.get(SpoolEntry, i)
            if e.ticket_id is None and e.status != "processed":
                s.execute(update(OutboxRow).where(OutboxRow.source_spool_id == e.id).values(source_spool_id=None))
                s.delete(e)
                counts["spool_rows_deleted"] += 1
            else:
                e.raw = new
        # ---- the same for large mail kept as a file of the spool blob store (raw NULL)
        for e in spool_rows.file_backed(s):
            rewritten = _scrub_blob(app, scrub, e.sha256)
            if rewritten is None:
                continue
            blobs.add(e.sha256)
            if e.ticket_id is None and e.status != "processed":
                rewritten.discard()
                s.execute(update(OutboxRow).where(OutboxRow.source_spool_id == e.id).values(source_spool_id=None))
                s.delete(e)
                counts["spool_rows_deleted"] += 1
            else:
                stored = rewritten.finish()
                e.sha256, e.size = stored.sha256, stored.size
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


def _scrub_blob(app, scrub: Scrubber, sha: str, chunk: int = 1024 * 1024):
    """A spool blob file naming them, scrubbed a chunk at a time into a new blob (still open:
    the caller finishes or discards it); None when the file does not name them.

    Chunks are cut at the end of an unfolded line, so neither a literal match nor a run of
    encoded words (both within one logical line) is ever split.
    """
    try:
        fh = open(app.spool_blobs.path_for(sha), "rb")
    except FileNotFoundError:
        return None
    sink = SpoolSink(app.spool_blobs, inline_max=-1)  # always a file, never in memory
    changed = False
    carry = b""
    with fh:
        while True:
            piece = fh.read(chunk)
            buf = carry + piece
            cut = _line_cut(buf) if piece else len(buf)
            if cut == 0 and len(buf) < 16 * chunk:
                carry = buf  # no line ends yet: read on
                continue
            cut = cut or len(buf)  # a 16 MiB line is no mail; scrub it as it is
            head, carry = buf[:cut], buf[cut:]
            out = scrub(head)
            changed = changed or out != head
            sink.write(out)
            if not piece:
                break
    if not changed:
        sink.discard()
        return None
    return sink


def _line_cut(buf: bytes) -> int:
    """Just after the last newline known not to be followed by a folded continuation (0: none)."""
    i = buf.rfind(b"\n", 0, len(buf) - 1)
    while i >= 0 and buf[i + 1:i + 2] in (b" ", b"\t"):
        i = buf.rfind(b"\n", 0, i)
    return i + 1


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
                if scrub.found_in_mail(f.read_bytes()):
                    n += _unlink(f)
            except OSError:
                continue
    return n


def _vacuum(app) -> None:
    """Deleted and updated rows leave their bytes behind until the storage is rewritten.

    SQLite: VACUUM rewrites the file, then the WAL is truncated. PostgreSQL: a plain VACUUM only
    marks dead tuples' space reusable (the bytes stay in the pages), so every table is rewritten
    with VACUUM FULL (new files, indexes and TOAST included; the old files are emptied at once).
    That takes each table's exclusive lock for the seconds it lasts, which an erase may cost.
    The server's WAL and its backups still hold the old rows until they are recycled or expire.
    """
    with app.db.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        if app.db.is_sqlite:
            conn.execute(text("VACUUM"))
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
            return
        quote = conn.dialect.identifier_preparer.format_table
        for table in Base.metadata.sorted_tables:
            conn.execute(text(f"VACUUM FULL {quote(table)}"))
