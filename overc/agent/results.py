"""What a finished plugin run means: pure functions from exit status and output to a report.

Kept free of processes and reactors so every mapping rule (Nagios exit codes, signals, timeouts,
output cap and decoding) is tested exhaustively without spawning anything.
"""
from __future__ import annotations

import signal as _signal
from dataclasses import dataclass, field
from typing import Any

#: Nagios plugin exit codes, in the order the plugin API defines them.
EXIT_STATES = ("OK", "WARN", "FAIL", "UNK")

#: Bytes of output kept per stream. The server accepts 65,536 characters of info; decoding never
#: yields more characters than bytes, so a capped output always fits.
OUTPUT_CAP = 64 * 1024

#: Marker appended when output was cut; the cap leaves room for it.
TRUNCATED_MARK = "\n[output truncated]"


@dataclass(frozen=True)
class Report:
    """One state of one service at one time, as the agent sends it (SPEC 1.3)."""

    name: str
    state: str
    info: str
    period: int
    time: float
    #: SPEC 9: a cron schedule and its zone, and how long the plugin ran (seconds).
    schedule: str | None = None
    tz: str | None = None
    duration: float | None = None

    def to_wire(self, with_time: bool = True) -> dict[str, Any]:
        """The JSON object for ``services[]``; ``time`` only when the report is late."""
        wire: dict[str, Any] = {
            "name": self.name,
            "state": self.state,
            "info": self.info,
            "period": self.period,
        }
        if with_time:
            wire["time"] = self.time
        if self.schedule is not None:
            wire["schedule"] = self.schedule
            wire["tz"] = self.tz or "UTC"
        if self.duration is not None:
            wire["duration"] = round(max(0.0, self.duration), 3)
        return wire

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> "Report":
        """Inverse of :meth:`to_wire` (used by the spool); raises on malformed data."""
        return cls(
            name=str(data["name"]),
            state=str(data["state"]),
            info=str(data.get("info", "")),
            period=int(data["period"]),
            time=float(data["time"]),
            schedule=None if data.get("schedule") is None else str(data["schedule"]),
            tz=None if data.get("tz") is None else str(data["tz"]),
            duration=None if data.get("duration") is None else float(data["duration"]),
        )


@dataclass(frozen=True)
class Outcome:
    """A plugin's state and info, before it is stamped with a service name and time."""

    state: str
    info: str


@dataclass
class CappedBuffer:
    """Collects a stream up to ``cap`` bytes and counts (but drops) the rest.

    The process protocol keeps reading past the cap so a chatty plugin never blocks on a full
    pipe; only memory is bounded.
    """

    cap: int = OUTPUT_CAP - len(TRUNCATED_MARK.encode())
    chunks: list[bytes] = field(default_factory=list)
    kept: int = 0
    dropped: int = 0

    def feed(self, data: bytes) -> None:
        room = self.cap - self.kept
        if room > 0:
            piece = data[:room]
            self.chunks.append(piece)
            self.kept += len(piece)
            self.dropped += len(data) - len(piece)
        else:
            self.dropped += len(data)

    def text(self) -> str:
        """The output as text: UTF-8 with replacement, trailing blanks removed, cut marked."""
        text = b"".join(self.chunks).decode("utf-8", errors="replace").rstrip()
        if self.dropped:
            text += TRUNCATED_MARK
        return text


def signal_name(number: int) -> str:
    """``9`` -> ``"SIGKILL"``; unknown numbers stay numeric."""
    try:
        return _signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def pick_info(stdout: str, stderr: str) -> str:
    """Info is stdout, or stderr when stdout is empty (SPEC 7)."""
    return stdout if stdout.strip() else stderr


def with_prefix(prefix: str, output: str) -> str:
    return f"{prefix}: {output}" if output else prefix


def from_exit(exit_code: int, output: str) -> Outcome:
    """Map a normal exit: 0/1/2/3 are OK/WARN/FAIL/UNK; anything else is UNK naming the code."""
    if 0 <= exit_code < len(EXIT_STATES):
        return Outcome(EXIT_STATES[exit_code], output)
    return Outcome("UNK", with_prefix(f"Plugin exited with code {exit_code}", output))


def from_signal(signum: int, output: str) -> Outcome:
    """A plugin killed by a signal is UNK, and the info says which signal."""
    return Outcome("UNK", with_prefix(f"Plugin killed by signal {signum} ({signal_name(signum)})", output))


def from_timeout(timeout: float) -> Outcome:
    """A plugin that outlived its timeout (SPEC 7 wording)."""
    return Outcome("UNK", f"Timed out after {timeout:g} s")


def from_start_failure(command: str, reason: str) -> Outcome:
    """A plugin that could not be started at all."""
    return Outcome("UNK", f"Cannot run {command}: {reason}")


#: What Twisted's forked child writes to stderr when ``exec`` fails before the plugin runs.
_TWISTED_EXEC_FAILURE = "Upon execvpe "


def exec_failure_reason(exit_code: int | None, stderr: str) -> str | None:
    """Recognise an exec failure reported by Twisted's child (exit 1 + traceback on stderr).

    Returns the last traceback line (``PermissionError: [Errno 13] Permission denied``), or
    ``None`` when the plugin itself ran.
    """
    if exit_code != 1 or not stderr.startswith(_TWISTED_EXEC_FAILURE):
        return None
    lines = [line for line in stderr.splitlines() if line.strip()]
    return lines[-1].strip() if lines else "exec failed"
