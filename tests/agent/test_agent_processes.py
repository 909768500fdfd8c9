"""Real plugin processes on the real reactor: exit codes, timeouts, big output, signals, exec errors.

Also Debian's ``monitoring-plugins-basic`` run unchanged. Those tests skip when the package is
missing, except with ``CI=true`` where a missing package is a failure.
"""
import os

import pytest
import pytest_twisted

import signal
import sys

from agent_fakes import CHILD
from overc.agent.plugin_runner import SETSID, PluginRunner, PluginSpec, shell_argv

pytestmark = pytest.mark.slow

NAGIOS = "/usr/lib/nagios/plugins"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_nagios_plugins():
    if not os.path.exists(os.path.join(NAGIOS, "check_dummy")):
        if IN_CI:
            pytest.fail(f"monitoring-plugins-basic is required in CI ({NAGIOS}/check_dummy missing)")
        pytest.skip("monitoring-plugins-basic is not installed")


def script(folder, name, body, mode=0o755):
    path = folder / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(mode)
    return f"./{name}"


@pytest.fixture(autouse=True, params=["posix_spawn", "fork"])
def spawn_path(request, tmp_path, monkeypatch):
    """Every test twice, down both of Twisted's paths: ``posix_spawnp`` (the plugin runs in our
    own working folder, as the monitor runs them) and fork + exec (another folder)."""
    if request.param == "posix_spawn":
        monkeypatch.chdir(tmp_path)
    return request.param


async def run(tmp_path, argv, timeout=10.0, kill_grace=5.0, own_group=False):
    from twisted.internet import reactor

    runner = PluginRunner(reactor, concurrency=4, kill_grace=kill_grace, drain_grace=0.5)
    result = await runner.run(PluginSpec(tuple(argv), str(tmp_path), timeout, own_group=own_group))
    runner.close()
    return result.outcome, result.finished - result.started


async def gone(pid: int, within: float = 5.0) -> bool:
    """Whether ``pid`` is dead (or a zombie) within ``within`` seconds: a SIGKILL is not instant."""
    from twisted.internet import reactor, task

    deadline = reactor.seconds() + within
    while alive(pid) and reactor.seconds() < deadline:
        await task.deferLater(reactor, 0.05, lambda: None)
    return not alive(pid)


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("code,state", [(0, "OK"), (1, "WARN"), (2, "FAIL"), (3, "UNK")])
@pytest_twisted.ensureDeferred
async def test_exit_codes(tmp_path, code, state):
    cmd = script(tmp_path, "p.sh", f'echo "exit {code} | v={code};1;2"\nexit {code}\n')
    outcome, _ = await run(tmp_path, [cmd])
    assert (outcome.state, outcome.info) == (state, f"exit {code} | v={code};1;2")


@pytest_twisted.ensureDeferred
async def test_exit_7_is_unk_with_the_code(tmp_path):
    cmd = script(tmp_path, "p.sh", "echo odd\nexit 7\n")
    outcome, _ = await run(tmp_path, [cmd])
    assert (outcome.state, outcome.info) == ("UNK", "Plugin exited with code 7: odd")


@pytest_twisted.ensureDeferred
async def test_cwd_is_the_config_folder_and_stderr_fallback(tmp_path):
    cmd = script(tmp_path, "p.sh", "pwd >&2\nexit 2\n")
    outcome, _ = await run(tmp_path, [cmd])
    assert (outcome.state, outcome.info) == ("FAIL", str(tmp_path))


@pytest_twisted.ensureDeferred
async def test_sleeping_past_timeout_gets_term(tmp_path):
    cmd = script(tmp_path, "p.sh", "exec sleep 30\n")
    outcome, took = await run(tmp_path, [cmd], timeout=0.5)
    assert (outcome.state, outcome.info) == ("UNK", "Timed out after 0.5 s")
    assert took < 3


@pytest_twisted.ensureDeferred
async def test_ignoring_term_gets_kill(tmp_path):
    # The shell ignores SIGTERM; its child sleep keeps the pipes open after the shell is killed.
    cmd = script(tmp_path, "p.sh", "trap '' TERM\nsleep 30\n")
    outcome, took = await run(tmp_path, [cmd], timeout=0.3, kill_grace=0.5)
    assert (outcome.state, outcome.info) == ("UNK", "Timed out after 0.3 s")
    assert 0.8 <= took < 5


@pytest_twisted.ensureDeferred
async def test_one_mib_of_output_is_capped_without_deadlock(tmp_path):
    cmd = script(tmp_path, "p.sh", "head -c 1048576 /dev/zero | tr '\\0' x\necho\necho tail\nexit 1\n")
    outcome, _ = await run(tmp_path, [cmd])
    assert outcome.state == "WARN"
    assert len(outcome.info.encode()) <= 64 * 1024
    assert outcome.info.startswith("xxxx") and outcome.info.endswith("[output truncated]")


@pytest_twisted.ensureDeferred
async def test_killed_by_a_signal(tmp_path):
    cmd = script(tmp_path, "p.sh", "echo dying\nkill -9 $$\n")
    outcome, _ = await run(tmp_path, [cmd])
    assert (outcome.state, outcome.info) == ("UNK", "Plugin killed by signal 9 (SIGKILL): dying")


@pytest_twisted.ensureDeferred
async def test_not_executable(tmp_path):
    cmd = script(tmp_path, "p.sh", "exit 0\n", mode=0o644)
    outcome, _ = await run(tmp_path, [cmd])
    assert outcome.state == "UNK"
    assert outcome.info == "Cannot run ./p.sh: Permission denied (not executable)"


@pytest_twisted.ensureDeferred
async def test_missing_interpreter_is_unk_with_reason(tmp_path):
    path = tmp_path / "p.sh"
    path.write_text("#!/nonexistent/interpreter\n")
    path.chmod(0o755)
    outcome, _ = await run(tmp_path, ["./p.sh"])
    assert outcome.state == "UNK"
    assert "No such file or directory" in outcome.info and outcome.info.startswith("Cannot run")


@pytest_twisted.ensureDeferred
async def test_invalid_utf8(tmp_path):
    cmd = script(tmp_path, "p.sh", "printf 'caf\\351\\n'\n")
    outcome, _ = await run(tmp_path, [cmd])
    assert outcome.info == "caf\ufffd"


@pytest_twisted.ensureDeferred
async def test_shell_mode(tmp_path):
    outcome, _ = await run(tmp_path, ["/bin/sh", "-c", "echo a | tr a b; exit 1"])
    assert (outcome.state, outcome.info) == ("WARN", "b")


@pytest_twisted.ensureDeferred
async def test_shell_plugin_timeout_kills_its_whole_process_group(tmp_path):
    if SETSID is None and IN_CI:
        pytest.fail("setsid(1) (util-linux) is required in CI")
    if SETSID is None:
        pytest.skip("no setsid(1)")
    # The shell waits for a child sleep: a SIGTERM to the shell alone would leave the sleep.
    outcome, took = await run(tmp_path, shell_argv("sleep 300 & echo $! > child.pid; wait"), timeout=0.5, own_group=True)
    assert (outcome.state, outcome.info) == ("UNK", "Timed out after 0.5 s")
    assert took < 3
    assert await gone(int((tmp_path / "child.pid").read_text()))


@pytest_twisted.ensureDeferred
async def test_shell_plugin_children_that_ignore_term_are_killed_with_it(tmp_path):
    if SETSID is None:
        pytest.skip("no setsid(1)")
    # The child ignores SIGTERM and outlives its shell, which dies of it at once.
    command = "(trap '' TERM; exec sleep 300) & echo $! > child.pid; wait"
    outcome, took = await run(tmp_path, shell_argv(command), timeout=0.5, own_group=True)
    assert (outcome.state, outcome.info) == ("UNK", "Timed out after 0.5 s")
    assert took < 3
    assert await gone(int((tmp_path / "child.pid").read_text()))


@pytest_twisted.ensureDeferred
async def test_child_gets_only_its_fds_default_signals_and_dev_null(tmp_path):
    leak_r, leak_w = os.pipe()
    os.set_inheritable(leak_r, True)
    old = signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    try:
        outcome, _ = await run(tmp_path, [sys.executable, "-c", CHILD])
    finally:
        signal.signal(signal.SIGUSR1, old)
        os.close(leak_r)
        os.close(leak_w)
    assert outcome.state == "OK", outcome
    assert outcome.info == "[] True /dev/null True"


@pytest.mark.parametrize("code,state", [(0, "OK"), (1, "WARN"), (2, "FAIL"), (3, "UNK")])
@pytest_twisted.ensureDeferred
async def test_nagios_check_dummy(tmp_path, code, state):
    require_nagios_plugins()
    outcome, _ = await run(tmp_path, [f"{NAGIOS}/check_dummy", str(code), "hello"])
    assert outcome.state == state
    assert outcome.info.endswith(": hello")


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["check_load", "-w", "1000,1000,1000", "-c", "2000,2000,2000"], "load1="),
        (["check_disk", "-w", "1%", "-c", "1%", "-p", "/"], "="),
        (["check_procs", "-w", "100000", "-c", "200000"], "procs="),
    ],
)
@pytest_twisted.ensureDeferred
async def test_nagios_plugins_with_perfdata(tmp_path, argv, needle):
    require_nagios_plugins()
    outcome, _ = await run(tmp_path, [os.path.join(NAGIOS, argv[0])] + argv[1:])
    assert outcome.state in ("OK", "WARN", "FAIL"), outcome.info
    assert "|" in outcome.info and needle in outcome.info.split("|", 1)[1]
