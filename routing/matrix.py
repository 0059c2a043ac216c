"""Priority as a function of customer tier, impact and urgency, plus raise/lower.

Owns the priority arithmetic only. P1 is the most urgent; "raise" moves toward
P1, "lower" toward P4, and both stop at the ends.
"""

from __future__ import annotations

from dataclasses import dataclass

from routing.config import LEVELS, PRIORITIES


def rank(priority: str) -> int:
    """'P1' -> 1 ... 'P4' -> 4."""
    return PRIORITIES.index(priority) + 1


def clamp(n: int) -> str:
    return PRIORITIES[min(max(n, 1), len(PRIORITIES)) - 1]


def shift(priority: str, levels: int) -> str:
    """Raise (levels < 0) or lower (levels > 0) a priority, clamped to P1..P4."""
    return clamp(rank(priority) + levels)


def at_least(priority: str, floor: str) -> str:
    """`priority`, but never less urgent than `floor`."""
    return priority if rank(priority) <= rank(floor) else floor


@dataclass(frozen=True)
class PriorityMatrix:
    # (tier, impact, urgency) -> priority
    table: dict[tuple[str, str, str], str]

    @classmethod
    def from_rows(cls, rows: dict) -> PriorityMatrix:
        """rows: tier -> TierMatrix (impact rows, each a priority for urgency high/medium/low)."""
        table = {}
        for tier, m in rows.items():
            for impact in LEVELS:
                for urgency, prio in zip(LEVELS, getattr(m, impact)):
                    table[(tier, impact, urgency)] = prio
        return cls(table)

    @property
    def tiers(self) -> frozenset[str]:
        return frozenset(t for t, _, _ in self.table)

    def priority(self, tier: str, impact: str, urgency: str) -> str:
        return self.table[(tier, impact, urgency)]
