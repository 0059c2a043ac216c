"""Messages that came attached to a message (`message/rfc822`, a forward "as attachment").

Owns what an engineer's notification shows of each: its sender, date and subject, its
text (cut at `MAX_TEXT` characters; the whole `.eml` is kept on the ticket and attached
to the notification when it is small enough) and its own attachments. The bytes are read
back from the attachment store and parsed by the same parser as every inbound mail. It
decides nothing about the ticket and sends nothing.
"""

from __future__ import annotations

from parsers.message import parse_email

MAX_TEXT = 20_000
MAX_SHOWN = 5  # a mail with a pile of attached mails: the first few are shown, all are kept


def describe(app, listed: list[dict]) -> list[dict]:
    """One dict per attached message among `listed` (notify's attachment entries)."""
    out = []
    for entry in listed:
        if entry.get("content_type") != "message/rfc822" or len(out) >= MAX_SHOWN:
            continue
        try:
            raw = app.attachments.get(entry["sha256"])
        except (OSError, ValueError):
            continue  # the store lost it: it is still in the attachment list
        inner = parse_email(raw)
        text = inner.text.strip()
        out.append({
            "filename": entry["filename"],
            "sender": str(inner.sender) if inner.sender.email or inner.sender.name else "",
            "date": inner.header("date").strip(),  # as the sender's client wrote it, zone included
            "subject": inner.subject,
            "text": text[:MAX_TEXT],
            "cut": len(text) > MAX_TEXT,
            "attachments": [{"filename": a.filename, "size": a.size} for a in inner.attachments],
        })
    return out
