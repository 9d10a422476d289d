"""API processes started as `syncforge serve` subprocesses on this run's database (and Redis)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from app.settings import Settings
from tests.conftest import free_port


@dataclass
class Process:
    port: int
    popen: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"


def spawn(settings: Settings, redis_url: str | None, tmp: Path, **extra_env: str) -> Process:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "SYNCFORGE_REDIS_NAMESPACE": settings.redis_namespace,
        "SYNCFORGE_SECRET_KEY": settings.secret_key or "",
        "SYNCFORGE_PRESENCE_GRACE_S": "1",
        "SYNCFORGE_CURSOR_HEARTBEAT_S": "1",
        "SYNCFORGE_LOG_LEVEL": "warning",
        **extra_env,
    }
    env.pop("REDIS_URL", None)
    if redis_url:
        env["REDIS_URL"] = redis_url
    popen = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        cwd=tmp,
        env=env,
        stdout=subprocess.DEVNULL,
        # SYNCFORGE_TEST_PROCESS_LOG=path keeps the processes' logs, for debugging.
        stderr=open(os.environ["SYNCFORGE_TEST_PROCESS_LOG"], "ab")  # noqa: SIM115
        if os.environ.get("SYNCFORGE_TEST_PROCESS_LOG")
        else subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return Process(port, popen)
        except httpx.TransportError:
            pass
        assert popen.poll() is None, "the server process exited"
        assert time.monotonic() < deadline, "the server process did not start"
        time.sleep(0.2)


@contextmanager
def processes(
    settings: Settings, redis_url: str | None, tmp: Path, count: int, **extra_env: str
) -> Iterator[list[Process]]:
    started = [spawn(settings, redis_url, tmp, **extra_env) for _ in range(count)]
    try:
        yield started
    finally:
        for process in started:
            if process.popen.poll() is None:
                process.popen.terminate()
                process.popen.wait(timeout=20)
