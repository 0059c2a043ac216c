"""Reading, validating and reloading the rules file.

Owns turning a file into a `RoutingConfig` or a `RulesError` that lists every
problem with file, place (rule name or key) and what to fix; and
`RulesHolder`, which keeps the rules in force while a new file is tried, so a
broken edit never takes the gateway's routing down. The gateway decides *when*
to reload (SIGHUP, a timer); this module only does it.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import logging
import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from routing import checks
from routing.compiler import RoutingConfig, compile_rules
from routing.config import RulesFile, known_keys

log = logging.getLogger("supportgw.routing")

SAMPLE_RULES = Path(__file__).resolve().parent / "sample_rules.toml"


@dataclass(frozen=True)
class Problem:
    file: str
    where: str  # "rule 'outage-keywords' (rules #3), when.subject_regex" or a key path
    message: str  # what is wrong and what to write instead

    def __str__(self) -> str:
        return f"{self.file}: {self.where}: {self.message}" if self.where else f"{self.file}: {self.message}"


class RulesError(Exception):
    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} in the routing rules:"
        return "\n".join([head, *(f"  {p}" for p in self.problems)])


@dataclass(frozen=True)
class LoadedRules:
    """A compiled rules file with the exact text it was compiled from (what other processes load)."""

    config: RoutingConfig
    text: str
    sha256: str


def _read(path: Path) -> tuple[dict | None, Path, list[Problem]]:
    """The rules table and the file it came from (a supportgw.toml may name a rules file)."""
    data, real, _, problems = _read_text(path)
    return data, real, problems


def _read_text(path: Path) -> tuple[dict | None, Path, str, list[Problem]]:
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        return None, path, "", [Problem(str(path), "", f"cannot read the file: {exc.strerror or exc}")]
    except UnicodeDecodeError as exc:
        return None, path, "", [Problem(str(path), "", f"not UTF-8 text ({exc.reason} at byte {exc.start}); "
                                                       "save the file as UTF-8")]
    data, problems = _parse_toml(text, path)
    if data is None:
        return None, path, text, problems
    section = data.get("routing")
    if isinstance(section, dict) and "rules" not in data and "sla" not in data:
        # The gateway's own config file: follow its [routing] rules_file.
        target = section.get("rules_file") or ""
        target_path = (path.parent / target) if target else SAMPLE_RULES
        if target_path.resolve() == path.resolve():
            return None, path, text, [Problem(str(path), "routing.rules_file", "the file names itself")]
        return _read_text(target_path)
    return data, path, text, []


def _parse_toml(text: str, path: Path) -> tuple[dict | None, list[Problem]]:
    try:
        return tomllib.loads(text), []
    except tomllib.TOMLDecodeError as exc:
        return None, [Problem(str(path), "", f"not valid TOML: {exc}; fix the syntax")]


def _where(loc: tuple, data: dict) -> str:
    """A pydantic location as a reader would say it, with the rule's name."""
    parts = [p for p in loc if not (isinstance(p, str) and ("[" in p or p.startswith("function-")))]
    if len(parts) >= 2 and parts[0] == "rules" and isinstance(parts[1], int):
        rules = data.get("rules")
        name = "?"
        if isinstance(rules, list) and parts[1] < len(rules) and isinstance(rules[parts[1]], dict):
            name = str(rules[parts[1]].get("name", "?"))
        return checks.rule_where(parts[1], name, _dotted(parts[2:]))
    return _dotted(parts)


def _dotted(parts) -> str:
    text = ""
    for p in parts:
        text += f"[{p}]" if isinstance(p, int) else (f".{p}" if text else str(p))
    return text


def _message(err: dict) -> str:
    kind, loc = err["type"], err["loc"]
    last = str(loc[-1]) if loc else ""
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(last, known_keys(), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        return f"unknown key '{last}': {hint}remove it or check the spelling"
    if kind == "missing":
        return f"required key '{last}' is missing: add it"
    if kind == "value_error":
        return str(err["ctx"]["error"])
    if kind == "literal_error":
        return f"{err['input']!r} is not allowed: {err['msg'].replace('Input should be', 'use')}"
    return f"{err['msg']} (got {err.get('input')!r})"


def _validate(data: dict, path: Path) -> tuple[RulesFile | None, list[Problem]]:
    try:
        model = RulesFile.model_validate(data)
    except ValidationError as exc:
        out = []
        for err in exc.errors():
            p = Problem(str(path), _where(err["loc"], data), _message(err))
            if p not in out:
                out.append(p)
        # Go on to the whole-file checks on what did validate, so that one run reports every
        # problem: a misspelt key must not hide an undefined engineer until it is fixed.
        return None, out + _checks_beyond(data, path, exc, out)
    return model, [Problem(str(path), where, msg) for where, msg in checks.problems(model)]


def _checks_beyond(data: dict, path: Path, exc: ValidationError, found: list[Problem]) -> list[Problem]:
    """The whole-file checks' problems, on a copy of the file with every part that failed
    validation left out, minus any about a place already reported. Names the file defines
    count as defined even where their definition was left out (`checks.defined_names`)."""
    pruned = copy.deepcopy(data)
    for _ in range(50):  # each round removes at least one part, and a file has few broken ones
        locs = [[p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p.startswith("function-")))]
                for err in exc.errors()]
        # the last places first, so that leaving out a list item does not move the next one
        for loc in sorted(locs, key=lambda loc: [(isinstance(p, str), p) for p in loc], reverse=True):
            _prune(pruned, loc)
        try:
            model = RulesFile.model_validate(pruned)
            break
        except ValidationError as again:
            exc = again
    else:
        return []
    reported = [p.where for p in found]
    return [Problem(str(path), where, msg) for where, msg in checks.problems(model, checks.defined_names(data))
            if not any(_within(where, r) or _within(r, where) for r in reported)]


def _within(where: str, place: str) -> bool:
    """Is `where` the place `place` or a part of it ("sla.P1.resolution" is in "sla.P1")?"""
    return where == place or where.startswith((place + ".", place + ",", place + "["))


def _prune(data: dict, loc: list) -> None:
    """Leave out the part at `loc` (its parent, for a missing key). A broken rule is kept as a
    placeholder with its name, so that the rules after it keep their numbers."""
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        rules = data.get("rules")
        if isinstance(rules, list) and loc[1] < len(rules):
            rule = rules[loc[1]]
            if len(loc) > 2 and isinstance(rule, dict) and _drop(rule, loc[2:]):
                return
            name = rule.get("name") if isinstance(rule, dict) else None
            rules[loc[1]] = {"name": name if isinstance(name, str) and name else "?", "then": {"stop": True}}
            return
    if _drop(data, loc) or (len(loc) > 1 and _drop(data, loc[:-1])):
        return
    if len(loc) == 1:  # a required table that is missing: empty stands in for it
        data[loc[0]] = {}


def _drop(data, loc: list) -> bool:
    """Delete data[loc...]; False when there is nothing there to delete."""
    node = data
    for key in loc[:-1]:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return False
    try:
        del node[loc[-1]]
    except (KeyError, IndexError, TypeError):
        return False
    return True


def check_file(path: str | Path) -> list[Problem]:
    """Every problem in a rules file (empty when it is fine); for `supportgw rules check`."""
    data, real, problems = _read(Path(path))
    if data is None:
        return problems
    _, problems = _validate(data, real)
    return problems


def load_rules(path: str | Path = SAMPLE_RULES) -> RoutingConfig:
    """Load, validate and compile a rules file; raise `RulesError` listing all problems."""
    return read_rules(path).config


def read_rules(path: str | Path = SAMPLE_RULES) -> LoadedRules:
    """`load_rules`, keeping the text: another process can compile the very same rules from it."""
    data, real, text, problems = _read_text(Path(path))
    if data is None:
        raise RulesError(problems)
    return _compiled(data, text, real)


def rules_from_text(text: str, path: str | Path) -> LoadedRules:
    """Compile rules from a file's text (read elsewhere; `path` names it in problems and `config.path`)."""
    path = Path(path)
    data, problems = _parse_toml(text, path)
    if data is None:
        raise RulesError(problems)
    return _compiled(data, text, path)


def _compiled(data: dict, text: str, real: Path) -> LoadedRules:
    model, problems = _validate(data, real)
    if problems:
        raise RulesError(problems)
    return LoadedRules(compile_rules(model, real), text, hashlib.sha256(text.encode("utf-8")).hexdigest())


class RulesHolder:
    """The rules in force, swapped atomically on a good reload, kept on a bad one.

    `generation` is the number the gateway gave these rules (gateway.rules_sync),
    None while they are this process's own, unpublished. `lock` serialises every
    swap, so a reload and a swap to another process's generation never interleave.
    """

    def __init__(self, path: str | Path = SAMPLE_RULES, loaded: LoadedRules | None = None):
        self.path = Path(path)
        self.lock = threading.RLock()
        self._loaded = loaded or read_rules(self.path)  # a broken file at start is fatal: raise
        self._signature = self._stat()
        self.generation: int | None = None
        self.last_error: RulesError | None = None

    @property
    def current(self) -> RoutingConfig:
        return self._loaded.config

    @property
    def loaded(self) -> LoadedRules:
        return self._loaded

    def _stat(self) -> tuple:
        loaded = getattr(self, "_loaded", None)
        real = loaded.config.path if loaded is not None and loaded.config.path else self.path
        sig = []
        for p in {self.path, real}:  # a supportgw.toml names the rules file: watch both
            try:
                st = p.stat()
                sig.append((str(p), st.st_mtime_ns, st.st_size))
            except OSError:
                sig.append((str(p), None, None))
        return tuple(sorted(sig))

    def changed(self) -> bool:
        """The file's mtime or size differs from the last attempt to read it."""
        return self._stat() != self._signature

    def forget_attempt(self) -> None:
        """Read the file again at the next `changed()` check (the last attempt could not be finished)."""
        self._signature = ()

    def read(self) -> LoadedRules | None:
        """Try the file: its rules, or None (logged, `last_error` set) when it is broken."""
        with self.lock:
            self._signature = self._stat()
            try:
                new = read_rules(self.path)
            except RulesError as exc:
                self.last_error = exc
                log.error("routing rules not reloaded, the old rules stay in force:\n%s", exc)
                return None
            self.last_error = None
            self._signature = self._stat()
            return new

    def install(self, loaded: LoadedRules, generation: int | None = None) -> None:
        with self.lock:
            self._loaded, self.generation = loaded, generation

    def reload(self) -> bool:
        """Try the file again; True if the new rules are now in force."""
        with self.lock:
            new = self.read()
            if new is None:
                return False
            self.install(new)
            log.info("routing rules reloaded from %s (%d rules)", new.config.path, len(new.config.rules))
            return True

    def reload_if_changed(self) -> bool:
        """Reload when the file's mtime or size changed since the last attempt."""
        if not self.changed():
            return False
        return self.reload()
