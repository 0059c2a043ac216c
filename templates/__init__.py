"""Email templates: one jinja2 file per email kind and locale, subject included.

Each `templates/<locale>/<kind>.j2` defines blocks `subject`, `text` and
optionally `html`. The environment is sandboxed (support leads edit these
files) and customer text only ever arrives as data, never as template source.
`Templates.variant(folder, signature)` is a brand's set ([[address]]): a file in
`folder/<locale>/<kind>.j2` replaces the default one, and `signature` is the
`{{ signature }}` its customer mails end with.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.sandbox import SandboxedEnvironment

TEMPLATE_DIR = Path(__file__).resolve().parent
LOCALES = ("en", "zh-CN")


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def person(name: str | None, email: str | None) -> str:
    """'Name <address>', or the bare address when the name is unknown."""
    name, email = (name or "").strip(), (email or "").strip()
    return f"{name} <{email}>" if name and email else name or email


class Templates:
    def __init__(self, directory: Path = TEMPLATE_DIR, *, override: Path | None = None, signature: str = "") -> None:
        self.directory = directory
        loaders = [FileSystemLoader(str(override))] if override else []
        self.env = SandboxedEnvironment(
            loader=ChoiceLoader([*loaders, FileSystemLoader(str(directory))]),
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self.env.globals["person"] = person
        self.env.globals["organisation_name"] = lambda oid: oid  # an app puts its customer directory here
        self.env.globals["signature"] = signature
        self._variants: dict[tuple, Templates] = {}

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
        for t in self._variants.values():
            t.env.globals["organisation_name"] = self.env.globals["organisation_name"]

    def render(self, kind: str, locale: str, **context) -> Rendered:
        if locale not in LOCALES:
            locale = "en"
        tpl = self.env.get_template(f"{locale}/{kind}.j2")
        ctx = tpl.new_context(context)
        blocks = tpl.blocks

        def block(name: str) -> str:
            return "".join(blocks[name](ctx)) if name in blocks else ""

        subject = " ".join(block("subject").split())  # one line: no header injection through data
        return Rendered(subject=subject, text=block("text").strip() + "\n", html=block("html").strip())

    def line(self, kind: str, locale: str, block: str, **context) -> str:
        """One extra block of a template (e.g. note.j2's `reply_name`) as a single line; "" when absent."""
        tpl = self.env.get_template(f"{locale if locale in LOCALES else 'en'}/{kind}.j2")
        if block not in tpl.blocks:
            return ""
        return " ".join("".join(tpl.blocks[block](tpl.new_context(context))).split())
