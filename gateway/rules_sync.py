"""One rules generation for every process of every gateway on a database.

The edge process of `supportgw run` is the one that reads the rules file (at
start, when the file is saved, on SIGHUP). A file that loads is *published*: its
exact text becomes the newest row of `rules_generations`, whose id is the
generation number. Every process (the edge itself, its worker processes, the
processes of other gateways on the same PostgreSQL) *follows*: before it routes
a batch of mail or runs a scheduled job it reads the newest generation and, when
it is not the one it applies, compiles that text. A broken file is never
published, so it changes nothing anywhere; only the edge that read it logs it,
once per save.

Why the text and not just a hash: a worker reading the file itself could find
it saved again (or broken) since the edge checked it, and apply other rules
than the edge. Compiling the stored text, every process applies exactly what
was validated. The last successful publication wins, from whichever gateway.

Owns `publish`, `reload_from_file` (the edge) and `follow` (everyone). It does
not decide when to reload: gateway.runtime.runner does.
"""

from __future__ import annotations

import logging

from sqlalchemy import insert

from routing.loader import LoadedRules, RulesError, RulesHolder, rules_from_text
from storage.db import StorageUnavailable
from storage.models import RulesGeneration
from storage.queries import rules as generations

log = logging.getLogger("supportgw.rules")

# generations this process could not compile (another version of the code published them): logged once
_refused: set[int] = set()


def newest(app) -> tuple[int, str] | None:
    """(generation, sha256) of the rules in force on this database; None before the first publication."""
    with app.db.connection() as conn:
        row = generations.newest(conn)
    return (row[0], row[1]) if row else None


def publish(app, loaded: LoadedRules | None = None) -> int:
    """Put these rules (default: the holder's) in force everywhere; returns their generation.

    Publishing the text already newest adds no generation: every gateway sharing
    one rules file reads the same save, and only the first one's counts."""
    holder: RulesHolder = app.rules
    with holder.lock:
        loaded = loaded or holder.loaded
        with app.db.write_lock(), app.db.connection() as conn:
            row = generations.newest(conn)
            if row is not None and row[1] == loaded.sha256:
                generation = row[0]
            else:
                generation = conn.execute(insert(RulesGeneration).values(
                    sha256=loaded.sha256, text=loaded.text, source=str(loaded.config.path or holder.path),
                    at=app.now(), published_by=app.worker_id)).inserted_primary_key[0]
        fresh = holder.generation != generation
        holder.install(loaded, generation)
    if fresh:
        log.info("routing rules generation %s in force (%d rules from %s)", generation, len(loaded.config.rules),
                 loaded.config.path or holder.path)
    return generation


def reload_from_file(app, *, only_if_changed: bool = False) -> bool | None:
    """The edge: read the file and publish it. True: in force; False: refused (old rules
    stay, logged); None: the file did not change."""
    holder: RulesHolder = app.rules
    with holder.lock:
        if only_if_changed and not holder.changed():
            return None
        loaded = holder.read()  # logs a broken file
        if loaded is None:
            return False
        try:
            publish(app, loaded)
        except StorageUnavailable as exc:
            holder.forget_attempt()  # try again at the next check
            log.error("routing rules not reloaded: cannot record them in the database (%s); trying again", exc)
            return False
    return True


def follow(app) -> bool:
    """Apply the newest published generation if this process does not already; True when it changed.

    A database without any generation (a test, `supportgw ingest` with no gateway
    ever run) leaves the rules this process loaded from the file alone."""
    holder = app.rules
    if not isinstance(holder, RulesHolder):
        return False
    top = newest(app)
    if top is None or top[0] == holder.generation:
        return False
    generation, sha = top
    with holder.lock:
        if holder.generation is not None and holder.generation > generation:
            return False  # published meanwhile by this very process
        if sha == holder.loaded.sha256:
            holder.install(holder.loaded, generation)
            return False
        with app.db.connection() as conn:
            row = generations.text_of(conn, generation)
        try:
            loaded = rules_from_text(row[0], row[1] or holder.path)
        except RulesError as exc:
            if generation not in _refused:
                _refused.add(generation)
                log.error("routing rules generation %s cannot be applied here, the old rules stay:\n%s",
                          generation, exc)
            return False
        holder.install(loaded, generation)
    log.info("routing rules generation %s applied (%d rules)", generation, len(loaded.config.rules))
    return True


def holder_from_database(db, path) -> RulesHolder | None:
    """The newest generation as a holder, for a process that starts while the file may be broken.
    None (start from the file) when there is none or the database is away: `follow` catches up."""
    try:
        with db.connection() as conn:
            row = generations.newest_text(conn)
    except StorageUnavailable:
        return None
    if row is None:
        return None
    try:
        holder = RulesHolder(path, loaded=rules_from_text(row[1], row[2] or path))
    except RulesError:
        return None
    holder.generation = row[0]
    return holder
