"""API processes started as `syncforge serve` subprocesses on this run's database (and Redis)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
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


def spawn(
    settings: Settings, redis_url: str | None, tmp: Path, port: int | None = None, **extra_env: str
) -> Process:
    """A `syncforge serve` process, answering /healthz (on `port`, e.g. to restart one in place)."""
    port = port or free_port()
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


REDIS_SERVER = Path("/usr/bin/redis-server")


class PrivateRedis:
    """A redis-server of the test's own on a free port (it keeps nothing), to stop and start again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        command = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        for _ in range(100):
            ping = subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True)
            if ping.returncode == 0:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("redis did not start")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None

    def kill(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None


@asynccontextmanager
async def private_redis() -> AsyncIterator[PrivateRedis]:
    redis = PrivateRedis()
    await redis.start()
    try:
        yield redis
    finally:
        redis.kill()


_PG_ROOT = Path("/usr/lib/postgresql")
PG_BIN = _PG_ROOT / (sorted(os.listdir(_PG_ROOT))[-1] if _PG_ROOT.is_dir() else "") / "bin"


class PrivatePostgres:
    """A PostgreSQL server of the test's own (initdb in a temporary folder, a free port), to stop
    abruptly and start again without disturbing the shared one. PostgreSQL refuses to run as
    root: it runs as the `postgres` user when the tests run as root."""

    def __init__(self) -> None:
        self.port = free_port()
        # Not under pytest's temporary folder: that is private to root, and the server runs as postgres.
        self.data = Path(tempfile.mkdtemp(prefix="syncforge-pg-"))
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *command], check=True, capture_output=True)

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.data, "postgres", "postgres")
        self._run(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"
        )

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.data}"
        self._run(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-w",
            "-l",
            str(self.data / "log"),
            "start",
        )

    def crash(self) -> None:
        """Stop at once, like a power cut of the database (no checkpoint, clients cut off)."""
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop")
        shutil.rmtree(self.data, ignore_errors=True)


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    postgres = PrivatePostgres()
    postgres.init()
    postgres.start()
    try:
        yield postgres
    finally:
        postgres.stop()
