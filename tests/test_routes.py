"""Plain HTTP probes: /healthz says the process is up, /readyz names a failing dependency."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import httpx
import pytest

from app.main import create_app
from app.settings import Settings
from tests.conftest import free_port


async def test_healthz_and_readyz(client: httpx.AsyncClient, settings: Settings) -> None:
    assert (await client.get("/healthz")).json()["status"] == "ok"
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready" and body["failing"] == []
    assert set(body["dependencies"]) == ({"database", "redis"} if settings.redis_url else {"database"})


async def test_readyz_names_an_unreachable_database() -> None:
    app = create_app(
        Settings(database_url="postgresql+asyncpg://postgres@127.0.0.1:1/nowhere", secret_key="k" * 32)
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get("/healthz")).status_code == 200  # the process itself is up
            ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["failing"] == ["database"]


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
async def test_readyz_names_redis_when_it_goes_away(settings: Settings) -> None:
    # A private Redis, so it can be stopped without disturbing anything else.
    port = free_port()
    redis = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(50):
            if subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).returncode == 0:
                break
            await asyncio.sleep(0.1)
        app = create_app(settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{port}/0"}))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                assert (await client.get("/readyz")).status_code == 200
                redis.terminate()
                redis.wait(timeout=10)
                ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["failing"] == ["redis"]
    finally:
        if redis.poll() is None:
            redis.kill()
