"""Operations an administrator runs, through the real `supportgw` command (a subprocess):
`quarantine show` and `quarantine drop`, and the start-up sweeps of the files a crash or a
refused write leaves in the spool blob store and the attachment store (README, Operations,
"Large mail")."""

from __future__ import annotations

import hashlib
import json
import os
import time

import pytest

from gateway.pipeline.process import Source, process_pending, spool
from storage.models import SpoolEntry, Ticket
from tests.conftest import fresh_database_url
from tests.gwproc import GatewayProcess, write_run_config
from tests.hardening import cli, count, rows, write_config
from tests.mail import build

LIMIT = {"max_message_size": 10_000}


@pytest.fixture
def quarantined(make_app, tmp_path):
    """An app with one message quarantined (larger than smtp.max_message_size, from IMAP, which
    cannot refuse it) and one processed; its config file for the CLI."""
    app = make_app(smtp=LIMIT)
    big = build(frm="bob@customer.example.com", subject="huge log", msgid="<huge@customer.example.com>",
                body="log line that repeats\n" * 1000)
    small = build(frm="ann@customer.example.com", subject="small", msgid="<small@customer.example.com>")
    spool(app, [(big, Source("imap:helpdesk")), (small, Source("imap:helpdesk"))])
    assert process_pending(app)["quarantined"] == 1
    [bad] = rows(app, SpoolEntry, SpoolEntry.status == "quarantined")
    [good] = rows(app, SpoolEntry, SpoolEntry.status == "processed")
    return app, write_config(app, tmp_path / "gw.toml", smtp=LIMIT), bad, good, big


def _one_line_error(out):
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    return out.stderr


def test_quarantine_show_prints_where_it_came_from_and_the_whole_reason(quarantined):
    app, cfg, bad, good, big = quarantined
    out = cli(cfg, "quarantine", "show", str(bad.id))
    assert out.returncode == 0, out.stderr
    assert f"spool {bad.id} from imap:helpdesk" in out.stdout and "status quarantined" in out.stdout
    assert "message-id: huge@customer.example.com" in out.stdout
    assert f"size: {len(big)}" in out.stdout
    assert bad.error and bad.error in out.stdout  # the full reason, not only list's first line
    assert "max_message_size" in out.stdout


def test_quarantine_show_of_an_unknown_id_is_a_one_line_error(quarantined):
    _, cfg, bad, _, _ = quarantined
    err = _one_line_error(cli(cfg, "quarantine", "show", str(bad.id + 1000)))
    assert f"no spool entry {bad.id + 1000}" in err and "quarantine list" in err


def test_quarantine_drop_takes_it_off_the_list_and_keeps_the_bytes(quarantined):
    app, cfg, bad, _, big = quarantined
    out = cli(cfg, "quarantine", "drop", str(bad.id))
    assert out.returncode == 0, out.stderr
    assert "dropped 1" in out.stdout
    with app.db.session() as s:
        entry = s.get(SpoolEntry, bad.id)
        assert entry.status == "dropped" and entry.raw == big  # a decision, not a deletion
    listed = cli(cfg, "quarantine", "list", "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == []
    # `retry all` leaves a dropped message alone, and `show` still finds it
    assert cli(cfg, "quarantine", "retry", "all").returncode == 0
    assert count(app, Ticket) == 1 and rows(app, SpoolEntry, SpoolEntry.id == bad.id)[0].status == "dropped"
    shown = cli(cfg, "quarantine", "show", str(bad.id))
    assert shown.returncode == 0 and "status dropped" in shown.stdout


def test_quarantine_drop_of_a_processed_message_is_refused_and_drops_nothing(quarantined):
    app, cfg, bad, good, _ = quarantined
    err = _one_line_error(cli(cfg, "quarantine", "drop", str(bad.id), str(good.id)))
    assert f"spool {good.id} is processed, not quarantined" in err
    statuses = {e.id: e.status for e in rows(app, SpoolEntry)}
    assert statuses == {bad.id: "quarantined", good.id: "processed"}  # all or nothing


# ---------------------------------------------------------------- start-up sweeps

DAY = 86400


def _file(path, data: bytes, age: float):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    t = time.time() - age
    os.utime(path, (t, t))
    return path


def _blob(root, data: bytes, age: float):
    sha = hashlib.sha256(data).hexdigest()
    return _file(root / sha[:2] / sha[2:4] / sha, data, age)


def test_start_removes_stale_half_written_files_and_orphans_and_keeps_the_rest(tmp_path, relay):
    """`supportgw run` with its worker process: what a crash left is swept at start, what is in
    use or may still be claimed is kept."""
    url = fresh_database_url(tmp_path)
    cfg, port = write_run_config(tmp_path, url, relay.port, gateway={"spool_inline_max": 4096})
    var = tmp_path / "var"
    blobs, atts = var / "spool-blobs", var / "attachments"

    # a large mail that really went through the spool: its file is named by a spool row
    from gateway.app import build_app
    from gateway.config import load_config

    app = build_app(load_config(cfg), migrate=False)
    try:
        big = build(subject="big", msgid="<big@customer.example.com>", body="a line of a long log\n" * 1000)
        [spooled] = spool(app, [(_stored(app, big), Source("smtp"))])
        with app.db.session() as s:
            row = s.get(SpoolEntry, spooled.spool_id)
            assert row.raw is None
            named = app.spool_blobs.path_for(row.sha256)
    finally:
        app.db.dispose()
    old = time.time() - 2 * DAY
    os.utime(named, (old, old))  # old, but a spool row names it: kept

    stale_tmp = _file(blobs / "tmp" / "in.123.abc.dead", b"half a message", age=2 * 3600)
    fresh_tmp = _file(blobs / "tmp" / "in.456.def.live", b"being written now", age=60)
    stale_att_tmp = _file(atts / "tmp" / "in.789.fed.dead", b"half an attachment", age=2 * 3600)
    fresh_att_tmp = _file(atts / "tmp" / "in.790.fed.live", b"attachment being written", age=60)
    orphan = _blob(blobs, b"message whose row never committed (451)", age=2 * DAY)
    young_orphan = _blob(blobs, b"message whose sender may still retry", age=3600)
    attachment = _blob(atts, b"a stored attachment", age=30 * DAY)

    gw = GatewayProcess(cfg, port, tmp_path / "gw.log")
    gw.start()  # listening means the sweeps are done: they run before the edges start
    try:
        gone = [p for p in (stale_tmp, stale_att_tmp, orphan) if p.exists()]
        kept = [p for p in (fresh_tmp, fresh_att_tmp, young_orphan, named, attachment) if not p.exists()]
        assert gone == [] and kept == []
        log = (tmp_path / "gw.log").read_text()
        assert log.count("removed 1 half-written file(s)") == 2  # spool-blobs/tmp and attachments/tmp
        assert "removed 1 spooled message file(s)" in log
    finally:
        assert gw.terminate(30) == 0


def _stored(app, raw: bytes):
    from storage.spool import SpoolSink

    sink = SpoolSink(app.spool_blobs, app.config.gateway.spool_inline_max)
    sink.write(raw)
    return sink.finish()
