"""Small helpers every store shares: placeholder lists, chunked ``IN (...)`` lists, and rows
read by column name instead of by position.
"""
from __future__ import annotations

from operator import itemgetter
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
    ``.read(row)``, a tuple whose items are also attributes: ``row.server_id`` where code said
    ``row[1]``. One allocation per row, cheap beside the query that made it.
    """

    def __init__(self, typename: str, **expressions: str) -> None:
        self.sql = ", ".join(expressions.values())
        self.names = tuple(expressions)
        fields = {name: property(itemgetter(i)) for i, name in enumerate(self.names)}
        # Any: the attributes exist only at runtime, which is the point of reading by name.
        self._type: Any = type(typename, (tuple,), {"__slots__": (), **fields})

    def read(self, row: Sequence[Any]) -> Any:
        return self._type(row)

    def read_all(self, rows: Iterable[Sequence[Any]]) -> list[Any]:
        make = self._type
        return [make(row) for row in rows]

    def as_dict(self, row: Sequence[Any]) -> dict[str, Any]:
        return dict(zip(self.names, row))
