"""Shared fixtures: one fresh database per run, migrated once, emptied after every test."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import delete, text
from starlette.applications import Starlette

import app.models
from app.db import create_engine, create_session_factory
from app.db.base import metadata
from app.db.migrate import upgrade
from app.main import create_app
from app.settings import Settings
from tests.backends import BACKEND, IS_POSTGRES, REDIS_URL, fresh_database

TEST_SECRET_KEY = "test-secret-key-" + "x" * 32


def pytest_report_header() -> str:
    return f"syncforge backend: {BACKEND}"


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "redis_url": REDIS_URL if IS_POSTGRES else None,
        # Keys, channels and job queues of this run never meet another run's.
        "redis_namespace": f"sftest-{uuid.uuid4().hex[:8]}",
        "secret_key": TEST_SECRET_KEY,
        # Every test talks from 127.0.0.1 and, on PostgreSQL, one run shares one Redis namespace:
        # the address limit would be spent across tests. Tests of the limits set their own.
        "ip_rate_limit": "100000/minute",
        # The demo seeds an organization with a room at start: tests that count rows would see it.
        # Tests of the demo turn it on.
        "demo_enabled": False,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session")
async def database_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    async with fresh_database(tmp_path_factory.mktemp("db")) as url:
        await asyncio.to_thread(upgrade, make_settings(url))
        yield url


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
async def session_factory(settings: Settings):  # type: ignore[no-untyped-def]
    engine = create_engine(settings)
    yield create_session_factory(engine)
    await engine.dispose()


@pytest.fixture(autouse=True)
async def _empty_tables(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Every test starts from empty tables (only for tests that touched the shared database)."""
    yield
    if "database_url" not in request.fixturenames:
        return
    engine = create_engine(make_settings(request.getfixturevalue("database_url")))
    try:
        async with engine.begin() as connection:
            if IS_POSTGRES:  # a row still locked by a stuck session fails here, rather than hanging
                await connection.execute(text("SET LOCAL lock_timeout = '30s'"))
            for table in reversed(metadata.sorted_tables):
                await connection.execute(delete(table))
    finally:
        await engine.dispose()


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """A real uvicorn server on a real socket, in this event loop."""

    def __init__(self, application: Starlette) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/graphql"
        config = uvicorn.Config(
            application,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            ws="websockets-sansio",
            ws_per_message_deflate=False,
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self._task is not None:
            await self._task


@pytest.fixture
async def live_server(settings: Settings) -> AsyncIterator[LiveServer]:
    server = LiveServer(create_app(settings))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


@pytest.fixture
def anon(client: httpx.AsyncClient):  # type: ignore[no-untyped-def]
    from tests.gql import GQL

    return GQL(client)


@pytest.fixture
def running_worker(app: Starlette):  # type: ignore[no-untyped-def]
    """Jobs run during the test on both backends: in production mode this starts a worker in the
    test process consuming this run's Redis queues (the embedded default already has one)."""
    jobs = app.state.syncforge.jobs
    if jobs.is_embedded:
        yield jobs
        return
    worker = jobs.start_worker(1)
    try:
        yield jobs
    finally:
        worker.stop()


@pytest.fixture
async def live_server_with(settings: Settings):  # type: ignore[no-untyped-def]
    """Start live servers with settings overrides: `server = await live_server_with(presence_grace_s=1)`."""
    servers: list[LiveServer] = []

    async def start(**overrides: object) -> LiveServer:
        server = LiveServer(create_app(settings.model_copy(update=overrides)))
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()
