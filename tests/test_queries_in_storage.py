"""Queries live in storage/queries/ (docs/ARCHITECTURE.md, "Where the queries are"): gateway/
asks named functions there instead of building `select()` statements itself.

The hot path of gateway/pipeline/ and the outbox dispatcher (gateway/runtime/dispatch.py)
keep their own tuned statements. Anywhere else in gateway/, a `select(` fails here: write
(or reuse) a function in storage/queries/ instead."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXEMPT = ("gateway/pipeline/", "gateway/runtime/dispatch.py")

def sqlalchemy_selects(path: Path) -> int:
    """Calls of SQLAlchemy's select() in the module (an IMAP `select` of our own is not one)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {a.asname or a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
             and (node.module or "").startswith("sqlalchemy") for a in node.names if a.name == "select"}
    modules = {a.asname or a.name for node in ast.walk(tree) if isinstance(node, ast.Import)
               for a in node.names if a.name == "sqlalchemy"}
    n = 0
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Name) and f.id in names:
            n += 1
        elif isinstance(f, ast.Attribute) and f.attr == "select" and isinstance(f.value, ast.Name) \
                and f.value.id in modules:
            n += 1
    return n


def counts() -> dict[str, int]:
    out = {}
    for path in sorted((ROOT / "gateway").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(EXEMPT):
            continue
        n = sqlalchemy_selects(path)
        if n:
            out[rel] = n
    return out


def test_gateway_asks_storage_instead_of_writing_select():
    found = counts()
    assert not found, (f"select() written in gateway/ (file: count): {found}; put the query in a named "
                       "function in storage/queries/ (docs/ARCHITECTURE.md, 'Where the queries are')")


def test_the_exempt_places_are_still_there():
    """An exemption for a file that moved would exempt nothing, or the wrong thing."""
    assert all((ROOT / e).exists() for e in EXEMPT)


def test_the_count_sees_a_select_and_ignores_an_imap_select(tmp_path):
    p = tmp_path / "m.py"
    p.write_text("from sqlalchemy import select\nfrom x import Ticket\n"
                 "def f(s):\n    return s.execute(select(Ticket))\n"
                 "def g(client):\n    return client.select('INBOX')\n")
    assert sqlalchemy_selects(p) == 1
    p.write_text("def select(client):\n    return client\nselect(1)\n")
    assert sqlalchemy_selects(p) == 0


def test_storage_does_not_import_gateway():
    """Arrows point down: storage/ knows nothing of the gateway above it."""
    for path in sorted((ROOT / "storage").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(m == "gateway" or m.startswith("gateway.") for m in mods), path
