"""Who held a ticket when, and why: the answer the handover rule owes (DOMAIN.md §5).

Owns `holds(session, ticket)`: the ticket's periods of responsibility, oldest
first, read from its events alone ("routed" for the first holder, then every
"assigned", whose data names the step: a handover by command, by the SLA watch
or for an out-of-office primary, a manager take-over, a handback, a tier-2
escalation, a plain reassignment). `supportgw tickets show` prints them. It
changes nothing and sends nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from storage.models import Ticket
from storage.queries import events

# step -> (what the step is called, the prefix its recorded reason starts with)
STEPS = {
    "routed": ("routed", ""),
    "handover_command": ("handover by command", "handover: "),
    "handover_sla": ("handover by the SLA watch", "handover: "),
    "handover_away": ("handover: primary out of office", "handover: "),
    "manager_takeover": ("manager take-over", "manager escalation: "),
    "handback": ("handback", "handback: "),
    "tier2_escalation": ("tier-2 escalation", ""),
    "reassigned": ("reassigned", ""),
}


@dataclass(frozen=True)
class Hold:
    """One period: `handler` held the ticket from `since` to `until` (None: holds it now)."""

    handler: str
    owner: str
    since: datetime
    until: datetime | None
    step: str  # a key of STEPS
    why: str
    by: str  # who or what made the change (an engineer's address, system:sla, ...)

    @property
    def label(self) -> str:
        return STEPS.get(self.step, (self.step, ""))[0]

    def as_dict(self) -> dict:
        return {"handler": self.handler, "owner": self.owner, "from": self.since.isoformat(),
                "until": self.until.isoformat() if self.until else None, "step": self.step,
                "label": self.label, "why": self.why, "by": self.by}


def _reason(step: str, why: str) -> str:
    prefix = STEPS.get(step, ("", ""))[1]
    return why[len(prefix):] if prefix and why.startswith(prefix) else why


def _step_of(data: dict) -> str:
    # events written before steps were recorded say what they were only in their reason
    if data.get("step"):
        return data["step"]
    why = data.get("why") or ""
    for step in ("manager_takeover", "handback"):
        if why.startswith(STEPS[step][1]):
            return step
    return "handover_command" if why.startswith("handover: ") else "reassigned"


def holds(session, ticket: Ticket) -> list[Hold]:
    rows = events.of_ticket(session, ticket.id, ("routed", "assigned"))
    out: list[Hold] = []
    for e in rows:
        data = e.data or {}
        if e.kind == "routed":
            if out:  # one routing per ticket; a second would be a re-route of the same holder
                continue
            owner = data.get("owner") or ticket.owner or ""
            project = f" of project {ticket.project}" if ticket.project else ""
            out.append(Hold(owner, owner, e.at, None, "routed", f"the owner the rules gave the new ticket{project}",
                            "the routing rules"))
            continue
        step = _step_of(data)
        previous_owner = out[-1].owner if out else (data.get("old_owner") or "")
        owner = data.get("new") if data.get("owner_too") else (data.get("old_owner") or previous_owner)
        if out:
            out[-1] = replace(out[-1], until=e.at)
        out.append(Hold(data.get("new") or "", owner or "", e.at, None, step, _reason(step, data.get("why") or ""),
                        e.actor))
    return out
