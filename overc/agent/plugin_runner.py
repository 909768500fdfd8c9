"""Running plugins as child processes through ``ProcessProtocol``, never blocking the reactor.

Why a protocol and not ``getProcessOutputAndValue``: the agent needs the timeout ladder
(SIGTERM, then SIGKILL 5 s later), an output cap that keeps draining the pipes (a plugin that
prints megabytes must neither block on a full pipe nor fill our memory), the signal that killed
a plugin, and a way out when a plugin's orphaned children keep its pipes open after it exited.

Plugins start through the reactor's public ``spawnProcess`` only. Twisted uses ``posix_spawnp``
when the plugin runs in our own working folder (the monitor ``chdir``s to the config file's
folder for that) and fork + exec otherwise. At 10,000 runs a minute that costs the agent well
under its budget (``bench/RESULTS-agent.md``), so no private hook or own process transport.

``shell = yes`` plugins get their own process group so a timeout reaches the whole tree the
shell started, not just the shell: ``spawnProcess`` has no public way to call ``setsid`` or
``setpgid`` in the child, so they run through util-linux ``setsid``. A child of ours never
leads a process group, so ``setsid`` does not fork: it execs the command in place and the pid
we see is the group's id; signals go to the group (``os.killpg``). The wrapper costs the plugin
side about 0.75 ms of CPU per run, the agent nothing measurable. Plain commands are not
wrapped: ``setsid`` execs with ``execvp``, which would run a file without ``#!`` through
``/bin/sh`` instead of failing with "Exec format error".
"""
from __future__ import annotations

import os
import signal
import shutil
import stat
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from twisted.internet import defer, error
from twisted.internet.interfaces import IDelayedCall, IProcessTransport, IReactorTime
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from overc.agent import results
from overc.agent.results import CappedBuffer, Outcome

log = Logger()

#: Seconds between SIGTERM and SIGKILL for a plugin that outlived its timeout (SPEC 7).
KILL_GRACE = 5.0

#: Seconds we keep reading a plugin's pipes after it exited. A plugin that left a background
#: child holding stdout would otherwise never "end"; after this we close our side and report.
DRAIN_GRACE = 1.0

#: util-linux ``setsid``: starts a plugin in a new session (and so a new process group).
SETSID = shutil.which("setsid")


@dataclass(frozen=True)
class PluginSpec:
    """How to run one plugin: argv (already split), working folder and timeout."""

    argv: tuple[str, ...]
    cwd: str | None
    timeout: float
    label: str = ""
    #: Run in a process group of its own, signalled as a whole (``shell = yes``).
    own_group: bool = False

    @property
    def display(self) -> str:
        """The command as the user wrote it, for messages."""
        return self.label or " ".join(self.argv)


@dataclass(frozen=True)
class RunResult:
    """A plugin's outcome and when it actually ran (after waiting for a concurrency slot)."""

    outcome: Outcome
    started: float
    finished: float


class ExecutableError(Exception):
    """The plugin cannot be started; the message is the reason shown in the report."""


def resolve_executable(argv0: str, cwd: str | None, path_env: str | None) -> str:
    """Find the program like ``execvp`` would, from ``cwd``; raise ExecutableError with why not.

    Checking first gives a clear reason ("Permission denied") instead of a child traceback.
    It is a few ``stat`` calls: cheap enough for the reactor thread.
    """
    if not argv0:
        raise ExecutableError("empty command")
    if "/" in argv0:
        candidate = os.path.normpath(os.path.join(cwd or os.getcwd(), argv0))
        try:
            mode = os.stat(candidate).st_mode
        except (OSError, ValueError):
            raise ExecutableError("No such file or directory") from None
        if stat.S_ISDIR(mode):
            raise ExecutableError("Is a directory")
        if not os.access(candidate, os.X_OK):
            raise ExecutableError("Permission denied (not executable)")
        return candidate
    found = shutil.which(argv0, path=path_env)
    if found is None:
        raise ExecutableError("command not found in PATH")
    return found


class PluginProtocol(ProcessProtocol):
    """One plugin run. ``done`` fires with an :class:`Outcome`; it never errbacks.

    With ``own_group`` the plugin leads a process group of its own: timeouts signal the
    whole group, and whatever is left of the group when a timed-out plugin exits is killed.
    """

    transport: IProcessTransport

    def __init__(
        self,
        clock: IReactorTime,
        timeout: float,
        kill_grace: float = KILL_GRACE,
        drain_grace: float = DRAIN_GRACE,
        own_group: bool = False,
    ) -> None:
        self.clock = clock
        self.timeout = timeout
        self.kill_grace = kill_grace
        self.drain_grace = drain_grace
        self.own_group = own_group
        self.done: defer.Deferred[Outcome] = defer.Deferred()
        self.stdout = CappedBuffer()
        self.stderr = CappedBuffer()
        self.timed_out = False
        self.pid: int | None = None
        self._timers: dict[str, IDelayedCall] = {}
        self._exit: Failure | None = None
        self._open_outputs = {1, 2}

    # -- timers --------------------------------------------------------------------------
    def _later(self, name: str, delay: float, fn: Callable[[], None]) -> None:
        self._cancel(name)
        self._timers[name] = self.clock.callLater(delay, fn)

    def _cancel(self, name: str) -> None:
        call = self._timers.pop(name, None)
        if call is not None and call.active():
            call.cancel()

    def _signal(self, sig: signal.Signals) -> None:
        if self.own_group and self.pid is not None:
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:  # the group is gone: nothing left to stop
                pass
            return
        try:
            self.transport.signalProcess(sig.name[3:])
        except error.ProcessExitedAlready:
            pass

    def stop_group(self) -> None:
        """SIGTERM to the plugin's process group (the agent is stopping)."""
        if self.own_group and self._exit is None:
            self._signal(signal.SIGTERM)

    def _on_timeout(self) -> None:
        self._timers.pop("timeout", None)
        self.timed_out = True
        log.info("Plugin pid {pid} timed out after {timeout} s: SIGTERM", pid=self.pid, timeout=self.timeout)
        self._signal(signal.SIGTERM)
        self._later("kill", self.kill_grace, self._on_kill)

    def _on_kill(self) -> None:
        self._timers.pop("kill", None)
        log.info("Plugin pid {pid} still alive {grace} s after SIGTERM: SIGKILL", pid=self.pid, grace=self.kill_grace)
        self._signal(signal.SIGKILL)

    def _on_drain_expired(self) -> None:
        self._timers.pop("drain", None)
        log.debug("Plugin exited but its pipes stay open (a leftover child?); closing them")
        self.transport.loseConnection()

    # -- ProcessProtocol -----------------------------------------------------------------
    def connectionMade(self) -> None:
        self.pid = self.transport.pid
        self.transport.closeStdin()
        self._later("timeout", self.timeout, self._on_timeout)

    def outReceived(self, data: bytes) -> None:
        self.stdout.feed(data)

    def errReceived(self, data: bytes) -> None:
        self.stderr.feed(data)

    def childConnectionLost(self, childFD: int) -> None:
        self._open_outputs.discard(childFD)
        super().childConnectionLost(childFD)

    def processExited(self, reason: Failure) -> None:
        self._exit = reason
        self._cancel("timeout")
        self._cancel("kill")
        if self.timed_out and self.own_group:
            # It had its SIGTERM with the rest of its group; what outlives it is left over.
            self._signal(signal.SIGKILL)
        if self._open_outputs:
            # Output still open: wait for it, but not forever. (When both pipes are closed
            # already, processEnded follows at once: no timer to set and cancel.)
            self._later("drain", self.drain_grace, self._on_drain_expired)

    def processEnded(self, reason: Failure) -> None:
        for name in list(self._timers):
            self._cancel(name)
        if not self.done.called:
            self.done.callback(self.outcome(self._exit or reason))

    def outcome(self, reason: Failure) -> Outcome:
        """Turn the exit reason and collected output into an Outcome (pure given the state)."""
        if self.timed_out:
            return results.from_timeout(self.timeout)
        stdout, stderr = self.stdout.text(), self.stderr.text()
        value = reason.value
        signum = getattr(value, "signal", None)
        code = getattr(value, "exitCode", None)
        failed_exec = results.exec_failure_reason(code, stderr)
        if failed_exec is not None:
            return Outcome("UNK", f"Cannot run plugin: {failed_exec}")
        output = results.pick_info(stdout, stderr)
        if signum is not None:
            return results.from_signal(signum, output)
        if code is None:
            return Outcome("UNK", results.with_prefix("Plugin ended abnormally", output))
        return results.from_exit(code, output)


class PluginRunner:
    """Runs plugins with at most ``concurrency`` at once, through ``reactor.spawnProcess``."""

    def __init__(
        self,
        reactor: Any,
        concurrency: int = 16,
        env: Mapping[str, str] | None = None,
        kill_grace: float = KILL_GRACE,
        drain_grace: float = DRAIN_GRACE,
        resolve: Callable[[str, str | None, str | None], str] = resolve_executable,
        setsid: str | None = SETSID,
    ) -> None:
        self.reactor = reactor
        self._stdin: int | None = None
        self.env = dict(os.environ if env is None else env)
        self.kill_grace = kill_grace
        self.drain_grace = drain_grace
        self.resolve = resolve
        self.setsid = setsid
        self.semaphore = defer.DeferredSemaphore(concurrency)
        self.running = 0
        self._warned_no_setsid = False
        self._groups: set[PluginProtocol] = set()

    async def run(self, spec: PluginSpec) -> RunResult:
        """Wait for a slot, run the plugin, return its outcome with start and end times."""
        await self.semaphore.acquire()
        try:
            started = self.reactor.seconds()
            outcome = await self._run(spec)
            return RunResult(outcome, started, self.reactor.seconds())
        finally:
            self.semaphore.release()

    def _child_fds(self) -> dict[int, int | str]:
        """Plugins read ``/dev/null`` (one descriptor kept open), write to pipes we read.

        A stdin pipe that we close at once would cost a pipe, a writer and its reactor
        registration per run, and two more descriptors for every spawn to scan.
        """
        if self._stdin is None:
            self._stdin = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        return {0: self._stdin, 1: "r", 2: "r"}

    def close(self) -> None:
        """The agent stops: SIGTERM to running plugins' own process groups; release ``/dev/null``.

        A supervisor's or terminal's signal to the agent's process group (supervisord
        ``stopasgroup``, Ctrl-C) no longer reaches a plugin in a group of its own, so we pass it on.
        (A new run opens ``/dev/null`` again.)
        """
        for protocol in list(self._groups):
            protocol.stop_group()
        if self._stdin is not None:
            os.close(self._stdin)
            self._stdin = None

    async def _run(self, spec: PluginSpec) -> Outcome:
        try:
            executable = self.resolve(spec.argv[0] if spec.argv else "", spec.cwd, self.env.get("PATH"))
        except ExecutableError as e:
            return results.from_start_failure(spec.display, str(e))
        args = list(spec.argv)
        setsid = self.setsid if spec.own_group else None
        if spec.own_group and setsid is None and not self._warned_no_setsid:
            self._warned_no_setsid = True
            log.warn("No setsid(1) found: a shell plugin that times out is stopped, its children are not")
        if setsid is not None:
            # setsid looks the command up again with execvp: same PATH and folder, same file.
            executable, args = setsid, [setsid, "--", *args]
        protocol = PluginProtocol(self.reactor, spec.timeout, self.kill_grace, self.drain_grace, setsid is not None)
        try:
            self.reactor.spawnProcess(protocol, executable, args, env=self.env, path=spec.cwd, childFDs=self._child_fds())
        except OSError as e:
            return results.from_start_failure(spec.display, e.strerror or str(e))
        except Exception as e:  # spawnProcess validates its arguments (e.g. NUL bytes)
            return results.from_start_failure(spec.display, f"{type(e).__name__}: {e}")
        self.running += 1
        if protocol.own_group:
            self._groups.add(protocol)
        try:
            return await protocol.done
        finally:
            self.running -= 1
            self._groups.discard(protocol)


def shell_argv(command: str) -> tuple[str, ...]:
    """``shell = yes``: the command line goes to ``/bin/sh -c`` unchanged."""
    return ("/bin/sh", "-c", command)

