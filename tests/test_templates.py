"""The template set: a support lead's edit to a template file takes effect without a restart,
and the file is not looked at for every mail."""

from __future__ import annotations

import os

import templates as templates_mod
from templates import Templates


def _write(folder, text: str, mtime: float, footer: str = "the footer") -> None:
    path = folder / "en" / "acknowledgement.j2"
    path.write_text("{% block subject %}" + text + "{% endblock %}\n{% block text %}\n" + text + "\n"
                    '{% include "en/_footer.j2" %}{% endblock %}\n', encoding="utf-8")
    os.utime(path, (mtime, mtime))
    inc = folder / "en" / "_footer.j2"
    if not inc.exists() or inc.read_text(encoding="utf-8") != footer + "\n":
        inc.write_text(footer + "\n", encoding="utf-8")
        os.utime(inc, (mtime, mtime))


def test_an_edited_template_is_read_again_within_the_recheck_time(tmp_path, monkeypatch):
    (tmp_path / "en").mkdir()
    _write(tmp_path, "first wording", 1_000_000)
    clock = [100.0]
    monkeypatch.setattr(templates_mod.time, "monotonic", lambda: clock[0])
    looked = []
    tpl = Templates(override=tmp_path)
    real = tpl.env.get_template
    monkeypatch.setattr(tpl.env, "get_template", lambda name, *a, **k: looked.append(name) or real(name, *a, **k))

    assert tpl.render("acknowledgement", "en").subject == "first wording"
    stats = []
    real_stat = os.stat
    monkeypatch.setattr(os, "stat", lambda p, *a, **k: stats.append(str(p)) or real_stat(p, *a, **k))
    for _ in range(50):  # one mail after another: no file is looked at again, the included one neither
        tpl.render("acknowledgement", "en")
    monkeypatch.setattr(os, "stat", real_stat)
    assert looked.count("en/acknowledgement.j2") == 1
    assert not [p for p in stats if p.endswith(".j2")], stats

    _write(tmp_path, "second wording", 1_000_100)
    clock[0] += templates_mod.RECHECK_SECONDS / 2
    assert tpl.render("acknowledgement", "en").subject == "first wording"  # within the window
    clock[0] += templates_mod.RECHECK_SECONDS
    assert tpl.render("acknowledgement", "en").subject == "second wording"  # the edit, without a restart
    assert tpl.render("acknowledgement", "en").text == "second wording\nthe footer\n"

    _write(tmp_path, "second wording", 1_000_100, footer="a new footer")  # only the included file
    clock[0] += templates_mod.RECHECK_SECONDS
    assert tpl.render("acknowledgement", "en").text == "second wording\na new footer\n"


def test_the_sandbox_still_refuses_internal_attributes_when_asked_again(tmp_path):
    """The sandbox's verdict is kept per type and name: a second ask must refuse as the first."""
    import pytest
    from jinja2.exceptions import SecurityError

    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "acknowledgement.j2").write_text(
        "{% block subject %}{{ customer_name.upper() }}{% endblock %}\n"
        "{% block text %}\n{{ hook.__globals__ }}{{ gen.gi_frame }}\n{% endblock %}\n", encoding="utf-8")
    tpl = Templates(override=tmp_path)

    def hook():
        return None

    for _ in range(3):
        with pytest.raises(SecurityError):
            tpl.render("acknowledgement", "en", customer_name="ann", hook=hook, gen=(x for x in ()))
    # what is safe stays allowed, from the same kept verdicts
    assert tpl.env.getattr("ann", "upper")() == "ANN"
    assert tpl.env.is_safe_attribute(hook, "__globals__", None) is False
    assert tpl.env.is_safe_attribute((x for x in ()), "gi_frame", None) is False
    assert tpl.env.is_safe_attribute((x for x in ()), "send", None) is True


def test_globals_flattened_once_still_follow_a_new_customer_directory(tmp_path):
    """The templates' globals are flattened once per template; naming the organisations anew
    (the customer directory reloaded) must reach the next render, in a brand's set too."""
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "acknowledgement.j2").write_text(
        "{% block subject %}{{ organisation_name(org) }} / {{ person(name, addr) }}{% endblock %}\n"
        "{% block text %}\n{{ signature }}\n{% endblock %}\n", encoding="utf-8")
    tpl = Templates(override=tmp_path)
    brand = tpl.variant(tmp_path, signature="Brand B Care")
    args = dict(org="acme", name="Ann", addr="ann@acme.example")
    assert tpl.render("acknowledgement", "en", **args).subject == "acme / Ann <ann@acme.example>"
    assert brand.render("acknowledgement", "en", **args).text == "Brand B Care\n"
    tpl.name_organisations({"acme": "ACME Corp"}.get)
    assert tpl.render("acknowledgement", "en", **args).subject == "ACME Corp / Ann <ann@acme.example>"
    assert brand.render("acknowledgement", "en", **args).subject == "ACME Corp / Ann <ann@acme.example>"
    tpl.name_organisations({"acme": "Acme Holdings"}.get)
    assert brand.render("acknowledgement", "en", **args).subject == "Acme Holdings / Ann <ann@acme.example>"
    # a value given for one mail wins over a global of the same name, and does not stay
    assert tpl.render("acknowledgement", "en", signature="just this once", **args).text == "just this once\n"
    assert tpl.render("acknowledgement", "en", **args).text == "\n"


def test_the_sandbox_getattr_answers_as_jinjas_own(tmp_path):
    """templates._Sandbox.getattr takes a kept-safe plain attribute in one call; everything else
    must still get Jinja's own answer: str.format sandboxed, internal names refused, item access."""
    import pytest
    from jinja2.exceptions import SecurityError
    from jinja2 import StrictUndefined, Undefined
    from jinja2.sandbox import SandboxedEnvironment

    class Row:
        ref = "TS-000001"
        _secret = "no"

    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "acknowledgement.j2").write_text(
        "{% block subject %}{{ row.ref }} {{ row.ref }} {{ item.name }}{% endblock %}\n"
        "{% block text %}\n{{ fmt.format(row) }}\n{% endblock %}\n", encoding="utf-8")
    tpl = Templates(override=tmp_path)
    jinja = SandboxedEnvironment(undefined=StrictUndefined)
    assert tpl.env.is_safe_attribute("", "format", None)  # the name is safe: only the wrapping makes its call so
    for _ in range(2):  # the second time from the kept verdicts
        assert tpl.render("acknowledgement", "en", row=Row(), item={"name": "x"}, fmt="{0.ref}").subject == \
            "TS-000001 TS-000001 x"
        with pytest.raises(SecurityError):  # a format string reaching past the sandbox
            tpl.render("acknowledgement", "en", row=Row(), item={"name": "x"}, fmt="{0._secret.__class__}")
        for obj, name in ((Row(), "ref"), (Row(), "_secret"), ({"name": "x"}, "name"), ("ann", "upper")):
            mine, theirs = tpl.env.getattr(obj, name), jinja.getattr(obj, name)
            if isinstance(theirs, Undefined):  # refused: the same refusal
                assert isinstance(mine, Undefined) and mine._undefined_exception is SecurityError, (obj, name)
            else:
                assert type(mine) is type(theirs) and (callable(mine) or mine == theirs), (obj, name)
