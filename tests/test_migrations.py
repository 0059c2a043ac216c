"""The migrations build the schema the models describe, and 0009 comes and goes cleanly."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from storage.migrate import alembic_config
from storage.models import Base
from tests.conftest import fresh_database_url

HOT_INDEXES = {("spool", "ix_spool_ticket_id"), ("outbox", "ix_outbox_source_spool_id"),
               ("tickets", "ix_tickets_linked_ticket_id"), ("tickets", "ix_tickets_merged_into_id")}


def _indexes(engine) -> set[tuple[str, str]]:
    insp = inspect(engine)
    return {(t, ix["name"]) for t in ("spool", "outbox", "tickets") for ix in insp.get_indexes(t)}


def _index_differences(engine) -> list:
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    return [d for d in diffs if isinstance(d, tuple) and d[0] in ("add_index", "remove_index")]


def test_migrated_schema_has_every_index_the_models_declare(tmp_path):
    url = fresh_database_url(tmp_path)
    engine = create_engine(url)
    try:
        assert HOT_INDEXES <= _indexes(engine)
        assert _index_differences(engine) == []
    finally:
        engine.dispose()


def test_hot_indexes_migration_downgrades_and_upgrades(tmp_path):
    url = fresh_database_url(tmp_path)
    cfg = alembic_config(url)
    engine = create_engine(url)
    try:
        command.downgrade(cfg, "0008_ops")
        assert not HOT_INDEXES & _indexes(engine)
        missing = {d[1].name for d in _index_differences(engine) if d[0] == "add_index"}
        assert missing == {name for _, name in HOT_INDEXES}
        command.upgrade(cfg, "head")
        assert HOT_INDEXES <= _indexes(engine)
    finally:
        engine.dispose()


def test_a_database_newer_than_the_code_is_refused_in_one_line(tmp_path):
    """An older release started on a database a newer one migrated: exit 2, one line that says
    what to do, no alembic traceback, and the database is left as it was."""
    from sqlalchemy import text

    from tests.gwproc import write_run_config
    from tests.hardening import cli

    url = fresh_database_url(tmp_path)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0099_from_the_future'"))
        config, _ = write_run_config(tmp_path, url, 25)
        for args in (("db", "upgrade"), ("run",)):
            out = cli(config, *args)
            assert out.returncode == 2, out.stderr
            lines = [ln for ln in out.stderr.splitlines() if ln.startswith("supportgw:")]
            assert len(lines) == 1 and "0099_from_the_future" in lines[0] and "newer than this supportgw" in lines[0]
            assert "Traceback" not in out.stderr
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0099_from_the_future"
    finally:
        engine.dispose()
