"""Catching up after an outage: `supportgw imap backfill NAME --since DATE`.

Owns taking every message of a configured mailbox since a date that the gateway
does not already have, whatever its \\Seen flag (a person may have read the
mail in their client while the gateway was down), through the one pipeline as
live mail: spooled (so the spool's dedupe key, Message-ID plus content, makes
each message count once, whether the poller or this command takes it first),
then processed. So a message is acknowledged unless it is older than
`workflow.history_age_days` (gateway/handlers/history.py), and a copy of a message the
gateway already has, by other bytes, is recognised by Message-ID and sender as
the pipeline always does.

Must not: change the mailbox. The folder is opened read-only and fetched with
BODY.PEEK: no flag is set, nothing moved or deleted; the poller's `after` rule
stays the poller's business.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import date

from gateway.edges import imap_batch
from gateway.edges.imap import source_of
from gateway.edges.imap_conn import close, connect
from gateway.pipeline.process import process_ids, spool
from storage.queries import spool as spool_rows
from storage.spool import SpoolSink

log = logging.getLogger("supportgw.backfill")


def backfill(app, mb, since: date, *, folder: str | None = None, batch_size: int = 100) -> dict:
    """Take what the gateway lacks of `mb`'s folder since `since` (IMAP SINCE: by internal date, whole days).

    Returns {"found", "already_had", "taken", outcome counts..., "messages": [...]}: one entry per
    message taken, with its Message-ID, what happened to it and its ticket."""
    source = source_of(mb)
    client = connect(mb)
    counts: Counter = Counter()
    taken: list[dict] = []
    try:
        client.select_folder(folder or mb.folder, readonly=True)
        uids = sorted(client.search(["SINCE", since, "NOT", "DELETED"]))
        counts["found"] = len(uids)
        sink = lambda: SpoolSink(app.spool_blobs, app.config.gateway.spool_inline_max)  # noqa: E731
        for batch in imap_batch.plan(client, uids, batch_size):
            msgs = imap_batch.fetch(client, batch, sink=sink)
            if not msgs:
                continue
            spooled = spool(app, [(raw, source) for _, raw in msgs])
            fresh = [sp.spool_id for sp in spooled if not sp.duplicate]
            counts["already_had"] += len(spooled) - len(fresh)
            counts.update(process_ids(app, fresh))
            taken.extend(_describe(app, fresh))
    finally:
        close(client)
    # "duplicate": new bytes, but the same Message-ID and sender the gateway stored by another path
    counts["already_had"] += counts.pop("duplicate", 0)
    counts["taken"] = sum(1 for t in taken if t["outcome"] != "duplicate")
    log.info("imap %s: backfill since %s: %d found, %d already had, %d taken (%s)", mb.name, since,
             counts["found"], counts["already_had"], counts["taken"],
             ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if k not in ("found", "already_had", "taken")))
    return {**counts, "messages": [t for t in taken if t["outcome"] != "duplicate"]}


def _describe(app, ids: list[int]) -> list[dict]:
    if not ids:
        return []
    with app.db.session() as s:
        # the ticket through the stored message: a handler that opened a ticket stored it there
        rows = spool_rows.outcomes(s, ids)
    rows = list({r[0]: r for r in rows}.values())  # one line per message
    return [{"spool_id": i, "message_id": mid, "outcome": status if status != "processed" else "taken",
             "ticket": ref or ""} for i, mid, status, ref in rows]
