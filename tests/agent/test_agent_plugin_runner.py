"""PluginRunner with a fake process reactor and a fake clock: no real processes here."""
import signal

import pytest
from twisted.internet.defer import Deferred

from agent_fakes import fake_resolve
from overc.agent.plugin_runner import ExecutableError, PluginRunner, PluginSpec, resolve_executable


def result_of(d: Deferred):
    assert d.called, "the run has not finished"
    box = []

    def keep(value):
        box.append(value)
        return value

    d.addBoth(keep)
    value = box[0]
    if hasattr(value, "raiseException"):
        value.raiseException()
    return value


def start(reactor, timeout=10.0, concurrency=4, argv=("./check",), cwd="/etc/overc"):
    runner = PluginRunner(reactor, concurrency=concurrency, env={"PATH": "/bin"}, resolve=fake_resolve)
    return runner, Deferred.fromCoroutine(runner.run(PluginSpec(tuple(argv), cwd, timeout)))


@pytest.mark.parametrize("code,state", [(0, "OK"), (1, "WARN"), (2, "FAIL"), (3, "UNK")])
def test_exit_code_mapping(reactor, code, state):
    _, d = start(reactor)
    p = reactor.processes[0]
    p.out(b"DISK OK - free space | /=10%\n")
    p.exit(code)
    outcome = result_of(d).outcome
    assert (outcome.state, outcome.info) == (state, "DISK OK - free space | /=10%")


def test_spawn_arguments(reactor):
    _, d = start(reactor, argv=("./plugin.d/x.sh", "a b"), cwd="/etc/overc")
    p = reactor.processes[0]
    assert p.args == ["./plugin.d/x.sh", "a b"]
    assert p.path == "/etc/overc"
    assert p.env == {"PATH": "/bin"}
    assert p.stdin_closed
    p.exit(0)
    assert result_of(d).outcome.state == "OK"


def test_unknown_exit_code_is_unk_with_code(reactor):
    _, d = start(reactor)
    reactor.processes[0].out(b"weird")
    reactor.processes[0].exit(7)
    assert result_of(d).outcome.info == "Plugin exited with code 7: weird"
    assert result_of(d).outcome.state == "UNK"


def test_signal_is_unk_naming_it(reactor):
    _, d = start(reactor)
    reactor.processes[0].exit(None, signal=signal.SIGSEGV)
    outcome = result_of(d).outcome
    assert outcome.state == "UNK"
    assert outcome.info == "Plugin killed by signal 11 (SIGSEGV)"


def test_stderr_used_when_stdout_empty(reactor):
    _, d = start(reactor)
    reactor.processes[0].err(b"cannot open /proc/x\n")
    reactor.processes[0].exit(2)
    assert result_of(d).outcome.info == "cannot open /proc/x"


def test_output_cap_keeps_reading(reactor):
    _, d = start(reactor)
    p = reactor.processes[0]
    for _ in range(1024):
        p.out(b"y" * 1024)  # 1 MiB
    p.exit(0)
    info = result_of(d).outcome.info
    assert len(info.encode()) <= 64 * 1024
    assert info.endswith("[output truncated]")
    assert p.protocol.stdout.dropped > 900 * 1024


def test_timeout_sends_term_then_kill_after_5s(reactor):
    _, d = start(reactor, timeout=30)
    p = reactor.processes[0]
    reactor.advance(29.9)
    assert p.signals == []
    reactor.advance(0.1)
    assert p.signals == [(30.0, "TERM")]
    reactor.advance(4.9)
    assert [s for _, s in p.signals] == ["TERM"]
    reactor.advance(0.1)
    assert p.signals == [(30.0, "TERM"), (35.0, "KILL")]
    assert not d.called
    p.exit(None, signal=9)
    outcome = result_of(d).outcome
    assert (outcome.state, outcome.info) == ("UNK", "Timed out after 30 s")


def test_timeout_plugin_obeying_term_is_not_killed(reactor):
    _, d = start(reactor, timeout=2)
    p = reactor.processes[0]
    reactor.advance(2)
    p.exit(None, signal=15)
    reactor.advance(10)
    assert [s for _, s in p.signals] == ["TERM"]
    assert result_of(d).outcome.info == "Timed out after 2 s"


def test_own_group_plugin_runs_through_setsid_and_timeouts_signal_the_group(reactor, monkeypatch):
    sent = []
    monkeypatch.setattr("os.killpg", lambda pgid, sig: sent.append((reactor.seconds(), pgid, sig)))
    runner = PluginRunner(reactor, env={"PATH": "/bin"}, resolve=fake_resolve, setsid="/usr/bin/setsid")
    d = Deferred.fromCoroutine(runner.run(PluginSpec(("/bin/sh", "-c", "x"), "/etc/overc", 2, own_group=True)))
    p = reactor.processes[0]
    assert (p.executable, p.args) == ("/usr/bin/setsid", ["/usr/bin/setsid", "--", "/bin/sh", "-c", "x"])
    reactor.advance(2)
    assert sent == [(2.0, p.pid, signal.SIGTERM)]
    reactor.advance(5)
    assert sent[1:] == [(7.0, p.pid, signal.SIGKILL)]
    p.exit(None, signal=9)
    assert p.signals == []  # never the process alone
    assert result_of(d).outcome.info == "Timed out after 2 s"


def test_own_group_leftovers_are_killed_when_a_timed_out_plugin_exits(reactor, monkeypatch):
    sent = []
    monkeypatch.setattr("os.killpg", lambda pgid, sig: sent.append(sig))
    runner = PluginRunner(reactor, env={"PATH": "/bin"}, resolve=fake_resolve, setsid="/usr/bin/setsid")
    d = Deferred.fromCoroutine(runner.run(PluginSpec(("/bin/sh", "-c", "x"), "/etc/overc", 2, own_group=True)))
    reactor.advance(2)
    reactor.processes[0].exit(None, signal=15)
    assert sent == [signal.SIGTERM, signal.SIGKILL]
    assert result_of(d).outcome.info == "Timed out after 2 s"


def test_closing_the_runner_terminates_running_process_groups(reactor, monkeypatch):
    sent = []
    monkeypatch.setattr("os.killpg", lambda pgid, sig: sent.append((pgid, sig)))
    runner = PluginRunner(reactor, env={"PATH": "/bin"}, resolve=fake_resolve, setsid="/usr/bin/setsid")
    Deferred.fromCoroutine(runner.run(PluginSpec(("/bin/sh", "-c", "x"), "/etc/overc", 60, own_group=True)))
    Deferred.fromCoroutine(runner.run(PluginSpec(("./plain",), "/etc/overc", 60)))
    done = Deferred.fromCoroutine(runner.run(PluginSpec(("/bin/sh", "-c", "y"), "/etc/overc", 60, own_group=True)))
    shell, plain, finished = reactor.processes
    finished.exit(0)
    assert result_of(done).outcome.state == "OK"
    runner.close()
    assert sent == [(shell.pid, signal.SIGTERM)]
    assert plain.signals == []  # in our own group: the supervisor's signal reaches it


def test_own_group_without_setsid_signals_the_process(reactor):
    runner = PluginRunner(reactor, env={"PATH": "/bin"}, resolve=fake_resolve, setsid=None)
    d = Deferred.fromCoroutine(runner.run(PluginSpec(("/bin/sh", "-c", "x"), "/etc/overc", 2, own_group=True)))
    p = reactor.processes[0]
    assert p.executable == "/bin/sh"
    reactor.advance(2)
    p.exit(None, signal=15)
    assert [s for _, s in p.signals] == ["TERM"]
    assert result_of(d).outcome.info == "Timed out after 2 s"


def test_finishing_in_time_cancels_the_timers(reactor):
    _, d = start(reactor, timeout=5)
    p = reactor.processes[0]
    reactor.advance(4)
    p.exit(0)
    reactor.advance(100)
    assert p.signals == []
    assert result_of(d).outcome.state == "OK"
    assert reactor.getDelayedCalls() == []


def test_no_drain_timer_when_the_pipes_closed_before_the_exit(reactor):
    _, d = start(reactor, timeout=5)
    p = reactor.processes[0]
    p.protocol.childConnectionLost(1)
    p.protocol.childConnectionLost(2)
    p.exit(0, end=False)
    assert reactor.getDelayedCalls() == []  # neither the timeout nor a drain timer
    p.end()
    assert result_of(d).outcome.state == "OK"


def test_leftover_child_holding_pipes_does_not_hang(reactor):
    _, d = start(reactor)
    p = reactor.processes[0]
    p.out(b"started daemon")
    p.exit(0, end=False)  # the plugin exited, a grandchild still holds stdout
    assert not d.called
    reactor.advance(1.0)
    assert p.lost
    assert result_of(d).outcome.info == "started daemon"


def test_spawn_failure_is_unk_with_reason(reactor):
    reactor.spawn_error = PermissionError(13, "Permission denied")
    _, d = start(reactor, argv=("./nope.sh",))
    outcome = result_of(d).outcome
    assert outcome.state == "UNK"
    assert outcome.info == "Cannot run ./nope.sh: Permission denied"


def test_exec_failure_in_forked_child_is_unk(reactor):
    _, d = start(reactor)
    p = reactor.processes[0]
    p.err(b"Upon execvpe ./check ['./check'] in environment id 1\n:Traceback (most recent call last):\nOSError: [Errno 8] Exec format error\n")
    p.exit(1)
    outcome = result_of(d).outcome
    assert outcome.state == "UNK"
    assert outcome.info == "Cannot run plugin: OSError: [Errno 8] Exec format error"


def test_resolution_failure_never_spawns(reactor, tmp_path):
    runner = PluginRunner(reactor, env={"PATH": str(tmp_path)})
    d = Deferred.fromCoroutine(runner.run(PluginSpec(("./missing.sh",), str(tmp_path), 5)))
    assert result_of(d).outcome.info == "Cannot run ./missing.sh: No such file or directory"
    assert reactor.processes == []


def test_resolve_executable(tmp_path):
    script = tmp_path / "p.sh"
    script.write_text("#!/bin/sh\n")
    with pytest.raises(ExecutableError, match="Permission denied"):
        resolve_executable("./p.sh", str(tmp_path), "/bin")
    script.chmod(0o755)
    assert resolve_executable("./p.sh", str(tmp_path), "/bin") == str(script)
    with pytest.raises(ExecutableError, match="Is a directory"):
        resolve_executable("./", str(tmp_path), "/bin")
    with pytest.raises(ExecutableError, match="not found in PATH"):
        resolve_executable("surely-no-such-program", None, str(tmp_path))
    assert resolve_executable("p.sh", None, str(tmp_path)) == str(script)


def test_concurrency_limit(reactor):
    runner = PluginRunner(reactor, concurrency=2, env={}, resolve=fake_resolve)
    ds = [Deferred.fromCoroutine(runner.run(PluginSpec(("./c",), None, 60))) for _ in range(5)]
    assert len(reactor.processes) == 2
    reactor.advance(3)
    reactor.processes[0].exit(0)
    assert len(reactor.processes) == 3
    for p in reactor.processes[1:3]:
        p.exit(1)
    assert len(reactor.processes) == 5
    for p in reactor.processes[3:]:
        p.exit(2)
    assert [result_of(d).outcome.state for d in ds] == ["OK", "WARN", "WARN", "FAIL", "FAIL"]
    # The run time of a queued plugin starts when it gets its slot, not when it was asked for.
    assert result_of(ds[2]).started == 3.0
