"""The code passes the linters CI promises (README, "Code layout"): ``ruff check``, ``ruff format --check`` and
``mypy`` on the package, with the settings in pyproject.toml. Run by the README's test command, so CI runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    tool = BIN / cmd[0]
    if not tool.exists():
        pytest.fail(f"{cmd[0]} is not installed in {BIN}: ./install.sh installs the test extras")
    return subprocess.run([str(tool), *cmd[1:]], cwd=ROOT, capture_output=True, text=True, timeout=900)


def test_ruff_check() -> None:
    r = _run("ruff", "check", "--no-cache", "soundmask", "tests", "benchmarks")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


def test_ruff_format() -> None:
    r = _run("ruff", "format", "--check", "--no-cache", "soundmask", "tests", "benchmarks")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


def test_mypy() -> None:
    r = _run("mypy")  # files and options from [tool.mypy] in pyproject.toml
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
