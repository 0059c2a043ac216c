"""Schema migrations (alembic), callable from the CLI and from tests."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

HERE = Path(__file__).resolve().parent


class SchemaTooNew(Exception):
    """The database was migrated by a newer supportgw than this one: nothing here may touch it."""


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(HERE / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _refuse_unknown_revision(cfg: AlembicConfig, url: str) -> None:
    """Alembic meets a revision it has no script for with a traceback ("Can't locate
    revision"); that is a person's mistake (an older release started on a newer database),
    so say it in one line instead."""
    script = ScriptDirectory.from_config(cfg)
    known = {rev.revision for rev in script.walk_revisions()}
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
    finally:
        engine.dispose()
    unknown = sorted(current - known)
    if unknown:
        shown = make_url(url).render_as_string(hide_password=True)
        raise SchemaTooNew(
            f"the database {shown} is at schema revision {', '.join(unknown)}, newer than this supportgw "
            f"knows (its newest is {script.get_current_head()}); run the release that migrated it, "
            f"or restore a backup taken before")


def upgrade(url: str, revision: str = "head") -> None:
    cfg = alembic_config(url)
    _refuse_unknown_revision(cfg, url)
    command.upgrade(cfg, revision)
