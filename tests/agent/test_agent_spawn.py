"""``overc.agent.spawn``: the cheaper ``Process`` subclass, pinned against Twisted's private API.

``PluginProcess`` replaces Twisted's private ``Process._trySpawnInsteadOfFork``. These tests
fail loudly if a Twisted upgrade changes what that method does or how ``Process`` reaches it:

- for the same process state (inheritable and close-on-exec descriptors, an ignored signal,
  the same ``fdmap``) both methods make the very same ``posix_spawnp`` call;
- a real spawn through the reactor goes through our method and takes the ``posix_spawnp``
  path, and the child gets exactly what Twisted promises (only its three descriptors, ignored
  signals back to default, ``/dev/null`` as stdin).
"""
import inspect
import os
import signal
import sys
import types

import pytest
import pytest_twisted
from twisted.internet import process as tprocess

from agent_fakes import CHILD, FakeProcessReactor
from overc.agent import pidfd, spawn
from overc.agent.plugin_runner import PluginRunner, PluginSpec

pytestmark = pytest.mark.skipif(not spawn.supported(), reason="no posix_spawnp path in this Twisted/OS")


class Recorder:
    """Stands in for ``os.posix_spawnp``: records the call, returns a made-up pid."""

    def __init__(self):
        self.calls = []

    def __call__(self, executable, args, env, **kwargs):
        self.calls.append((executable, list(args), dict(env), kwargs))
        return 4242


@pytest.fixture
def state(monkeypatch):
    """A process state with something for every branch: inheritable fds, an ignored signal."""
    opened = []
    for inheritable in (True, False, True):
        r, w = os.pipe()
        os.set_inheritable(r, inheritable)
        opened += [r, w]
    old = signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    opened += [devnull, out_r, out_w, err_r, err_w]
    recorder = Recorder()
    monkeypatch.setattr(os, "posix_spawnp", recorder)
    try:
        yield recorder, {0: devnull, 1: out_w, 2: err_w}, opened
    finally:
        signal.signal(signal.SIGUSR1, old)
        for fd in opened:
            os.close(fd)


def call_both(recorder, fdmap, path=None, uid=None, scanner=None):
    """Twisted's method, then ours (by default scanning on every spawn, as Twisted does)."""
    results = []
    scanner = scanner or spawn.FdScanner(max_age=0)
    for method in (tprocess.Process._trySpawnInsteadOfFork, spawn.PluginProcess._trySpawnInsteadOfFork):
        me = types.SimpleNamespace(_reactor=object(), fd_scanner=scanner)
        used = method(me, path, uid, None, "/bin/true", ["true", "x"], {"A": "1"}, {"fdmap": dict(fdmap)})
        results.append((used, getattr(me, "pid", None), getattr(me, "status", None)))
    return results


def test_same_posix_spawnp_call_as_twisted(state):
    recorder, fdmap, _ = state
    ours_twisted = call_both(recorder, fdmap)
    assert ours_twisted[0] == ours_twisted[1] == (True, 4242, -1)
    assert len(recorder.calls) == 2
    twisted_call, our_call = recorder.calls
    assert our_call == twisted_call
    # and the state was worth comparing: closes for inheritable fds, SIGUSR1 reset
    kwargs = our_call[3]
    assert signal.SIGUSR1 in kwargs["setsigdef"]
    assert any(action[0] == os.POSIX_SPAWN_CLOSE for action in kwargs["file_actions"])


def test_same_posix_spawnp_call_when_a_child_fd_keeps_its_number(state):
    recorder, fdmap, opened = state
    inheritable = opened[0]
    call_both(recorder, {**fdmap, inheritable: inheritable})
    twisted_call, our_call = recorder.calls
    assert our_call == twisted_call


@pytest.mark.parametrize("path,uid", [("/", None), (None, 12345)])
def test_same_fallback_to_fork(state, path, uid):
    recorder, fdmap, _ = state
    assert call_both(recorder, fdmap, path=path, uid=uid) == [(False, None, None)] * 2
    assert recorder.calls == []


def actions(call):
    """The file actions of a recorded call: the dup2s in order, the closes as a set."""
    file_actions = call[3]["file_actions"]
    dups = [a for a in file_actions if a[0] == os.POSIX_SPAWN_DUP2]
    closes = {a for a in file_actions if a[0] == os.POSIX_SPAWN_CLOSE}
    assert len(dups) + len(closes) == len(file_actions)
    return dups, closes


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_cached_scan_gives_twisted_actions_for_new_pipes(state):
    """Between scans, a spawn's own new pipes and the known inheritable fds are all fresh."""
    recorder, _, _ = state
    clock = Clock()
    scanner = spawn.FdScanner(max_age=1.0, clock=clock)
    scanner.state({})
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    try:
        clock.now += 0.5
        call_both(recorder, {0: null, 1: out_w, 2: err_w}, scanner=scanner)
    finally:
        for fd in (out_r, out_w, err_r, err_w, null):
            os.close(fd)
    assert scanner.scans == 1
    twisted_call, our_call = recorder.calls
    assert actions(our_call) == actions(twisted_call)
    assert our_call[3]["setsigdef"] == twisted_call[3]["setsigdef"]


def test_cached_scan_rechecks_inheritable_fds(state):
    """An inheritable fd closed since the scan gets no close action (nor does its reuse)."""
    recorder, fdmap, opened = state
    clock = Clock()
    scanner = spawn.FdScanner(max_age=1.0, clock=clock)
    scanner.state(fdmap)
    gone = opened[0]
    os.set_inheritable(gone, False)  # as good as closed and reused by a close-on-exec fd
    call_both(recorder, fdmap, scanner=scanner)
    twisted_call, our_call = recorder.calls
    assert actions(our_call) == actions(twisted_call)
    assert (os.POSIX_SPAWN_CLOSE, gone) not in actions(our_call)[1]


def test_new_inheritable_fd_is_closed_after_the_next_scan(state):
    """The documented limit: an fd made inheritable between scans is seen at the next scan."""
    recorder, fdmap, opened = state
    clock = Clock()
    scanner = spawn.FdScanner(max_age=1.0, clock=clock)
    scanner.state(fdmap)
    late = opened[3]  # a write end, close-on-exec at the scan
    os.set_inheritable(late, True)
    me = types.SimpleNamespace(_reactor=object(), fd_scanner=scanner)
    spawn.PluginProcess._trySpawnInsteadOfFork(me, None, None, None, "/bin/true", ["true"], {}, {"fdmap": fdmap})
    assert (os.POSIX_SPAWN_CLOSE, late) not in actions(recorder.calls[-1])[1]
    clock.now += 1.0
    spawn.PluginProcess._trySpawnInsteadOfFork(me, None, None, None, "/bin/true", ["true"], {}, {"fdmap": fdmap})
    assert (os.POSIX_SPAWN_CLOSE, late) in actions(recorder.calls[-1])[1]
    assert scanner.scans == 2


def test_twisted_process_still_calls_the_hook():
    """``Process.__init__`` -> ``_fork`` -> ``_trySpawnInsteadOfFork(path, uid, gid, ...)``."""
    assert "_trySpawnInsteadOfFork" in inspect.getsource(tprocess._BaseProcess._fork)
    params = list(inspect.signature(tprocess.Process._trySpawnInsteadOfFork).parameters)
    assert params == list(inspect.signature(spawn.PluginProcess._trySpawnInsteadOfFork).parameters)
    assert params == ["self", "path", "uid", "gid", "executable", "args", "environment", "kwargs"]


def test_reactor_spawn_process_only_builds_a_process():
    """``spawner`` builds ``PluginProcess`` itself: the reactor's method must do nothing more."""
    from twisted.internet.posixbase import PosixReactorBase

    source = inspect.getsource(PosixReactorBase.spawnProcess)
    assert "return process.Process(" in source
    assert "_checkProcessArgs" not in source


def test_fake_and_unsupported_reactors_get_their_own_spawn_process(monkeypatch):
    fake = FakeProcessReactor()
    assert spawn.spawner(fake) == fake.spawnProcess
    from twisted.internet import reactor

    assert spawn.spawner(reactor) != reactor.spawnProcess
    monkeypatch.setattr(pidfd, "supported", lambda: False)  # PluginProcess (see test_agent_pidfd)
    assert spawn.spawner(reactor) != reactor.spawnProcess
    monkeypatch.setattr(spawn, "supported", lambda: False)
    assert spawn.spawner(reactor) == reactor.spawnProcess




@pytest.mark.slow
@pytest_twisted.ensureDeferred
async def test_real_spawn_uses_posix_spawn_and_gives_the_child_only_its_fds(monkeypatch):
    from twisted.internet import reactor

    used = []
    original = spawn.PluginProcess._trySpawnInsteadOfFork

    def spy(self, *args):
        used.append(original(self, *args))
        return used[-1]

    monkeypatch.setattr(spawn.PluginProcess, "_trySpawnInsteadOfFork", spy)
    monkeypatch.setattr(pidfd, "supported", lambda: False)  # this test is about PluginProcess
    monkeypatch.setattr(spawn.PluginProcess, "fd_scanner", spawn.FdScanner())  # scans at the spawn
    leak_r, leak_w = os.pipe()
    os.set_inheritable(leak_r, True)
    old = signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    try:
        runner = PluginRunner(reactor, concurrency=1)
        # cwd = our own folder: the posix_spawnp path (the monitor chdirs there for this)
        result = await runner.run(PluginSpec((sys.executable, "-c", CHILD), os.getcwd(), 30.0))
        runner.close()
    finally:
        signal.signal(signal.SIGUSR1, old)
        os.close(leak_r)
        os.close(leak_w)
    assert used == [True]
    assert result.outcome.state == "OK", result.outcome
    assert result.outcome.info == "[] True /dev/null True"


@pytest.mark.slow
@pytest_twisted.ensureDeferred
async def test_real_spawn_elsewhere_forks_like_twisted(tmp_path):
    from twisted.internet import reactor

    runner = PluginRunner(reactor, concurrency=1)
    result = await runner.run(PluginSpec((sys.executable, "-c", CHILD), str(tmp_path), 30.0))
    runner.close()
    assert result.outcome.state == "OK", result.outcome
    assert result.outcome.info.endswith("/dev/null True")
