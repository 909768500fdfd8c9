"""Command channels: a child process per notification, the alert text on its stdin.

Run without a shell in the config file's folder, with the ``OVERC_*`` environment (1.x plugins
keep working). Exit 0 means delivered. The process is watched through a ``ProcessProtocol``,
never waited for on the reactor thread, and killed (TERM, then KILL) when it outlives its timeout.
"""
from __future__ import annotations

import os
import shutil
from typing import Any, Sequence

from twisted.internet.defer import Deferred
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from overc.core.alerts import Alert
from overc.core.notification_text import command_environment
from overc.notify.base import ChannelSpec, DeliveryError, render_body

log = Logger()
OUTPUT_CAP = 4096  # enough of the channel's output to explain a failure
KILL_GRACE = 2.0
DRAIN = 1.0  # how long the output of an exited program is still read


class _ChannelProcess(ProcessProtocol):
    def __init__(self, stdin: bytes, clock: Any) -> None:
        self.stdin = stdin
        self.clock = clock
        self.output = bytearray()
        self.exited: Deferred[BaseException] = Deferred()
        self._reason: BaseException | None = None
        self._drain: Any = None

    def connectionMade(self) -> None:
        assert self.transport is not None  # set by spawnProcess before this call
        self.transport.write(self.stdin)
        self.transport.closeStdin()

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        room = OUTPUT_CAP - len(self.output)
        if room > 0:
            self.output += data[:room]

    def processExited(self, reason: Failure) -> None:
        # Exited, not ended: what the program wrote just before it exited may still be in the
        # pipes (its error message): read it for up to DRAIN seconds, no longer, so a
        # grandchild still holding our pipes does not hold the delivery.
        assert reason.value is not None
        self._reason = reason.value
        self._drain = self.clock.callLater(DRAIN, self._done)

    def processEnded(self, reason: Failure) -> None:
        if self._reason is None:  # ended without an exit report first: the same outcome
            assert reason.value is not None
            self._reason = reason.value
        self._done()

    def _done(self) -> None:
        if self.exited.called:
            return
        if self._drain is not None and self._drain.active():
            self._drain.cancel()
        assert self.transport is not None and self._reason is not None
        self.transport.loseConnection()
        # The exception, not the Failure: a Failure given to callback() would errback.
        self.exited.callback(self._reason)


def resolve_program(program: str, base_dir: str) -> str:
    """The executable a command channel runs: a path (relative to the config file's folder) or
    a name on ``PATH``. A ``ValueError`` says why there is none: checked at start and again
    at each delivery."""
    if os.sep in program:
        path = os.path.normpath(os.path.join(base_dir, program))
        if not os.path.isfile(path):
            raise ValueError(f"command not found: {program}")
        if not os.access(path, os.X_OK):
            raise ValueError(f"command is not executable: {program}")
        return path
    found = shutil.which(program)
    if found is None:
        raise ValueError(f"command not found on PATH: {program}")
    return found


class CommandChannel:
    def __init__(self, spec: ChannelSpec, reactor: Any, *, public_url: str = "") -> None:
        self.spec = spec
        self.reactor = reactor
        self.public_url = public_url

    def _executable(self) -> str:
        try:
            return resolve_program(self.spec.command[0], str(self.spec.base_dir))
        except ValueError as e:  # checked at start; it may have gone since
            raise DeliveryError(str(e)) from None

    async def send(self, alerts: Sequence[Alert], kind: str,
                   notification_id: int | None = None) -> None:
        executable = self._executable()
        env = dict(os.environ)
        env.update(command_environment(alerts, self.public_url))
        env["OVERC_NOTIFICATION_KIND"] = kind
        env["OVERC_NOTIFICATION_ID"] = "" if notification_id is None else str(notification_id)
        protocol = _ChannelProcess(
            render_body(self.spec, alerts, kind, self.public_url, notification_id), self.reactor
        )
        try:
            transport = self.reactor.spawnProcess(
                protocol, executable, list(self.spec.command), env=env,
                path=str(self.spec.base_dir),
            )
        except OSError as e:
            raise DeliveryError(f"cannot start {self.spec.command[0]}: {e}") from None
        timed_out = []

        def terminate() -> None:
            timed_out.append(True)
            _signal(transport, "TERM")
            timers.append(self.reactor.callLater(KILL_GRACE, _signal, transport, "KILL"))

        timers = [self.reactor.callLater(self.spec.timeout, terminate)]
        try:
            ended = await protocol.exited
        finally:
            for timer in timers:
                if timer.active():
                    timer.cancel()
        output = protocol.output.decode("utf-8", "replace").strip()
        detail = f": {output[-500:]}" if output else ""
        if timed_out:
            raise DeliveryError(f"timed out after {self.spec.timeout:g} s, killed{detail}")
        if isinstance(ended, ProcessDone):
            return
        if isinstance(ended, ProcessTerminated) and ended.signal is not None:
            raise DeliveryError(f"killed by signal {ended.signal}{detail}")
        code = getattr(ended, "exitCode", None)
        raise DeliveryError(f"exit code {code}{detail}")


def _signal(transport: Any, name: str) -> None:
    try:
        transport.signalProcess(name)
    except Exception:  # already gone: ProcessExitedAlready
        pass
