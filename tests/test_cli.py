"""The `syncforge` command as a user runs it: help, one-line configuration errors, a fresh serve."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

SYNCFORGE = [sys.executable, "-m", "app.cli"]


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    return subprocess.run(
        [*SYNCFORGE, *args],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_help_explains_every_subcommand(tmp_path: Path) -> None:
    result = run(["--help"], tmp_path)
    assert result.returncode == 0
    for command in ("serve", "worker", "migrate", "export-schema"):
        assert command in result.stdout
    serve_help = run(["serve", "--help"], tmp_path).stdout
    assert "--host" in serve_help and "--port" in serve_help


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "syncforge"
    assert script.exists(), "pip install -e . should install the syncforge entry point"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DATABASE_URL": "mysql://x@localhost/db"}, "DATABASE_URL: unsupported database"),
        (
            {"DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:1/nope"},
            "DATABASE_URL: cannot connect",
        ),
        ({"REDIS_URL": "redis://127.0.0.1:1/0"}, "REDIS_URL: cannot connect"),
        ({"REDIS_URL": "http://nope"}, "REDIS_URL: must start with redis://"),
    ],
)
def test_serve_stops_with_one_line_naming_the_setting(
    tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    result = run(["serve", "--port", str(free_port())], tmp_path, env)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"syncforge: error: {expected}"), lines[0]
    assert "Traceback" not in result.stderr


def test_worker_needs_redis(tmp_path: Path) -> None:
    result = run(["worker"], tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("syncforge: error: REDIS_URL: required")


def test_serve_on_a_fresh_directory_migrates_and_answers(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [*SYNCFORGE, "serve", "--port", str(port)],
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        answer = httpx.post(
            f"http://127.0.0.1:{port}/graphql", json={"query": "{ health { ok mode } }"}, timeout=5
        ).json()
        assert answer == {"data": {"health": {"ok": True, "mode": "embedded"}}}
        assert (tmp_path / "syncforge.db").exists()
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_export_schema_matches_the_committed_file(tmp_path: Path, repo_root: Path) -> None:
    result = run(["export-schema"], tmp_path)
    assert result.returncode == 0
    assert result.stdout == (repo_root / "schema.graphql").read_text(), (
        "schema.graphql is stale: run `make schema`"
    )
