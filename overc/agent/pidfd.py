"""Plugins without Twisted's ``Process``: ``posix_spawn``, a pidfd and two small pipe readers.

A Twisted :class:`~twisted.internet.process.Process` per plugin run was the largest share of the
agent's CPU: a big object, a ``ProcessReader`` (``FileDescriptor``) per pipe, a ``SIGCHLD`` wake-up
after which *every* running process tries ``waitpid``, and a ``Failure`` per closed pipe.
:class:`PidfdProcess` drives the same :class:`~twisted.internet.interfaces.IProcessProtocol`
calls, in the same order and with the same arguments, from public APIs only:

- the child is started with ``os.posix_spawn``: its stdout and stderr are ``dup2``'d from pipes
  made with ``O_CLOEXEC`` (so no pipe end of ours, nor of another plugin, leaks into it), stdin
  is the descriptor the caller gives (``/dev/null``), every signal goes back to its default
  (what Twisted does for ignored signals; handled ones are reset by ``exec`` anyway), and the
  rare descriptor that *is* inheritable (from our parent) is closed, found by the shared
  :class:`overc.agent.spawn.FdScanner`. An exec failure (missing file, not executable, bad
  interpreter) raises ``OSError`` from the spawn call itself, as on Twisted's ``posix_spawnp``
  path, and the runner reports its ``strerror``;
- the exit is seen through ``os.pidfd_open(pid)`` registered with ``reactor.addReader``: it
  becomes readable when the child exits, and the child is reaped with
  ``waitpid(pid, WNOHANG)``. No ``SIGCHLD`` handler involved, and only this child is waited for;
- each pipe is read by a small :class:`_PipeReader` (``IReadDescriptor``), up to 64 KiB a read.

Callbacks: ``makeConnection`` once the child runs; ``childDataReceived(1 or 2, data)``;
``childConnectionLost(fd)`` at each pipe's end; ``processExited(reason)`` when it is reaped;
``processEnded(reason)`` once it is reaped *and* both pipes are closed. ``reason`` is a
``Failure`` of ``ProcessDone`` (exit 0) or ``ProcessTerminated(exitCode, signal, status)``, as
Twisted builds them; the same ``Failure`` is given to both calls. ``signalProcess`` takes the
same names or numbers and raises ``ProcessExitedAlready`` once the child is reaped;
``loseConnection`` stops reading both pipes and closes them on the next reactor turn, like
Twisted's readers.

:class:`Spawner` uses it only for the plugin runner's shape of call (stdin a descriptor,
stdout and stderr pipes, ``cwd`` our own working folder, since ``posix_spawn`` cannot change
folders); anything else goes to the fallback spawn function. :func:`supported` says whether
this Python and kernel have ``posix_spawn`` and a working ``pidfd_open``.
"""
from __future__ import annotations

import fcntl
import os
import signal
from typing import Callable

from twisted.internet import error
from twisted.internet.interfaces import IAddress, IProcessTransport, IReadDescriptor
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

log = Logger()

#: Bytes asked for per read of a plugin's pipe (a pipe holds 64 KiB by default).
READ_SIZE = 65536

_NAMED_SIGNALS = {name: getattr(signal, "SIG" + name) for name in ("HUP", "STOP", "INT", "KILL", "TERM")}

#: Reset to default in every child. Ignored ones are what matters (Twisted resets those); for
#: handled or default ones it changes nothing, and a constant set costs no per-spawn scan.
_SIGDEF = tuple(s for s in sorted(signal.valid_signals()) if s not in (signal.SIGKILL, signal.SIGSTOP))

_POSIX_SPAWN_CLOSE = getattr(os, "POSIX_SPAWN_CLOSE", None)
_POSIX_SPAWN_DUP2 = getattr(os, "POSIX_SPAWN_DUP2", None)
_pidfd_send_signal = getattr(signal, "pidfd_send_signal", None)

_supported: bool | None = None


def supported() -> bool:
    """True when ``posix_spawn``, ``pipe2`` and a working ``pidfd_open`` (Linux >= 5.3) exist."""
    global _supported
    if _supported is None:
        _supported = _probe()
    return _supported


def _probe() -> bool:
    if not all(hasattr(os, name) for name in ("posix_spawn", "pidfd_open", "pipe2", "waitpid")):
        return False
    if _POSIX_SPAWN_DUP2 is None or _POSIX_SPAWN_CLOSE is None or _pidfd_send_signal is None:
        return False
    try:  # the kernel or a seccomp filter may still refuse it (ENOSYS, EPERM)
        fd = os.pidfd_open(os.getpid())
    except OSError:
        return False
    os.close(fd)
    return True


def exit_reason(status: int | None) -> BaseException:
    """Twisted's reason for a wait status: ``ProcessDone`` for exit 0, else ``ProcessTerminated``.

    ``None`` (the child was reaped by someone else, so its status is unknown) is a
    ``ProcessTerminated`` with neither code nor signal.
    """
    if status is None:
        return error.ProcessTerminated()
    code = sig = None
    if os.WIFEXITED(status):
        code = os.WEXITSTATUS(status)
    else:
        sig = os.WTERMSIG(status)
    if code or sig:
        return error.ProcessTerminated(code, sig, status)
    return error.ProcessDone(status)


@implementer(IAddress)
class ProcessAddress:
    """The address of a process transport's peer or host (there is none)."""


@implementer(IReadDescriptor)
class _PipeReader:
    """Reads one of the child's output pipes (non-blocking) into the process."""

    __slots__ = ("process", "fd", "child_fd")

    def __init__(self, process: "PidfdProcess", fd: int, child_fd: int) -> None:
        self.process, self.fd, self.child_fd = process, fd, child_fd

    def fileno(self) -> int:
        return self.fd

    def logPrefix(self) -> str:
        return "PidfdProcess"

    def doRead(self):
        try:
            data = os.read(self.fd, READ_SIZE)
        except BlockingIOError:
            return None
        if data:
            self.process._data(self.child_fd, data)
            return None
        # EOF: our own clean-up, no Failure (the reactor builds one when doRead returns a reason).
        self.process.reactor.removeReader(self)
        self.process._pipe_closed(self)
        return None

    def connectionLost(self, reason) -> None:
        # The reactor saw a hang-up with nothing left to read, doRead raised, or it is shutting
        # down (disconnectAll): it has removed us already.
        self.process._pipe_closed(self)


@implementer(IReadDescriptor)
class _ExitWatcher:
    """The child's pidfd: readable once the child exits; then reap it."""

    __slots__ = ("process", "fd")

    def __init__(self, process: "PidfdProcess", fd: int) -> None:
        self.process, self.fd = process, fd

    def fileno(self) -> int:
        return self.fd

    def logPrefix(self) -> str:
        return "PidfdProcess"

    def doRead(self):
        self._reap(in_reactor=True)
        return None

    def connectionLost(self, reason) -> None:
        # Removed by the reactor (shutdown, or a hang-up event): one last try, then let go.
        self._reap(in_reactor=False)
        self._close()

    def _reap(self, in_reactor: bool) -> None:
        process = self.process
        if process.pid is None:
            return
        try:
            pid, status = os.waitpid(process.pid, os.WNOHANG)
        except ChildProcessError:  # someone else reaped it (a waitpid(-1) elsewhere)
            pid, status = process.pid, None
        if not pid:
            return  # still running
        if in_reactor:
            process.reactor.removeReader(self)
        self._close()
        process._exited(status)

    def _close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)


@implementer(IProcessTransport)
class PidfdProcess:
    """A running plugin: its pid, its pidfd watcher and its two pipe readers."""

    def __init__(self, reactor, protocol, pid: int, pidfd: int, stdout: int, stderr: int) -> None:
        self.reactor = reactor
        self.proto = protocol
        self.pid: int | None = pid
        self.status: int | None = None
        self._reason: Failure | None = None
        self._exited_yet = False
        self._watcher = _ExitWatcher(self, pidfd)
        self._readers = {1: _PipeReader(self, stdout, 1), 2: _PipeReader(self, stderr, 2)}
        add = reactor.addReader
        for reader in self._readers.values():
            add(reader)
        add(self._watcher)
        try:
            protocol.makeConnection(self)
        except BaseException:
            log.failure("while calling makeConnection:")

    # -- from the readers ------------------------------------------------------------------
    def _data(self, child_fd: int, data: bytes) -> None:
        self.proto.childDataReceived(child_fd, data)

    def _pipe_closed(self, reader: _PipeReader) -> None:
        fd = reader.fd
        if fd < 0:
            return
        reader.fd = -1
        os.close(fd)
        del self._readers[reader.child_fd]
        if self.proto is not None:
            try:
                self.proto.childConnectionLost(reader.child_fd)
            except BaseException:
                log.failure("while calling childConnectionLost:")
        self._maybe_ended()

    def _exited(self, status: int | None) -> None:
        self.status = status
        self.pid = None
        self._exited_yet = True
        self._reason = Failure(exit_reason(status))
        if self.proto is not None:
            try:
                self.proto.processExited(self._reason)
            except BaseException:
                log.failure("while calling processExited:")
        self._maybe_ended()

    def _maybe_ended(self) -> None:
        if self._readers or not self._exited_yet or self.proto is None:
            return
        proto, self.proto = self.proto, None
        try:
            proto.processEnded(self._reason)
        except BaseException:
            log.failure("while calling processEnded:")

    # -- IProcessTransport -----------------------------------------------------------------
    def signalProcess(self, signalID) -> None:
        signalID = _NAMED_SIGNALS.get(signalID, signalID)
        if self.pid is None:
            raise error.ProcessExitedAlready()
        try:
            if self._watcher.fd >= 0:  # through the pidfd: it names this very child
                _pidfd_send_signal(self._watcher.fd, signalID)
            else:  # the reactor let go of the pidfd (shutdown); the pid is still our child's
                os.kill(self.pid, signalID)
        except ProcessLookupError:  # exited, not yet reaped
            raise error.ProcessExitedAlready() from None

    def closeChildFD(self, childFD: int) -> None:
        reader = self._readers.get(childFD)
        if reader is not None and reader.fd >= 0:
            # Like Twisted's ProcessReader.loseConnection: stop now, close on the next turn.
            self.reactor.removeReader(reader)
            self.reactor.callLater(0, self._pipe_closed, reader)

    def closeStdin(self) -> None:
        """stdin is a descriptor of ours given to the child, not a pipe: nothing to close."""

    def closeStdout(self) -> None:
        self.closeChildFD(1)

    def closeStderr(self) -> None:
        self.closeChildFD(2)

    def loseConnection(self) -> None:
        self.closeStdin()
        self.closeStderr()
        self.closeStdout()

    def writeToChild(self, childFD: int, data: bytes) -> None:
        raise KeyError(childFD)  # no pipe to the child (as Twisted's Process without one)

    def write(self, data: bytes) -> None:
        self.writeToChild(0, data)

    def writeSequence(self, seq) -> None:
        self.writeToChild(0, b"".join(seq))

    def getPeer(self) -> ProcessAddress:
        return ProcessAddress()

    def getHost(self) -> ProcessAddress:
        return ProcessAddress()

    def __repr__(self) -> str:
        return f"<PidfdProcess pid={self.pid} status={self.status}>"


def _above_stdio(fd: int) -> int:
    """``fd`` moved above 2 if it is 0-2 (our own stdio closed), so no ``dup2`` clobbers another."""
    if fd > 2:
        return fd
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    os.close(fd)
    return moved


def spawn(reactor, protocol, executable: str, args, env, stdin: int, inheritable=()) -> PidfdProcess:
    """Start ``executable`` with ``args`` and ``env``, stdin from ``stdin``, outputs to pipes.

    ``inheritable``: descriptors above 2 that are not close-on-exec, closed in the child.
    Raises ``OSError`` when the child cannot be started (nothing is left open then).
    """
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    try:
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
    except BaseException:
        os.close(out_r)
        os.close(out_w)
        raise
    try:
        try:
            out_w = _above_stdio(out_w)
            err_w = _above_stdio(err_w)
            actions = [(_POSIX_SPAWN_CLOSE, fd) for fd in inheritable]
            actions += [(_POSIX_SPAWN_DUP2, stdin, 0), (_POSIX_SPAWN_DUP2, out_w, 1), (_POSIX_SPAWN_DUP2, err_w, 2)]
            pid = os.posix_spawn(executable, args, env, file_actions=actions, setsigdef=_SIGDEF)
        finally:
            os.close(out_w)
            os.close(err_w)
        os.set_blocking(out_r, False)
        os.set_blocking(err_r, False)
    except BaseException:
        os.close(out_r)
        os.close(err_r)
        raise
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        # Out of descriptors, most likely: do not leave a child we cannot watch.
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(out_r)
        os.close(err_r)
        raise
    return PidfdProcess(reactor, protocol, pid, pidfd, out_r, err_r)


class Spawner:
    """``spawnProcess(protocol, executable, args, env, path, childFDs)`` through :func:`spawn`.

    Only for the plugin runner's shape of call: ``childFDs == {0: fd, 1: "r", 2: "r"}`` with
    ``fd > 2`` and ``path`` our working folder (or ``None``). Any other call goes to
    ``fallback`` unchanged. ``inheritable`` lists the descriptors above 2 a child would
    inherit (see :meth:`overc.agent.spawn.FdScanner.inheritable`).
    """

    def __init__(self, reactor, fallback: Callable[..., object], inheritable: Callable[[], list[int]]) -> None:
        self.reactor = reactor
        self.fallback = fallback
        self.inheritable = inheritable
        self.spawned = 0
        self.fell_back = 0

    def __call__(self, processProtocol, executable, args=(), env=None, path=None, childFDs=None):
        stdin = childFDs.get(0) if childFDs is not None else None
        if (
            type(stdin) is not int
            or stdin < 3
            or len(childFDs) != 3
            or childFDs.get(1) != "r"
            or childFDs.get(2) != "r"
            or (path is not None and os.path.abspath(path) != os.getcwd())
        ):
            self.fell_back += 1
            return self.fallback(processProtocol, executable, args, env=env, path=path, childFDs=childFDs)
        if env is None:
            env = os.environ
        process = spawn(self.reactor, processProtocol, executable, args, env, stdin, self.inheritable())
        self.spawned += 1
        return process
