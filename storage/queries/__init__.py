"""Named queries, one module per table they are about (as Mailman 3's model managers).

`gateway/` asks these instead of writing `select()` itself: a question asked in three
places is one function here, and a reader finds every way a table is read next to the
models (`storage/models.py`). Statements asked for every message are built once, at
import, with bind parameters: building a statement costs SQLAlchemy more than running it.

Each function takes the session first; none commits, none imports `gateway/`.
"""
