"""Many rows in one INSERT: the ingest's batch statements, written for the least work on both
ends of the connection.

MariaDB/MySQL get one multi-row ``VALUES`` statement whose literals are written here, by the
kind of each column, instead of by PyMySQL's ``executemany`` (which escapes every value in
Python: 12 % of the ingest's CPU in a py-spy profile):

- text as a hex literal with a charset introducer, ``_utf8mb4 X'...'``: nothing to escape,
  whatever the text holds (``bytes.hex()`` of a 12 KB info takes 0.02 ms; PyMySQL's escaping
  of it 0.49 ms);
- doubles as ``repr``, which reads back to the last bit; integers as digits; ``None`` as NULL
  (written by the C JSON encoder, see :func:`_values`).

This replaced one ``JSON_TABLE`` document per statement, which cost the client about the same
but MariaDB far more: for the 25-column upsert of ``services``, ``JSON_TABLE`` looks up every
column's path from the start of its row, and mariadbd spent 30 us more per upserted row, 20 %
more for the whole batch transaction (``python bench/ingest_batch.py``, bench/RESULTS.md).

The conversion to the table's column (length, strict mode, the binary collation) happens at
the INSERT exactly as for any literal. Non-finite doubles are refused (ValueError): SQL has no
literal for them. SQLite keeps ``executemany``, which binds in C.
"""
from __future__ import annotations

import json
from functools import lru_cache
from typing import Sequence

from overc.storage.db import Cursor
from overc.storage.rows import marks

#: The kinds of column values: each says how a value of it is written as a literal.
ID, INT, DOUBLE, TEXT = "id", "int", "double", "text"

#: The longest statement text (bytes); a larger batch is split in halves. Well under
#: max_allowed_packet (16 MiB by default), which a batch of large infos could pass (the server
#: would drop the connection).
MAX_STATEMENT = 4 * 1024 * 1024


#: Numbers, null and the brackets of rows come from the C encoder: ``repr`` of a double reads
#: back to the last bit, a non-finite one is refused (ValueError: SQL has no literal for it).
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False, check_circular=False)
#: JSON's row brackets become SQL's parentheses; the quotes JSON puts around the hex literals go.
_JSON_TO_SQL = str.maketrans({"[": "(", "]": ")", '"': None})


@lru_cache(maxsize=64)
def _text_columns(kinds: tuple[str, ...]) -> tuple[int, ...]:
    return tuple(i for i, kind in enumerate(kinds) if kind == TEXT)


def _values(kinds: tuple[str, ...], rows: Sequence[Sequence]) -> str:
    """``(...),(...)``: the rows as SQL literals.

    Only the text columns are written here, as hex literals (nothing to escape); the C JSON
    encoder writes everything else, which a call per value in Python cost twice as much
    (13 % of a push's GIL time, bench/profile_ingest.py). JSON's text is SQL's once its
    brackets are parentheses and its quotes are dropped: numbers are digits, ``null`` and
    ``true`` are SQL too, and the only strings are the hex literals. A string anywhere else
    would break that, so the quotes are counted first and any stray one refused.
    """
    text = _text_columns(kinds)
    strings = 0
    converted = []
    for row in rows:
        values = list(row)
        for i in text:
            value = values[i]
            if value is not None:
                values[i] = "_utf8mb4 X'" + value.encode("utf-8").hex() + "'"
                strings += 1
        converted.append(values)
    document = _ENCODER.encode(converted)
    if document.count('"') != 2 * strings:
        raise TypeError("a string in a column whose kind is not TEXT")
    return document[1:-1].translate(_JSON_TO_SQL)


@lru_cache(maxsize=64)
def _placeholders(head: str, kinds: tuple[str, ...], tail: str) -> str:
    return f"{head} VALUES ({marks(kinds)}){tail}"


class Writes:
    """A transaction's INSERTs, sent together: on MySQL/MariaDB as one multi-statement (one
    round trip for the batch's history, perfdata, alerts and upserts instead of one each:
    every round trip also waits for the GIL in the pool thread while the reactor parses
    requests); on SQLite each ``executemany`` runs at once, there being no round trip.

    Only statements of literals are held, never a parameter, so nothing is ever formatted
    into them; a failed statement ends the round trip with its error (the ones after it are
    not run) and the transaction rolls back. Call :meth:`send` before reading anything the
    held statements write, and before the transaction ends.
    """

    def __init__(self, cursor: Cursor) -> None:
        self.cursor = cursor
        self.mysql = cursor.dialect.name == "mysql"
        self.pending: list[str] = []
        self.size = 0

    def insert(self, head: str, kinds: tuple[str, ...], rows: Sequence[Sequence],
               tail: str = "") -> None:
        if not rows:
            return
        if not self.mysql:
            self.cursor.executemany(_placeholders(head, kinds, tail), list(rows))
            return
        values = _values(kinds, rows)
        if len(values) > MAX_STATEMENT and len(rows) > 1:
            middle = len(rows) // 2
            self.insert(head, kinds, rows[:middle], tail)
            self.insert(head, kinds, rows[middle:], tail)
            return
        if self.size + len(values) > MAX_STATEMENT:
            self.send()  # one round trip stays well under max_allowed_packet
        self.pending.append(f"{head} VALUES {values}{tail}")
        self.size += len(values)

    def send(self) -> None:
        """Run the held statements (one round trip), raising the first one's error."""
        pending, self.pending, self.size = self.pending, [], 0
        if not pending:
            return
        # Straight to the driver: no parameters, so PyMySQL does no %-formatting ("%" in a
        # head or tail is literal), and a statement used once stays out of the dialect's
        # cache. Every result is read: the next statement of the connection needs that.
        self.cursor.execute_all(pending)
