"""The garbage collector's settings for a process that turns mail into tickets.

CPython collects its youngest objects after every 700 new container objects, and now
and then walks every object the process holds. A store stage makes about a hundred
such objects a message (rows, parsed parts, ORM state) and frees nearly all of them by
reference count at once, so the young collections found almost nothing, some fifty times
per 1,000 messages; and each full collection walked everything built at start (modules,
SQLAlchemy's metadata, compiled templates), none of which ever becomes garbage.

`settle()` is called once a long-running process has built its app (`supportgw run`, its
worker, `supportgw ingest`): what is alive then is moved out of the collector's way
(`gc.freeze`), and the youngest generation may grow to `YOUNG` objects before a collection.
Cycles are still collected; only less often, a few thousand objects later.
"""

from __future__ import annotations

import gc

YOUNG = 5000  # new container objects before a young collection (CPython's default: 700)

_settled = False


def settle() -> None:
    """Once per process: freeze what was built at start, and collect the young less often."""
    global _settled
    if _settled:
        return
    _settled = True
    gc.collect()  # what start-up left as garbage goes now, not frozen with the rest
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG, older, oldest)
