"""Quote and signature stripping (stub: replaced by the real implementation)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reply:
    reply_text: str  # the new text alone
    quoted: str  # the quoted history that was cut
    signature: str  # the signature that was cut


def split_reply(text: str) -> Reply:
    return Reply(reply_text=text.strip(), quoted="", signature="")
