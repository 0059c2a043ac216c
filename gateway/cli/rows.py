"""How a list command prints its rows: JSON for scripts, one line per row for people."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence


def print_rows(rows: Sequence[dict], as_json: bool, empty_text: str, line: Callable[[dict], str]) -> None:
    """`--json`: the rows as a JSON array (`[]` when there are none); else `line(row)` for each
    row, or `empty_text` when there are none, so an empty list never looks like a hang."""
    if as_json:
        print(json.dumps(list(rows), ensure_ascii=False, indent=2))
        return
    if not rows:
        print(empty_text)
    for row in rows:
        print(line(row))
