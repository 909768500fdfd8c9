"""``mypy overc`` with the mypy-zope plugin (config in setup.cfg) is part of the suite.

A type error is a defect like a failing test: running it here keeps the README's one test
command (and so CI) the only thing anyone has to remember.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_reports_no_errors() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "overc"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
