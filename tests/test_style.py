"""Lint and format are checked, not hoped for: `ruff check` and `ruff format --check` pass on the
Python sources, with the settings in pyproject.toml ([tool.ruff])."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PATHS = ["ssdmobile", "tests", "benchmarks", "recipes"]

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ruff") is None, reason="ruff not installed (pip install -e '.[dev]')"
)


def _ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, *PATHS],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _first(proc: subprocess.CompletedProcess, lines: int = 40) -> str:
    out = (proc.stdout + proc.stderr).strip().splitlines()
    more = f"\n... ({len(out) - lines} more lines)" if len(out) > lines else ""
    return "\n".join(out[:lines]) + more


def test_ruff_check_passes():
    proc = _ruff("check", "--no-cache", "--output-format", "concise")
    why = "ruff check found (`ruff check --fix` fixes the ones marked [*]):\n"
    assert proc.returncode == 0, why + _first(proc)


def test_ruff_format_is_applied():
    proc = _ruff("format", "--check", "--no-cache", "--output-format", "concise")
    why = "not formatted as ruff format writes it (run `ruff format`):\n"
    assert proc.returncode == 0, why + _first(proc)
