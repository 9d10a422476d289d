"""Plain HTTP probes: /healthz says the process is up, /readyz names a failing dependency."""

from __future__ import annotations

import shutil

import httpx
import pytest

from app.main import create_app
from app.settings import Settings
from tests.processes import private_redis


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
    async with private_redis() as redis:
        app = create_app(settings.model_copy(update={"redis_url": redis.url}))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                assert (await client.get("/readyz")).status_code == 200
                redis.stop()
                ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["failing"] == ["redis"]


@pytest.mark.parametrize("demo", [True, False])
async def test_the_root_leads_a_browser_to_graphiql_and_the_demo(settings: Settings, demo: bool) -> None:
    app = create_app(settings.model_copy(update={"demo_enabled": demo}))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        page = await client.get("/", headers={"accept": "text/html,application/xhtml+xml"})
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert 'href="/graphql"' in page.text and "collaboration backend" in page.text
        assert ('href="/demo"' in page.text) is demo
        assert "syncforge dev-keys" in page.text
        # Other clients are sent to the API, as before.
        other = await client.get("/", headers={"accept": "application/json"})
        assert other.status_code == 307 and other.headers["location"] == "/graphql"
