"""What a rule does when it matches: one small action per key under `then`.

Owns the draft decision that rules edit in order and the actions that edit
it. Each action returns a short text ("impact=high") for the trace. Owner and
watchers stay symbolic here ("project.primary"); the engine resolves them once
all rules have run, so a later rule that picks another project still counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from routing import config
from routing.matrix import PriorityMatrix, at_least, clamp, rank


@dataclass
class Draft:
    category: str
    team: str
    impact: str
    urgency: str
    owner: str
    project: str = ""
    fixed_priority: str = ""  # set by `priority = "P2"`; beats the matrix
    adjust: int = 0  # net raise (<0) / lower (>0) in levels
    floor: str = ""  # never less urgent than this
    tags: list[str] = field(default_factory=list)
    watchers: list[str] = field(default_factory=list)

    def priority(self, matrix: PriorityMatrix, tier: str) -> str:
        base = self.fixed_priority or matrix.priority(tier, self.impact, self.urgency)
        prio = clamp(rank(base) + self.adjust)
        return at_least(prio, self.floor) if self.floor else prio


class Set:
    def __init__(self, key: str, value: str):
        self.key, self.value = key, value

    def apply(self, d: Draft) -> str:
        setattr(d, self.key, self.value)
        return f"{self.key}={self.value}"


class SetPriority:
    def __init__(self, value: str):
        self.value = value

    def apply(self, d: Draft) -> str:
        d.fixed_priority, d.adjust = self.value, 0  # an explicit priority resets earlier raises
        return f"priority={self.value}"


class PriorityAtLeast:
    def __init__(self, value: str):
        self.value = value

    def apply(self, d: Draft) -> str:
        d.floor = at_least(d.floor, self.value) if d.floor else self.value
        return f"priority at least {self.value}"


class Shift:
    def __init__(self, levels: int):
        self.levels = levels  # negative raises

    def apply(self, d: Draft) -> str:
        d.adjust += self.levels
        word = "raised" if self.levels < 0 else "lowered"
        return f"priority {word} {abs(self.levels)}"


class Append:
    def __init__(self, key: str, values):
        self.key, self.values = key, tuple(values)

    def apply(self, d: Draft) -> str:
        items = getattr(d, self.key)
        items.extend(v for v in self.values if v not in items)
        return f"{self.key}+={','.join(self.values)}"


def build(spec: config.Actions) -> tuple:
    """Actions in a fixed, documented order: classify, then prioritise, then assign."""
    out: list = []
    for key in ("category", "team", "impact", "urgency"):
        if getattr(spec, key) is not None:
            out.append(Set(key, getattr(spec, key)))
    if spec.priority is not None:
        out.append(SetPriority(spec.priority))
    if spec.raise_priority is not None:
        out.append(Shift(-spec.raise_priority))
    if spec.lower_priority is not None:
        out.append(Shift(spec.lower_priority))
    if spec.priority_at_least is not None:
        out.append(PriorityAtLeast(spec.priority_at_least))
    for key in ("project", "owner"):
        if getattr(spec, key) is not None:
            out.append(Set(key, getattr(spec, key)))
    if spec.tags is not None:
        out.append(Append("tags", spec.tags))
    if spec.watchers is not None:
        out.append(Append("watchers", spec.watchers))
    return tuple(out)
