"""The code base stays ruff-clean (the style gate runs with the suite, so CI enforces it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_ruff_check_and_format(repo_root: Path) -> None:
    for args in (["check", "."], ["format", "--check", "."]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *args], cwd=repo_root, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr
