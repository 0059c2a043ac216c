"""Email templates: one jinja2 file per email kind and locale, subject included.

Each `templates/<locale>/<kind>.j2` defines blocks `subject`, `text` and
optionally `html`. The environment is sandboxed (support leads edit these
files) and customer text only ever arrives as data, never as template source.
`Templates.variant(folder, signature)` is a brand's set ([[address]]): a file in
`folder/<locale>/<kind>.j2` replaces the default one, and `signature` is the
`{{ signature }}` its customer mails end with.
"""

from __future__ import annotations

import time
import types
from dataclasses import dataclass
from pathlib import Path

from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.sandbox import SandboxedEnvironment

TEMPLATE_DIR = Path(__file__).resolve().parent
LOCALES = ("en", "zh-CN")
_METHODS = (types.MethodType, types.BuiltinMethodType)  # what jinja2.sandbox's wrap_str_format looks at
RECHECK_SECONDS = 2.0  # an edited template file is read again within this long


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def person(name: str | None, email: str | None) -> str:
    """'Name <address>', or the bare address when the name is unknown."""
    name, email = (name or "").strip(), (email or "").strip()
    return f"{name} <{email}>" if name and email else name or email


class _Sandbox(SandboxedEnvironment):
    """Jinja's sandbox, its verdict on an attribute kept. The sandbox asks whether an attribute
    is safe on every access (about fifty a notification), and its answer depends only on the
    object's type and the attribute's name (jinja2.sandbox.is_internal_attribute): the same
    question is answered once."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._safe: dict[tuple, bool] = {}

    def is_safe_attribute(self, obj, attr: str, value) -> bool:
        key = (type(obj), attr)
        safe = self._safe.get(key)
        if safe is None:
            if len(self._safe) > 4096:  # names can come from data (item access): bounded
                self._safe.clear()
            safe = self._safe[key] = super().is_safe_attribute(obj, attr, value)
        return safe

    def getattr(self, obj, attribute: str):
        """`obj.attribute` in a template: Jinja's own answer, in one call for the common case (a
        plain value, such as a ticket's ref, of an attribute kept as safe) where Jinja makes three.
        A method (str.format is wrapped there), a missing attribute (item access) and an unsafe
        one go to Jinja's own getattr."""
        try:
            value = getattr(obj, attribute)
        except AttributeError:
            return super().getattr(obj, attribute)
        if isinstance(value, _METHODS) or not self._safe.get((type(obj), attribute)):
            return super().getattr(obj, attribute)
        return value


class Templates:
    def __init__(self, directory: Path = TEMPLATE_DIR, *, override: Path | None = None, signature: str = "") -> None:
        self.directory = directory
        loaders = [FileSystemLoader(str(override))] if override else []
        self.env = _Sandbox(
            loader=ChoiceLoader([*loaders, FileSystemLoader(str(directory))]),
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            auto_reload=False,  # the files are looked at in `template`, not on every use
        )
        self.env.globals["person"] = person
        self.env.globals["organisation_name"] = lambda oid: oid  # an app puts its customer directory here
        self.env.globals["signature"] = signature
        self._variants: dict[tuple, Templates] = {}
        self._held: dict = {}  # name -> (compiled template, its globals as one dict, their names)
        self._checked = time.monotonic()  # when the files were last looked at

    def variant(self, override: Path | None, signature: str = "") -> "Templates":
        """This set with a brand's folder before it and its signature (cached)."""
        if not override and not signature:
            return self
        key = (str(override or ""), signature)
        if key not in self._variants:
            t = Templates(self.directory, override=override, signature=signature)
            t.env.globals["organisation_name"] = self.env.globals["organisation_name"]
            self._variants[key] = t
        return self._variants[key]

    def name_organisations(self, lookup) -> None:
        """`organisation_name(id)` in templates: the customer directory's name for an organisation."""
        self.env.globals["organisation_name"] = lambda oid: (lookup(oid) or oid) if oid else ""
        self._held.clear()  # (their flattened globals name the old one)
        for t in self._variants.values():
            t.env.globals["organisation_name"] = self.env.globals["organisation_name"]
            t._held.clear()

    def _compiled(self, name: str) -> tuple:
        """(The compiled template `name`, its globals as one dict, their names).

        Jinja would look at the file's time on every use (and at each file it includes), to compile
        it again once edited. A support lead's edit still takes effect without a restart, but the
        files are looked at once per `RECHECK_SECONDS`, not for every mail: an edited one (or one
        it includes) is then compiled again. The template's globals (a chain of its own and the
        environment's) would be flattened on every render; they are the same for every mail, so
        they are flattened here, once (again when `name_organisations` changes them)."""
        now = time.monotonic()
        if now - self._checked >= RECHECK_SECONDS:
            self._checked = now
            if any(not t.is_up_to_date for t in list(self.env.cache.values())):
                self.env.cache.clear()
                self._held.clear()
        held = self._held.get(name)
        if held is None:
            tpl = self.env.get_template(name)
            held = self._held[name] = (tpl, dict(tpl.globals), frozenset(tpl.globals))
        return held

    def render(self, kind: str, locale: str, **context) -> Rendered:
        if locale not in LOCALES:
            locale = "en"
        held = self._compiled(f"{locale}/{kind}.j2")
        ctx = self._context(held, context)
        blocks = held[0].blocks

        def block(name: str) -> str:
            return "".join(blocks[name](ctx)) if name in blocks else ""

        subject = " ".join(block("subject").split())  # one line: no header injection through data
        return Rendered(subject=subject, text=block("text").strip() + "\n", html=block("html").strip())

    def line(self, kind: str, locale: str, block: str, **context) -> str:
        """One extra block of a template (e.g. note.j2's `reply_name`) as a single line; "" when absent."""
        held = self._compiled(f"{locale if locale in LOCALES else 'en'}/{kind}.j2")
        if block not in held[0].blocks:
            return ""
        return " ".join("".join(held[0].blocks[block](self._context(held, context))).split())

    def _context(self, held: tuple, context: dict):
        """What `tpl.new_context(context)` makes, from the globals `_compiled` flattened."""
        tpl, flat, names = held
        ctx = self.env.context_class(self.env, {**flat, **context}, tpl.name, tpl.blocks)
        ctx.globals_keys = names  # as jinja2.runtime.Context keeps them (read only, by {% import %})
        return ctx
