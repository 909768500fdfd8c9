"""Pure mapping of plugin exits and output to report states (no processes)."""
import signal

import pytest
from hypothesis import given, strategies as st

from overc.agent import results
from overc.agent.results import OUTPUT_CAP, CappedBuffer, Report


@pytest.mark.parametrize("code,state", [(0, "OK"), (1, "WARN"), (2, "FAIL"), (3, "UNK")])
def test_nagios_exit_codes(code, state):
    assert results.from_exit(code, "text") == results.Outcome(state, "text")


@pytest.mark.parametrize("code", [4, 7, 127, 255, -1])
def test_other_exit_codes_are_unk_naming_the_code(code):
    out = results.from_exit(code, "some output")
    assert out.state == "UNK"
    assert out.info == f"Plugin exited with code {code}: some output"


def test_other_exit_code_without_output():
    assert results.from_exit(7, "").info == "Plugin exited with code 7"


def test_signal_is_unk_naming_it():
    out = results.from_signal(signal.SIGKILL, "")
    assert out == results.Outcome("UNK", "Plugin killed by signal 9 (SIGKILL)")
    assert results.from_signal(15, "partial").info == "Plugin killed by signal 15 (SIGTERM): partial"


def test_unknown_signal_number():
    assert results.signal_name(250) == "signal 250"


def test_timeout_wording():
    assert results.from_timeout(30.0).info == "Timed out after 30 s"
    assert results.from_timeout(0.5).info == "Timed out after 0.5 s"
    assert results.from_timeout(2).state == "UNK"


def test_info_is_stdout_else_stderr():
    assert results.pick_info("out", "err") == "out"
    assert results.pick_info("  \n", "err") == "err"
    assert results.pick_info("", "") == ""


def test_capped_buffer_keeps_64k_and_marks_the_cut():
    buf = CappedBuffer()
    for _ in range(200):
        buf.feed(b"x" * 1000)
    text = buf.text()
    assert text.endswith(results.TRUNCATED_MARK)
    assert len(text.encode()) <= OUTPUT_CAP
    assert buf.kept + buf.dropped == 200_000


def test_capped_buffer_small_output_untouched_but_rstripped():
    buf = CappedBuffer()
    buf.feed(b"hello ")
    buf.feed(b"world\n\n")
    assert buf.text() == "hello world"


def test_invalid_utf8_is_replaced():
    buf = CappedBuffer()
    buf.feed(b"caf\xe9 \xff ok")
    assert buf.text() == "caf\ufffd \ufffd ok"


@given(st.lists(st.binary(max_size=5000), max_size=40))
def test_capped_text_always_fits_the_server_limit(chunks):
    buf = CappedBuffer()
    for c in chunks:
        buf.feed(c)
    assert len(buf.text()) <= 65536
    assert buf.kept <= OUTPUT_CAP


def test_twisted_exec_failure_is_recognised():
    stderr = "Upon execvpe /x ['x'] in environment id 1\n:Traceback (most recent call last):\n  ...\nPermissionError: [Errno 13] Permission denied\n"
    assert results.exec_failure_reason(1, stderr) == "PermissionError: [Errno 13] Permission denied"
    assert results.exec_failure_reason(2, stderr) is None
    assert results.exec_failure_reason(1, "plain warning") is None


def test_report_wire_round_trip():
    r = Report("disk", "WARN", "91%", 300, 1795000000.5)
    assert r.to_wire(False) == {"name": "disk", "state": "WARN", "info": "91%", "period": 300}
    assert Report.from_wire(r.to_wire()) == r
