"""`supportgw customer export ADDRESS -o FILE.zip`: everything stored about a person.

The archive's layout (also written into it as README.txt):

    README.txt                     this layout
    person.json                    the address, names seen, tickets, survey answers, mail with no ticket
    tickets/<REF>/ticket.json      the ticket: subject, status, priority, team, dates, their role,
                                   its history (what happened when; staff shown as "support")
    tickets/<REF>/messages/NNN-in.eml    mail they sent, as received
    tickets/<REF>/messages/NNN-out.eml   mail sent to them, as sent
    tickets/<REF>/attachments/NNN-<name> the attachments of their mail
    unfiled/<spool id>.eml         their mail that made no ticket (quarantined, suspended, dropped)

Internal notes and engineers' own mail are not the person's and stay out (the
same rule as every customer mail: gateway/confidentiality); the mail that reached
them is there exactly as it left. An audit entry records the export, without the address.
"""

from __future__ import annotations

import json
import re
import zipfile
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

from gateway.desk.customer_data import find
from gateway.outbox import message_bytes
from storage.models import AuditEntry, SpoolEntry
from storage.queries import events as ticket_events, messages, participants, surveys
from storage.spool import raw_bytes

LAYOUT = __doc__.split("The archive's layout (also written into it as README.txt):", 1)[1].split("Internal notes")[0]


def _safe(name: str) -> str:
    return re.sub(r"[^\w.\-]+", "_", name)[:80] or "file"


def _rebuilt(m) -> bytes:
    """A message whose original bytes are gone (retention): its stored fields as an .eml."""
    e = EmailMessage(policy=SMTP)
    e["From"] = m.sender_email or "unknown@invalid"
    if m.to:
        e["To"] = ", ".join(m.to)
    e["Subject"] = m.subject or ""
    e["Date"] = m.created_at.strftime("%a, %d %b %Y %H:%M:%S +0000")
    if m.message_id:
        e["Message-ID"] = m.message_id if m.message_id.startswith("<") else f"<{m.message_id}>"
    e["X-Supportgw-Note"] = "original bytes no longer kept; rebuilt from the stored text"
    e.set_content(m.text or "")
    return e.as_bytes()


def _inbound_bytes(app, s, m) -> bytes:
    entry = s.get(SpoolEntry, m.spool_id) if m.spool_id else None
    if entry is not None:
        try:
            return raw_bytes(app.spool_blobs, entry)
        except OSError:
            pass
    return _rebuilt(m)


def export(app, address: str, out: Path) -> dict:
    """Write the archive; returns counts. Raises LookupError when nothing is held."""
    with app.db.session() as s:
        h = find(app, s, address)
        if h.empty:
            raise LookupError(address)
        counts = {"tickets": 0, "messages": 0, "attachments": 0, "unfiled": 0}
        person = {"address": h.address, "names": sorted(h.names), "tickets": [], "survey_answers": [],
                  "unfiled": [], "exported_at": app.now().isoformat()}
        tmp = out.with_name(out.name + ".part")
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("README.txt", "Data held by the support gateway about " + h.address + "\n" + LAYOUT)
            for t in h.tickets:
                ref = t.ref or f"ticket-{t.id}"
                base = f"tickets/{_safe(ref)}"
                roles = sorted(participants.roles_of(s, t.id, h.address)
                               | ({"requester"} if t in h.requested else set()))
                events = ticket_events.of_ticket(s, t.id)
                # staff are "support": an engineer's own address never reaches a customer
                history = [{"at": e.at.isoformat(), "what": e.kind,
                            "by": "you" if e.actor == h.address else ("support" if "@" in e.actor else e.actor)}
                           for e in events]
                doc = {"ref": t.ref, "subject": t.subject, "status": t.status, "priority": t.priority,
                       "category": t.category, "organisation": t.organisation, "project": t.project,
                       "language": t.language, "your_roles": roles, "created_at": t.created_at.isoformat(),
                       "first_responded_at": t.first_responded_at and t.first_responded_at.isoformat(),
                       "resolved_at": t.resolved_at and t.resolved_at.isoformat(),
                       "closed_at": t.closed_at and t.closed_at.isoformat(), "history": history}
                z.writestr(f"{base}/ticket.json", json.dumps(doc, indent=2, ensure_ascii=False))
                person["tickets"].append(ref)
                counts["tickets"] += 1
                n = 0
                for m in [m for m in h.messages if m.ticket_id == t.id and not m.internal]:
                    n += 1
                    z.writestr(f"{base}/messages/{n:03d}-in.eml", _inbound_bytes(app, s, m))
                    for a in messages.attachment_rows(s, m.id):
                        try:
                            z.writestr(f"{base}/attachments/{n:03d}-{_safe(a.filename)}", app.attachments.get(a.sha256))
                            counts["attachments"] += 1
                        except OSError:
                            pass  # removed by retention: ticket.json and the .eml still name it
                for row in [r for r in h.outbox if r.ticket_id == t.id and r.status in ("sent", "bounced")]:
                    n += 1
                    z.writestr(f"{base}/messages/{n:03d}-out.eml", message_bytes(row, app.attachments))
                counts["messages"] += n
                for r in surveys.of_ticket(s, t.id):
                    if t in h.requested:
                        person["survey_answers"].append({"ticket": ref, "score": r.score, "comment": r.comment,
                                                         "at": r.at.isoformat()})
            for e in h.unfiled:
                try:
                    z.writestr(f"unfiled/{e.id}.eml", raw_bytes(app.spool_blobs, e))
                except OSError:
                    continue
                person["unfiled"].append({"id": e.id, "status": e.status, "received_at": e.received_at.isoformat()})
                counts["unfiled"] += 1
            z.writestr("person.json", json.dumps(person, indent=2, ensure_ascii=False))
        tmp.replace(out)
        s.add(AuditEntry(at=app.now(), kind="customer_exported", actor="cli", data=counts))
    return counts
