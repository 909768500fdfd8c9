"""Small helpers every store shares: placeholder lists, chunked ``IN (...)`` lists, and rows
read by column name instead of by position.
"""
from __future__ import annotations

from collections import namedtuple
from typing import Any, Iterable, Sequence, TypeVar

V = TypeVar("V")
#: Rows per ``IN (...)`` list: far below SQLite's and MySQL's parameter limits.
CHUNK = 500


def marks(values: Sequence[object]) -> str:
    """``?, ?, ?``: one placeholder per value."""
    return ", ".join("?" * len(values))


def chunks(values: Sequence[V], size: int = CHUNK) -> Iterable[Sequence[V]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


class Columns:
    """A SELECT list whose rows are read by name.

    ``Columns("Due", id="id", server_id="server_id")`` gives ``.sql`` (``id, server_id``) and
    ``.read(row)``, a named tuple: ``row.server_id`` where code said ``row[1]``. Named tuples
    cost one allocation per row, cheap beside the query that made it.
    """

    def __init__(self, typename: str, **expressions: str) -> None:
        self.sql = ", ".join(expressions.values())
        self.names = tuple(expressions)
        self._type = namedtuple(typename, self.names)  # type: ignore[misc]

    def read(self, row: Sequence[Any]) -> Any:
        return self._type._make(row)

    def read_all(self, rows: Iterable[Sequence[Any]]) -> list[Any]:
        make = self._type._make
        return [make(row) for row in rows]

    def as_dict(self, row: Sequence[Any]) -> dict[str, Any]:
        return dict(zip(self.names, row))
