"""Routing decisions in words, for `supportgw rules explain FILE.eml` and the ticket history.

Owns the text only; the decision itself comes from `routing.engine.route`.
`explain_email` accepts raw bytes too: it uses the project's parser
(`parsers.message.parse_email`) when present, else a small stdlib fallback good
enough to see what the rules would do.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
from datetime import datetime, timezone

from parsers.model import Address, Attachment, ParsedEmail
from routing.compiler import RoutingConfig
from routing.engine import Decision, route

_CJK = re.compile(r"[\u4e00-\u9fff]")


def explain(decision: Decision, cfg: RoutingConfig | None = None) -> str:
    d = decision
    lines = []
    who = f"{d.organisation} (tier {d.customer_tier})" if d.organisation else \
        f"not in the customer directory (tier {d.customer_tier})"
    lines.append(f"Customer: {who}")
    if d.project:
        p = d.project
        lines.append(f"Project:  {p.name}: primary {p.primary}, secondary {p.secondary}, manager {p.manager}")
    matched = sum(1 for s in d.trace if s.matched)
    lines.append(f"Rules:    {d.rules_evaluated} evaluated, {matched} matched"
                 + (f", stopped by '{d.stopped_by}'" if d.stopped_by else ""))
    for step in d.trace:
        mark = "[x]" if step.matched else "[ ]"
        if step.matched:
            lines.append(f"  {mark} {step}")
            lines.append(f"        because {step.reason}")
        else:
            lines.append(f"  {mark} rule '{step.rule}': {step.reason}")
    if cfg is not None and d.stopped_by:
        names = [r.name for r in cfg.rules]
        rest = names[names.index(d.stopped_by) + 1:] if d.stopped_by in names else []
        if rest:
            lines.append(f"  not evaluated (stop): {', '.join(rest)}")
    lines.append("Decision:")
    lines.append(f"  category  {d.category}")
    lines.append(f"  team      {d.team}")
    adjusted = "" if d.priority == d.matrix_priority else f", adjusted by rules from {d.matrix_priority}"
    lines.append(f"  priority  {d.priority} (matrix: tier {d.customer_tier}, impact {d.impact}, "
                 f"urgency {d.urgency}{adjusted})")
    owner = f"{d.owner} <{d.owner_email}>" if d.owner else "(team queue)"
    if d.primary_out_of_office:
        owner += " — out of office: hand over to the secondary"
    lines.append(f"  owner     {owner}")
    lines.append(f"  tags      {', '.join(d.tags) or '-'}")
    lines.append(f"  watchers  {', '.join(d.watchers) or '-'}")
    clock = "business hours" if d.business_hours else "calendar time"
    lines.append(f"SLA {d.sla_policy} ({clock}):")
    lines.append(f"  first response by {_when(d.first_response_due, cfg, d)}")
    lines.append(f"  resolution by     {_when(d.resolution_due, cfg, d)}")
    for note in d.notes:
        lines.append(f"Note: {note}")
    return "\n".join(lines)


def _when(at: datetime, cfg: RoutingConfig | None, d: Decision) -> str:
    text = at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if cfg is not None:
        tz = cfg.calendars[cfg.defaults.calendar].tz
        text += at.astimezone(tz).strftime(f" (%Y-%m-%d %H:%M {tz.key})")
    return text


def explain_email(raw_or_parsed: bytes | ParsedEmail, cfg: RoutingConfig, recipients: tuple[str, ...] = (),
                  now: datetime | None = None) -> str:
    """Every rule evaluated for one email, matched or not, and the decision."""
    msg = raw_or_parsed if isinstance(raw_or_parsed, ParsedEmail) else parse_for_routing(raw_or_parsed)
    if now is None:
        # The CLI's "now" for a dry run: when the mail was written, else a fixed instant.
        now = msg.date if msg.date and msg.date.tzinfo else datetime(2026, 1, 5, 1, 0, tzinfo=timezone.utc)
    decision = route(msg, cfg, recipients=recipients, now=now, trace_all=True)
    head = [f"Email:    {msg.subject!r} from {msg.sender}",
            f"To:       {', '.join(str(a) for a in msg.to + msg.cc) or '-'}"
            + (f"; envelope {', '.join(recipients)}" if recipients else ""),
            f"Language: {msg.language or '-'}; attachments: "
            + (", ".join(a.filename for a in msg.attachments) or "none"),
            f"Received: {now.astimezone(timezone.utc):%Y-%m-%d %H:%M UTC} (SLA clock start)"]
    return "\n".join(head + [explain(decision, cfg)])


def parse_for_routing(raw: bytes) -> ParsedEmail:
    """The project's parser when it exists; else a minimal stdlib parse (headers, text, files)."""
    try:
        from parsers.message import parse_email  # written in parallel; prefer it when present
    except ImportError:
        return _fallback_parse(raw)
    return parse_email(raw)


def _addresses(msg, name: str) -> tuple[Address, ...]:
    out = []
    for value in msg.get_all(name, []):
        try:
            for a in value.addresses:
                out.append(Address(a.display_name or "", (a.addr_spec or "").lower()))
        except (AttributeError, IndexError, ValueError):
            continue
    return tuple(out)


def _fallback_parse(raw: bytes) -> ParsedEmail:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    texts, attachments = [], []
    for part in msg.walk():
        if part.is_multipart():
            continue
        filename = part.get_filename()
        try:
            payload = part.get_payload(decode=True) or b""
        except Exception:  # noqa: BLE001 — a broken part must not stop a dry run
            payload = b""
        if filename or part.get_content_disposition() == "attachment":
            attachments.append(Attachment(
                filename=(filename or "attachment").replace("/", "_"),
                content_type=part.get_content_type(), size=len(payload),
                sha256=hashlib.sha256(payload).hexdigest(), content=payload,
                inline=part.get_content_disposition() == "inline"))
        elif part.get_content_maintype() == "text":
            try:
                text = part.get_content()
            except Exception:  # noqa: BLE001
                text = payload.decode("utf-8", "replace")
            if part.get_content_subtype() == "html":
                text = re.sub(r"<[^>]+>", " ", text)
            texts.append(text)
    text = "\n".join(texts)
    subject = str(msg.get("subject", "") or "")
    senders = _addresses(msg, "from")
    cjk = len(_CJK.findall(subject + text[:2000]))
    try:
        date = msg["date"].datetime if msg["date"] is not None else None
    except (AttributeError, TypeError, ValueError):
        date = None
    return ParsedEmail(
        sender=senders[0] if senders else Address("", ""), to=_addresses(msg, "to"),
        cc=_addresses(msg, "cc"), reply_to=_addresses(msg, "reply-to"), subject=subject,
        message_id=str(msg.get("message-id", "") or "").strip("<> ") or hashlib.sha256(raw).hexdigest(),
        in_reply_to=(), references=(), date=date, text=text, html="",
        attachments=tuple(attachments), language="zh-CN" if cjk >= 2 else "en",
        headers=tuple((k, str(v)) for k, v in msg.items()))
