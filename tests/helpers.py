"""What tests share to synchronise: waiting on a condition (blocking or on the reactor), the real
reactor, and a fake process reactor for the server's command channel.

Tests wait for the event a sleep would stand for (a log line, an HTTP answer, a row, a process
gone) so they are as fast as the code allows and fail with a message naming what never came.
The agent's richer process fakes live in ``tests/agent/agent_fakes.py``.
"""
from __future__ import annotations

import inspect
import time
from typing import Any, Awaitable, Callable, TypeVar

from twisted.internet.task import Clock, deferLater

T = TypeVar("T")

INTERVAL = 0.05  # short enough to add little latency, long enough not to hog a shared core


def _timed_out(what: str, timeout: float, last: object) -> AssertionError:
    return AssertionError(f"timed out after {timeout} s waiting for {what} (last value: {last!r})")


def wait_for(condition: Callable[[], T], timeout: float, what: str,
             interval: float = INTERVAL) -> T:
    """Poll ``condition`` until it returns something truthy, and return that.

    Blocking, for tests outside the reactor (real server processes). An exception from
    ``condition`` ends the wait at once: a condition can fail fast (e.g. "the process died").
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise _timed_out(what, timeout, value)
        time.sleep(interval)


async def until(condition: Callable[[], T | Awaitable[T]], timeout: float, what: str,
                interval: float = INTERVAL) -> T:
    """:func:`wait_for` for pytest-twisted tests: polls on the real reactor without blocking it.

    ``condition`` may be a coroutine function (e.g. one querying the database).
    """
    deadline = time.monotonic() + timeout
    while True:
        value: Any = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() >= deadline:
            raise _timed_out(what, timeout, value)
        await deferLater(reactor(), interval, lambda: None)


def reactor() -> Any:
    """The global reactor pytest-twisted runs, looked up late so that it is the installed one."""
    from twisted.internet import reactor as installed

    return installed


class FakeProcessTransport:
    """What a process protocol sees: records stdin, the closing of stdin and signals sent."""

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol
        self.written = b""
        self.signals: list[str] = []
        self.stdin_closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    def closeStdin(self) -> None:
        self.stdin_closed = True

    def loseConnection(self) -> None:
        pass

    def signalProcess(self, name: str) -> None:
        self.signals.append(name)


class FakeProcessReactor(Clock):
    """A Clock that "spawns" processes: each spawn is recorded as
    ``(executable, args, env, path, transport)``; the test ends it through
    ``transport.protocol.processExited``."""

    def __init__(self) -> None:
        super().__init__()
        self.spawned: list[tuple[str, list[str], dict, str, FakeProcessTransport]] = []

    def spawnProcess(self, protocol: Any, executable: str, args: list[str], env: dict,
                     path: str) -> FakeProcessTransport:
        transport = FakeProcessTransport(protocol)
        self.spawned.append((executable, args, env, path, transport))
        protocol.makeConnection(transport)
        return transport
