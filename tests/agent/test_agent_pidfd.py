"""``overc.agent.pidfd``: plugins through ``posix_spawn`` and a pidfd, with real processes.

The transport must drive a ``ProcessProtocol`` exactly as Twisted's ``Process`` does: the
callbacks and their order, the ``ProcessDone``/``ProcessTerminated`` reasons, ``signalProcess``
and ``ProcessExitedAlready``, ``loseConnection``; leak no descriptor into the child or in the
agent; and report exec failures as the runner does. ``test_agent_processes.py`` runs its whole
real-process suite through both transports as well.
"""
import os
import signal
import sys

import pytest
import pytest_twisted
from twisted.internet import defer, error
from twisted.internet.protocol import ProcessProtocol

from agent_fakes import CHILD, FakeProcessReactor
from overc.agent import pidfd, spawn
from overc.agent.plugin_runner import PluginRunner, PluginSpec

pytestmark = pytest.mark.skipif(not pidfd.supported(), reason="no posix_spawn or pidfd_open here")


def deferLater(seconds):
    from twisted.internet import reactor, task

    return task.deferLater(reactor, seconds)


def open_fds():
    return sorted(int(name) for name in os.listdir("/proc/self/fd"))


class Recorder(ProcessProtocol):
    """Records every callback; ``ended`` fires at processEnded."""

    def __init__(self):
        self.events = []
        self.ended = defer.Deferred()

    def connectionMade(self):
        self.events.append(("connectionMade",))

    def childDataReceived(self, fd, data):
        if self.events and self.events[-1][:2] == ("data", fd):
            self.events[-1] = ("data", fd, self.events[-1][2] + data)
        else:
            self.events.append(("data", fd, data))

    def childConnectionLost(self, fd):
        self.events.append(("lost", fd))

    def processExited(self, reason):
        self.events.append(("exited", reason))

    @property
    def reason(self):
        return [e[1] for e in self.events if e[0] == "ended"][0]

    def processEnded(self, reason):
        self.events.append(("ended", reason))
        self.ended.callback(None)


@pytest.fixture
def devnull():
    fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    yield fd
    os.close(fd)


def start(devnull, *argv, env=None):
    from twisted.internet import reactor

    proto = Recorder()
    transport = pidfd.spawn(reactor, proto, argv[0], list(argv), env or {"PATH": os.environ.get("PATH", "")}, devnull)
    return proto, transport


def names(proto):
    return [e[0] if e[0] != "lost" else f"lost{e[1]}" for e in proto.events]


@pytest.mark.slow
@pytest_twisted.ensureDeferred
async def test_callbacks_in_twisted_order_with_output_and_a_clean_exit(devnull):
    before = open_fds()
    proto, transport = start(devnull, "/bin/sh", "-c", "echo out; echo err >&2")
    assert transport.pid > 0 and proto.transport is transport
    await proto.ended
    reason = proto.reason
    order = [n for n in names(proto) if n != "data"]
    assert order[0] == "connectionMade" and order[-1] == "ended"
    assert sorted(order[1:-1]) == ["exited", "lost1", "lost2"]  # in the order the events come
    assert {e[1]: e[2] for e in proto.events if e[0] == "data"} == {1: b"out\n", 2: b"err\n"}
    assert reason.check(error.ProcessDone) and reason.value.exitCode == 0 and reason.value.status == 0
    exited = [e[1] for e in proto.events if e[0] == "exited"][0]
    assert exited is reason
    assert transport.pid is None and transport.status == 0
    with pytest.raises(error.ProcessExitedAlready):
        transport.signalProcess("TERM")
    assert open_fds() == before  # pipes and pidfd all closed


@pytest.mark.slow
@pytest.mark.parametrize("code", [1, 2, 3, 7])
@pytest_twisted.ensureDeferred
async def test_exit_codes_are_process_terminated(devnull, code):
    proto, _ = start(devnull, "/bin/sh", "-c", f"exit {code}")
    await proto.ended
    reason = proto.reason
    assert reason.check(error.ProcessTerminated)
    assert (reason.value.exitCode, reason.value.signal) == (code, None)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["TERM", "KILL", "INT", signal.SIGUSR1])
@pytest_twisted.ensureDeferred
async def test_signal_process_by_name_or_number(devnull, name):
    proto, transport = start(devnull, "/bin/sleep", "30")
    transport.signalProcess(name)
    await proto.ended
    reason = proto.reason
    number = getattr(signal, f"SIG{name}") if isinstance(name, str) else name
    assert reason.check(error.ProcessTerminated)
    assert (reason.value.exitCode, reason.value.signal) == (None, number)


@pytest.mark.slow
@pytest_twisted.ensureDeferred
async def test_lose_connection_ends_a_process_whose_grandchild_holds_the_pipes(devnull):
    before = open_fds()
    proto, transport = start(devnull, "/bin/sh", "-c", "sleep 30 & echo $!")
    exited = defer.Deferred()
    proto.processExited = lambda reason: exited.callback(None)
    await exited
    while not any(e[:2] == ("data", 1) for e in proto.events):
        await deferLater(0.01)
    grandchild = int([e[2] for e in proto.events if e[:2] == ("data", 1)][0])
    assert transport.pid is None and not proto.ended.called  # pipes still open
    transport.loseConnection()
    assert not proto.ended.called  # closed on the next reactor turn, as Twisted's readers do
    await proto.ended
    reason = proto.reason
    assert reason.check(error.ProcessDone)
    os.kill(grandchild, signal.SIGKILL)
    assert {"lost1", "lost2"} <= set(names(proto))
    assert open_fds() == before


@pytest.mark.slow
@pytest_twisted.ensureDeferred
async def test_a_megabyte_of_output_arrives_whole(devnull):
    proto, _ = start(devnull, "/bin/sh", "-c", "head -c 1048576 /dev/zero")
    await proto.ended
    out = b"".join(e[2] for e in proto.events if e[:2] == ("data", 1))
    assert out == b"\0" * 1048576


def test_exec_failures_raise_and_leave_nothing_open(devnull, tmp_path):
    from twisted.internet import reactor

    plain = tmp_path / "plain"
    plain.write_text("#!/bin/sh\n")
    no_shebang = tmp_path / "noshebang"
    no_shebang.write_bytes(b"\x7fELF garbage")
    no_shebang.chmod(0o755)
    bad_interpreter = tmp_path / "bad"
    bad_interpreter.write_text("#!/nonexistent/interpreter\n")
    bad_interpreter.chmod(0o755)
    before = open_fds()
    cases = [(plain, "Permission denied"), (no_shebang, "Exec format error"), (bad_interpreter, "No such file or directory")]
    for path, strerror in cases:
        with pytest.raises(OSError) as raised:
            pidfd.spawn(reactor, Recorder(), str(path), [str(path)], {}, devnull)
        assert raised.value.strerror == strerror
    assert open_fds() == before


def test_a_failing_pidfd_open_kills_and_reaps_the_child(devnull, monkeypatch):
    from twisted.internet import reactor

    spawned = []
    real_spawn = os.posix_spawn

    def spy(*args, **kwargs):
        spawned.append(real_spawn(*args, **kwargs))
        return spawned[-1]

    def no_pidfd(pid):
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(os, "posix_spawn", spy)
    monkeypatch.setattr(os, "pidfd_open", no_pidfd)
    before = open_fds()
    with pytest.raises(OSError, match="Too many open files"):
        pidfd.spawn(reactor, Recorder(), "/bin/sleep", ["sleep", "30"], {}, devnull)
    assert open_fds() == before
    with pytest.raises(ChildProcessError):  # already reaped
        os.waitpid(spawned[0], os.WNOHANG)


def test_exit_reason_is_twisteds():
    done = pidfd.exit_reason(0)
    assert isinstance(done, error.ProcessDone) and done.status == 0
    code = pidfd.exit_reason(3 << 8)
    assert isinstance(code, error.ProcessTerminated) and (code.exitCode, code.signal, code.status) == (3, None, 768)
    sig = pidfd.exit_reason(9)
    assert isinstance(sig, error.ProcessTerminated) and (sig.exitCode, sig.signal) == (None, 9)
    unknown = pidfd.exit_reason(None)
    assert isinstance(unknown, error.ProcessTerminated) and (unknown.exitCode, unknown.signal) == (None, None)


def test_write_ends_on_stdio_numbers_are_moved_above_2():
    r, w = os.pipe()
    saved = os.dup(0)
    try:
        os.dup2(w, 0, inheritable=False)
        moved = pidfd._above_stdio(0)
        assert moved > 2 and os.get_inheritable(moved) is False
        with pytest.raises(OSError):
            os.fstat(0)
        os.write(moved, b"x")
        assert os.read(r, 1) == b"x"
        os.close(moved)
    finally:
        os.dup2(saved, 0)
        os.close(saved)
        os.close(r)
        os.close(w)
    assert pidfd._above_stdio(r) == r


# -- the spawner: which calls it takes --------------------------------------------------------
class Fallback:
    def __init__(self):
        self.calls = []

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        return "fallback"


@pytest.mark.parametrize(
    "path,child_fds",
    [
        ("/", {0: "devnull", 1: "r", 2: "r"}),  # posix_spawn cannot change folders
        (None, {0: "w", 1: "r", 2: "r"}),  # a stdin pipe
        (None, {0: 0, 1: "r", 2: "r"}),  # our own stdin
        (None, {0: "devnull", 1: "r", 2: "r", 3: "r"}),
        (None, {0: "devnull", 1: "r", 2: 1}),
        (None, None),
    ],
)
def test_other_calls_go_to_the_fallback(devnull, path, child_fds):
    from twisted.internet import reactor

    if child_fds is not None:
        child_fds = {k: devnull if v == "devnull" else v for k, v in child_fds.items()}
    fallback = Fallback()
    spawner = pidfd.Spawner(reactor, fallback, lambda: [])
    if path == "/" and os.getcwd() == "/":
        pytest.skip("running from /")
    assert spawner(Recorder(), "/bin/true", ["true"], env={}, path=path, childFDs=child_fds) == "fallback"
    assert (spawner.spawned, spawner.fell_back) == (0, 1)
    [(args, kwargs)] = fallback.calls
    assert isinstance(args[0], Recorder) and args[1:] == ("/bin/true", ["true"])
    assert kwargs == {"env": {}, "path": path, "childFDs": child_fds}


def test_spawner_selection(monkeypatch):
    from twisted.internet import reactor

    fake = FakeProcessReactor()
    assert spawn.spawner(fake) == fake.spawnProcess
    assert isinstance(spawn.spawner(reactor), pidfd.Spawner)
    monkeypatch.setattr(spawn, "supported", lambda: False)
    assert spawn.spawner(reactor).fallback == reactor.spawnProcess
    monkeypatch.setattr(pidfd, "supported", lambda: False)
    assert spawn.spawner(reactor) == reactor.spawnProcess


def test_scanner_reports_inheritable_descriptors_above_2():
    clock = [100.0]
    scanner = spawn.FdScanner(max_age=1.0, clock=lambda: clock[0])
    r, w = os.pipe()
    already = {fd for fd, flags in spawn.fd_state() if fd > 2 and not flags}  # from our parent

    def found():
        return set(scanner.inheritable()) - already

    try:
        os.set_inheritable(r, True)
        assert found() == {r}
        os.set_inheritable(r, False)
        assert found() == set()  # re-checked between scans
        os.set_inheritable(w, True)
        assert found() == set()  # the documented limit: seen at the next scan
        clock[0] += 1.0
        assert found() == {w}
        assert scanner.scans == 2
    finally:
        os.close(r)
        os.close(w)


# -- through the plugin runner ----------------------------------------------------------------


@pytest.mark.slow
@pytest_twisted.ensureDeferred
async def test_runner_child_gets_only_its_fds_default_signals_and_dev_null(monkeypatch):
    from twisted.internet import reactor

    monkeypatch.setattr(spawn.PluginProcess, "fd_scanner", spawn.FdScanner())  # scans at the spawn
    leak_r, leak_w = os.pipe()
    os.set_inheritable(leak_r, True)
    old = signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    try:
        runner = PluginRunner(reactor, concurrency=1)
        assert isinstance(runner.spawn_process, pidfd.Spawner)
        result = await runner.run(PluginSpec((sys.executable, "-c", CHILD), os.getcwd(), 30.0))
        runner.close()
    finally:
        signal.signal(signal.SIGUSR1, old)
        os.close(leak_r)
        os.close(leak_w)
    assert runner.spawn_process.spawned == 1
    assert result.outcome.state == "OK", result.outcome
    assert result.outcome.info == "[] True /dev/null True"


@pytest.mark.slow
@pytest_twisted.ensureDeferred
async def test_runner_maps_posix_spawn_exec_failures(tmp_path, monkeypatch):
    from twisted.internet import reactor

    monkeypatch.chdir(tmp_path)
    script = tmp_path / "p.sh"
    script.write_text("echo no shebang\n")
    script.chmod(0o755)
    # resolve_executable would catch most failures first; skip it to reach posix_spawn's error
    runner = PluginRunner(reactor, concurrency=1, resolve=lambda argv0, cwd, path: os.path.join(cwd, argv0))
    result = await runner.run(PluginSpec(("p.sh",), os.getcwd(), 30.0))
    script.chmod(0o644)
    result2 = await runner.run(PluginSpec(("p.sh",), os.getcwd(), 30.0))
    runner.close()
    assert result.outcome.info == "Cannot run p.sh: Exec format error"
    assert result2.outcome.info == "Cannot run p.sh: Permission denied"
    assert runner.spawn_process.fell_back == 0


@pytest.mark.slow
def test_signals_still_reach_the_child_after_the_reactor_let_go_of_the_pidfd(devnull):
    """At shutdown the reactor drops every reader (connectionLost); the child is not reaped."""
    from twisted.internet import reactor

    proto, transport = start(devnull, "/bin/sleep", "30")
    pid = transport.pid
    for reader in [transport._watcher, *transport._readers.values()]:
        reactor.removeReader(reader)
        reader.connectionLost(None)
    assert transport.pid == pid and transport._watcher.fd == -1
    transport.signalProcess("KILL")
    _, status = os.waitpid(pid, 0)
    assert os.WTERMSIG(status) == signal.SIGKILL
    assert not proto.ended.called  # as with Twisted: no processEnded for a process never reaped
