"""What tests share to synchronise: waiting on a condition (blocking or on the reactor), the real
reactor, and a fake process reactor (for the command channel and the agent's plugins).

Tests wait for the event a sleep would stand for (a log line, an HTTP answer, a row, a process
gone) so they are as fast as the code allows and fail with a message naming what never came.
"""
from __future__ import annotations

import inspect
import time
from typing import Any, Awaitable, Callable, TypeVar

from twisted.internet import error
from twisted.internet.task import deferLater
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure

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


class FakeProcess:
    """What ``spawnProcess`` returns: records signals; the test makes it exit and end."""

    def __init__(self, reactor, protocol, executable, args, env, path, pid):
        self.reactor, self.protocol = reactor, protocol
        self.executable, self.args, self.env, self.path, self.pid = executable, args, env, path, pid
        self.signals: list[tuple[float, str]] = []  # (when, signal name)
        self.written = b""
        self.stdin_closed = False
        self.lost = False
        self.exited: Failure | None = None
        self.ended = False

    # ITransport bits the protocol uses
    def write(self, data: bytes) -> None:
        self.written += data

    def closeStdin(self) -> None:
        self.stdin_closed = True

    def signalProcess(self, sig: str) -> None:
        if self.exited is not None:
            raise error.ProcessExitedAlready()
        self.signals.append((self.reactor.seconds(), sig))

    def loseConnection(self) -> None:
        self.lost = True
        if self.exited is not None and not self.ended:
            self.end()

    # Test controls
    def out(self, data: bytes) -> None:
        self.protocol.outReceived(data)

    def err(self, data: bytes) -> None:
        self.protocol.errReceived(data)

    def exit(self, code: int | None = 0, signal: int | None = None, end: bool = True) -> None:
        if signal is None and code == 0:
            reason = Failure(error.ProcessDone(0))
        else:
            reason = Failure(error.ProcessTerminated(exitCode=code, signal=signal))
        self.exited = reason
        self.protocol.processExited(reason)
        if end:
            self.end()

    def end(self) -> None:
        self.ended = True
        self.protocol.processEnded(self.exited)


class FakeProcessReactor(MemoryReactorClock):
    """A MemoryReactorClock that also 'spawns' processes (cf. twisted.runner's procmon tests)."""

    def __init__(self) -> None:
        super().__init__()
        self.processes: list[FakeProcess] = []
        self.spawn_error: Exception | None = None

    def spawnProcess(self, processProtocol, executable, args=(), env=None, path=None, uid=None, gid=None, usePTY=0, childFDs=None):
        if self.spawn_error is not None:
            raise self.spawn_error
        p = FakeProcess(self, processProtocol, executable, args, env, path, 1000 + len(self.processes))
        self.processes.append(p)
        processProtocol.makeConnection(p)
        return p


