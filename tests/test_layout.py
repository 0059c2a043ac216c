"""The shape of the code: no import circle, a small top to gateway/, imports that resolve here.

Every import counts, the ones inside functions too: a function-level import is still an
arrow from one module to another, only a hidden one. `from package import name` is an arrow
to package.name when that is a module, else to the package itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("gateway", "parsers", "routing", "storage")
TOP_LIMIT = 12


def _modules() -> dict[str, Path]:
    out = {}
    for top in PACKAGES:
        for path in (ROOT / top).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The project's modules `name` imports, anywhere in it."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for a in node.names:
                found.add(f"{module}.{a.name}" if f"{module}.{a.name}" in MODULES else module)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circle_counting_function_level_imports():
    assert _cycles(GRAPH) == []


def test_the_cycle_check_sees_a_circle_through_a_function_level_import():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_nothing_below_the_command_line_imports_it():
    """cli is the top layer: runtime and the rest never reach up into it (CommandError lives
    in gateway/__init__.py for that reason)."""
    up = sorted(f"{name} -> {dep}" for name, deps in GRAPH.items() if not name.startswith("gateway.cli")
                for dep in deps if dep == "gateway.cli" or dep.startswith("gateway.cli."))
    assert up == []


def test_gateway_keeps_at_most_a_dozen_modules_at_its_top():
    top = sorted(p.name for p in (ROOT / "gateway").glob("*.py"))
    assert len(top) <= TOP_LIMIT, top


def test_every_import_of_the_project_resolves_to_a_file_in_this_tree():
    """A moved module must not be found in another checkout (an editable install of main)."""
    missing = []
    for folder in ("gateway", "parsers", "routing", "storage", "tests", "bench"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                         [node.module] if isinstance(node, ast.ImportFrom) and not node.level and node.module
                         else [])
                missing += [f"{path.relative_to(ROOT)}:{node.lineno} {n}" for n in names
                            if n.split(".")[0] in PACKAGES and n not in MODULES]
    assert missing == []


def test_handlers_run_in_the_order_the_registry_lists_and_each_says_its_name():
    from gateway.handlers import registry

    assert [h.NAME for h in registry.HANDLERS] == list(registry.INBOUND)
    assert registry.INBOUND[-1] == "customer"  # whatever is left is a customer's mail
    assert all(callable(h.handle) for h in registry.HANDLERS)


def test_an_unknown_handler_name_fails():
    from gateway.handlers import registry

    with pytest.raises(registry.UnknownHandler, match="'bouncez'"):
        registry.resolve(("bounce_handler", "bouncez"))


def test_an_unknown_scheduler_job_raises_rather_than_being_skipped():
    from gateway.jobs import scheduler

    with pytest.raises(scheduler.UnknownJob):
        scheduler._resolve("gateway.jobs.sla:no_such_job")
    with pytest.raises(ImportError):
        scheduler._resolve("gateway.no_such_module:run")
    assert all(scheduler._resolve(ref) for ref, _ in scheduler.JOBS.values())
