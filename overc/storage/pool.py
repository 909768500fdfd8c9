"""The adbapi pool under :class:`overc.storage.db.Database`: several hosts, commit in our hands.

Two things adbapi does not do, and a Galera cluster needs:

- **Several hosts** (``mysql://u:p@db1,db2,db3/overc``): a connection is opened to the host in
  use, else to the next one that answers (cyclically, in the operator's order); a host whose
  Galera node is not ready (``wsrep_ready=OFF``: joining, donor, outside the primary component)
  does not count as answering. A lost connection is dropped and the next host becomes the one
  in use; every other connection to the lost host is dropped at its next use too (one thread
  finding the host gone is enough), so the retry that follows goes to a live host.
- **The commit is part of the interaction**, so the caller knows whether an error came before
  COMMIT (nothing was written: safe to run again, on any host) or from COMMIT itself (a lost
  connection there leaves the outcome unknown: the caller must not guess).
"""
from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Any, Callable

from twisted.enterprise import adbapi
from twisted.logger import Logger

log = Logger()


class CommitInDoubt(Exception):
    """The connection was lost during COMMIT: the transaction may or may not have committed."""


class NodeNotReady(Exception):
    """The host answered, but its Galera node does not take queries (wsrep_ready is OFF)."""


@dataclass(frozen=True)
class RetryPolicy:
    """Whole-transaction retries on conflicts (1213/1205) and lost connections: capped
    exponential backoff with full jitter, so two writers that collided do not collide again
    in lockstep. ``attempts`` is the total number of runs."""

    attempts: int = 10
    base: float = 0.01
    cap: float = 0.5

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before run ``attempt + 1`` (``attempt`` counts from 1)."""
        return rng.uniform(0, min(self.cap, self.base * (2 ** (attempt - 1))))


class Pool(adbapi.ConnectionPool):
    """An adbapi pool that tries ``hosts`` in turn and lets the interaction commit."""

    def __init__(self, dbapi_name: str, *connargs: Any,
                 hosts: tuple[tuple[str, int], ...] = (),
                 is_connection_error: Callable[[BaseException], bool] = lambda e: False,
                 **connkw: Any) -> None:
        super().__init__(dbapi_name, *connargs, **connkw)
        self.hosts = hosts
        self.is_connection_error = is_connection_error
        self._current = 0
        self._host_lock = threading.Lock()
        #: per host: how many times a connection to it was found lost
        self._losses = [0] * len(hosts)
        self.failovers = 0
        self._last_used: int | None = None

    def host_in_use(self) -> str | None:
        """``host:port`` new connections go to (None for SQLite)."""
        if not self.hosts:
            return None
        host, port = self.hosts[self._current]
        return f"{host}:{port}"

    def connect(self) -> Any:
        tid = self.threadID()
        conn = self.connections.get(tid)
        if conn is not None and self.hosts:
            index, losses = getattr(conn, "_overc_host", (0, 0))
            if self._losses[index] != losses:  # its host was lost since it was opened
                self._close(conn)
                del self.connections[tid]
                conn = None
        if conn is None:
            conn = self._open() if self.hosts else self.dbapi.connect(*self.connargs,
                                                                      **self.connkw)
            if not self.hosts and self.openfun is not None:
                self.openfun(conn)
            self.connections[tid] = conn
        return conn

    def _open(self) -> Any:
        with self._host_lock:
            start = self._current
        failures = []
        for step in range(len(self.hosts)):
            index = (start + step) % len(self.hosts)
            host, port = self.hosts[index]
            conn = None
            try:
                conn = self.dbapi.connect(*self.connargs, host=host, port=port, **self.connkw)
                if self.openfun is not None:
                    self.openfun(conn)
            except Exception as error:
                failures.append(f"{host}:{port}: {error}")
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:
                        pass
                continue
            conn._overc_host = (index, self._losses[index])
            with self._host_lock:
                if index != self._last_used:
                    if self._last_used is not None:
                        self.failovers += 1
                    (log.warn if failures else log.info)(
                        "Database: now using {host}:{port}{why}", host=host, port=port,
                        why=(" (" + "; ".join(failures) + ")") if failures else "")
                self._current = self._last_used = index
            return conn
        # Shaped like a driver error, so the dialect classifies it as "unreachable" (503).
        raise self.dbapi.err.OperationalError(
            2003, "no database host answered: " + "; ".join(failures))

    def _runWithConnection(self, func: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        # As adbapi's, minus its commit (``func`` commits) and keeping the original error:
        # adbapi's rollback replaces it with ConnectionLost when the connection is gone.
        conn = self.connectionFactory(self)
        try:
            return func(conn, *args, **kw)
        except BaseException as error:
            self._after_error(conn, error)
            raise

    def _after_error(self, conn: Any, error: BaseException) -> None:
        raw = conn._connection
        if not self.is_connection_error(error) and not isinstance(error, CommitInDoubt):
            try:
                raw.rollback()
                return
            except Exception:
                pass
        # The connection is gone or its node unusable: drop it (and, at their next use, every
        # connection to that host); the next connection goes to the next host first.
        if self.hosts and raw is not None:
            index, _ = getattr(raw, "_overc_host", (0, 0))
            with self._host_lock:
                self._losses[index] += 1
                if index == self._current:
                    self._current = (index + 1) % len(self.hosts)
        if raw is not None and self.connections.get(self.threadID()) is raw:
            self.disconnect(raw)
