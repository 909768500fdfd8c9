"""Spawning plugins on a real POSIX reactor: Twisted's ``Process``, minus its per-spawn scans.

Where ``posix_spawn`` and ``pidfd_open`` work, :func:`spawner` hands plugins that run in our
own working folder (the monitor's case) to :mod:`overc.agent.pidfd` instead, which does
without ``Process`` altogether; what follows is the path for everything else.

``reactor.spawnProcess`` builds a :class:`twisted.internet.process.Process`, which starts the
child with ``posix_spawnp`` when it can (no uid/gid change, ``path`` is our own working folder).
Before each ``posix_spawnp`` Twisted 26.10 recomputes two things in Python:

- which signals are ignored (``setsigdef``): ``signal.getsignal`` for all 64 signals, each
  turning the C result into an ``enum`` member (about 100 us per spawn);
- which descriptors are open, and which of them are inheritable (``file_actions``): a listing
  of ``/proc/<pid>/fd`` and an ``fcntl`` per entry, about 2 us per open descriptor. During a
  burst the agent holds two pipe ends per running plugin, some 50 descriptors at
  ``concurrency = 16``.

:class:`PluginProcess` is that same ``Process`` (same pipes, readers, reaping and
``ProcessProtocol`` callbacks) with only ``_trySpawnInsteadOfFork`` replaced: the signal scan
asks the C ``_signal.getsignal`` (no enum, about 10 us), and the descriptor scan is reused for
up to a second (:class:`FdScanner`; what that changes is spelled out there). The file actions
still come from Twisted's own ``_getFileActions``. The method is private API:
``tests/agent/test_agent_spawn.py`` pins it (with a fresh scan, the very same ``posix_spawnp``
call as Twisted's own method for the same process state; ``Process`` still routing through it
with the same signature), so a Twisted upgrade that changes it fails the tests instead of
silently changing behaviour. At run time, a Twisted or OS without the expected pieces gets
plain ``reactor.spawnProcess``.
"""
from __future__ import annotations

import os
import signal
import time
from typing import Callable

try:  # the C functions behind the ``signal`` module: ints, no enum conversion
    from _signal import getsignal as _c_getsignal
except ImportError:  # pragma: no cover - not CPython
    _c_getsignal = signal.getsignal

from twisted.internet import process as _process

from overc.agent import pidfd

try:
    import fcntl as _fcntl
except ImportError:  # pragma: no cover - not POSIX
    _fcntl = None

#: Everything the fast path needs from Twisted's private process module.
_HOOKS = ("Process", "_getFileActions", "_listOpenFDs", "_PS_CLOSE", "_PS_DUP2")

SpawnFunction = Callable[..., object]


def supported() -> bool:
    """True when this Twisted and OS have the pieces :class:`PluginProcess` relies on."""
    return (
        _fcntl is not None
        and hasattr(os, "posix_spawnp")
        and all(hasattr(_process, name) for name in _HOOKS)
        and callable(getattr(_process.Process, "_trySpawnInsteadOfFork", None))
    )


_SIG_IGN = int(signal.SIG_IGN)
_SIGNALS = range(1, signal.NSIG)


def ignored_signals() -> list[int]:
    """Signals whose disposition is SIG_IGN now (what Twisted resets to default in the child)."""
    return [s for s in _SIGNALS if _c_getsignal(s) == _SIG_IGN]


_FD_DIR = "/proc/self/fd"

#: Seconds a descriptor scan is reused (see :class:`FdScanner`).
FD_SCAN_MAX_AGE = 1.0


def fd_state() -> list[tuple[int, int]]:
    """``(fd, close-on-exec flags)`` for every open descriptor, as Twisted computes it.

    Twisted lists ``/proc/<pid>/fd`` (or its fallback), then ``fcntl(F_GETFD)`` each entry,
    skipping those that fail (the listing's own descriptor, closed by then).
    """
    try:
        candidates = [int(name) for name in os.listdir(_FD_DIR)]
    except OSError:  # pragma: no cover - no /proc: Twisted's own detector
        candidates = list(_process._listOpenFDs())
    return _flags(candidates)


def _flags(fds) -> list[tuple[int, int]]:
    fcntl, getfd = _fcntl.fcntl, _fcntl.F_GETFD
    state = []
    append = state.append
    for fd in fds:
        try:
            append((fd, fcntl(fd, getfd)))
        except OSError:
            pass
    return state


class FdScanner:
    """The descriptor state for ``file_actions``, with the full scan reused for ``max_age`` s.

    Listing ``/proc/self/fd`` and an ``fcntl`` per entry cost about 2 us per open descriptor,
    and in a burst the agent holds two pipe ends per running plugin: 16 running plugins make
    every spawn scan some 50 descriptors. What the scan is for is the inheritable ones (all
    others close at ``exec``): those are 0-2 and, rarely, descriptors inherited from our parent
    or made inheritable on purpose; every descriptor Python or Twisted opens is close-on-exec.

    So a full scan is kept for ``max_age`` seconds. In between, a spawn reports fresh flags for
    0-2, for the descriptors it maps into the child (its own pipes) and for every descriptor the
    scan found inheritable (usually none): all that ``_getFileActions`` turns into actions.
    Close-on-exec descriptors are left out: they get no action either way and only steer which
    free number ``_getFileActions`` picks for a temporary ``dup2`` (needed only when a child
    descriptor number is also a parent one), and a ``dup2`` in the child onto a descriptor that
    ``exec`` would close anyway changes nothing. The one real difference: a descriptor *made
    inheritable* since the last scan reaches the plugins started within ``max_age`` seconds.
    With ``max_age = 0`` every spawn scans, and the call is exactly Twisted's.
    """

    def __init__(self, max_age: float = FD_SCAN_MAX_AGE, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age = max_age
        self.clock = clock
        self.scans = 0
        self._scanned = False
        self._inheritable: list[int] = []
        self._at = 0.0

    def _rescan(self) -> list[tuple[int, int]] | None:
        """A full scan when the last one is ``max_age`` old (or none yet), else ``None``."""
        now = self.clock()
        if not self._scanned or now - self._at >= self.max_age or now < self._at:
            fresh = fd_state()
            self.scans += 1
            self._scanned, self._at = True, now
            self._inheritable = [fd for fd, flags in fresh if not flags]
            return fresh
        return None

    def inheritable(self) -> list[int]:
        """Descriptors above 2 that a child would inherit now (for ``overc.agent.pidfd``).

        Same reuse as :meth:`state`: the scan's inheritable descriptors, re-checked.
        """
        if self._rescan() is None:
            return [fd for fd, flags in _flags([fd for fd in self._inheritable if fd > 2]) if not flags]
        return [fd for fd in self._inheritable if fd > 2]

    def state(self, fdmap: dict[int, int] | None) -> list[tuple[int, int]]:
        fresh = self._rescan()
        if fresh is not None:
            return fresh
        wanted = {0, 1, 2, *(fdmap or {}).values()}
        wanted.update(self._inheritable)
        return _flags(sorted(wanted))


class PluginProcess(_process.Process):
    """A Twisted ``Process`` whose ``posix_spawnp`` path skips the slow per-spawn Python scans."""

    #: Shared by every plugin process of this agent; tests replace it.
    fd_scanner = FdScanner()

    def _trySpawnInsteadOfFork(self, path, uid, gid, executable, args, environment, kwargs):
        # The conditions are Twisted's: otherwise it falls back to fork + exec, and so do we.
        if (
            (uid is not None)
            or (gid is not None)
            or ((path is not None) and (os.path.abspath(path) != os.path.abspath(".")))
            or getattr(self._reactor, "_neverUseSpawn", False)
        ):
            return False
        if environment is None:
            environment = os.environ
        fdmap = kwargs.get("fdmap")
        self.pid = os.posix_spawnp(
            executable,
            args,
            environment,
            file_actions=_process._getFileActions(
                self.fd_scanner.state(fdmap), fdmap, doClose=_process._PS_CLOSE, doDup2=_process._PS_DUP2
            ),
            setsigdef=ignored_signals(),
        )
        self.status = -1
        return True


def spawner(reactor) -> SpawnFunction:
    """``spawnProcess(protocol, executable, args, env, path, childFDs)`` for this reactor.

    A real POSIX reactor gets :class:`overc.agent.pidfd.Spawner` when ``posix_spawn`` and
    ``pidfd_open`` work, falling back to :class:`PluginProcess` for calls it does not take
    (a ``cwd`` other than ours) or when they do not; anything else (a test's fake reactor,
    another platform, a Twisted without the hooks) gets its own ``reactor.spawnProcess``.
    """
    from twisted.internet.posixbase import PosixReactorBase

    if not isinstance(reactor, PosixReactorBase):
        return reactor.spawnProcess
    if supported():
        def fallback(processProtocol, executable, args=(), env=None, path=None, childFDs=None):
            return PluginProcess(reactor, executable, args, env, path, processProtocol, None, None, childFDs)
    else:
        fallback = reactor.spawnProcess
    if pidfd.supported() and _fcntl is not None:
        return pidfd.Spawner(reactor, fallback, lambda: PluginProcess.fd_scanner.inheritable())
    return fallback
