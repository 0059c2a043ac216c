"""Routing decisions in words, for `supportgw rules explain FILE.eml` and the ticket history.

Owns the text only; the decision itself comes from `routing.engine.route`.
`explain_email` accepts raw bytes too, parsed by the project's parser
(`parsers.message.parse_email`), as the pipeline parses them.
"""

from __future__ import annotations

from datetime import datetime, timezone

from parsers.message import parse_email
from parsers.model import ParsedEmail
from routing.compiler import RoutingConfig
from routing.engine import Decision, route

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
    """The project's parser, as the pipeline parses."""
    return parse_email(raw)
