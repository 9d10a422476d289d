"""The live demo (/demo): its page, its config and token endpoints, and the seeded organization.

The demo is on by default only in the embedded default; these tests turn it on explicitly, so they
run the same on SQLite and on PostgreSQL + Redis (where it is off unless SYNCFORGE_DEMO=true).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from starlette.applications import Starlette

from app.accounts import api_keys
from app.accounts.models import ApiKey, ApiKeyStatus, ApiKeyType, Organization
from app.db.migrate import upgrade
from app.demo import routes as demo_routes
from app.demo import seed as demo_seed
from app.documents.models import Document, DocumentType
from app.main import create_app
from app.rooms.models import Room, RoomAccess, RoomStatus
from app.security.keys import load_keys
from app.settings import Settings
from tests import factories
from tests.backends import REDIS_URL
from tests.conftest import TEST_SECRET_KEY, LiveServer
from tests.documents import APPLY, TEXT, YClient
from tests.gql import GQL
from tests.gqlws import graphql_ws
from tests.processes import spawn
from tests.realtime import PRESENCE, error_of, next_of

DEMO_PATHS = [
    ("GET", "/demo"),
    ("GET", "/demo/config"),
    ("POST", "/demo/token"),
    ("GET", "/demo-assets/demo.js"),
]
VISITOR = {"name": "Ada", "color": "#FF8800"}


@pytest.fixture
def demo_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"demo_enabled": True})


@pytest.fixture
async def demo_app(demo_settings: Settings) -> AsyncIterator[Starlette]:
    application = create_app(demo_settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def demo_client(demo_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=demo_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def demo_server(live_server_with: Any) -> LiveServer:
    return await live_server_with(demo_enabled=True)  # type: ignore[no-any-return]


async def _config(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get("/demo/config")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def _token(http: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await http.post("/demo/token", json={**VISITOR, **body})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


# --- the page ---------------------------------------------------------------------------------


async def test_the_page_loads_the_built_app_from_this_server(
    demo_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    built = tmp_path / "demo.js"
    built.write_text("export {};")
    monkeypatch.setattr(demo_routes, "DEMO_MARKER", built)
    page = await demo_client.get("/demo")
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert '<div id="root"></div>' in html
    assert '<link rel="stylesheet" href="/demo-assets/demo.css" />' in html
    assert '<script type="module" src="/demo-assets/demo.js"></script>' in html
    absolute = re.findall(r"(?i)(?:[a-z][a-z0-9+.-]*:)?//[a-z0-9-]+(?:\.[a-z0-9-]+)+", html)
    assert absolute == [], f"absolute URLs in the page: {absolute}"


async def test_the_page_explains_a_missing_build(
    demo_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(demo_routes, "DEMO_MARKER", tmp_path / "demo.js")
    page = await demo_client.get("/demo")
    assert page.status_code == 503
    assert "npm ci &amp;&amp; npm run build" in page.text
    # The rest of the demo (and the API) still answers.
    assert (await demo_client.get("/demo/config")).status_code == 200


async def test_assets_come_from_the_build_directory(
    demo_settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    build = tmp_path / "static"
    build.mkdir()
    (build / "demo.js").write_text("console.log('demo');")
    (build / "demo.css").write_text("body { margin: 0 }")
    for directory, expected in ((build, 200), (tmp_path / "not-built", 404)):
        monkeypatch.setattr(demo_routes, "DEMO_ASSETS", directory)
        application = create_app(demo_settings)
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            script = await http.get("/demo-assets/demo.js")
            assert script.status_code == expected, script.text  # a missing build is 404, not 500
            if expected == 200:
                assert "javascript" in script.headers["content-type"]
                assert script.text == "console.log('demo');"
                css = await http.get("/demo-assets/demo.css")
                assert css.headers["content-type"].startswith("text/css")
            assert (await http.get("/demo-assets/../app/settings.py")).status_code == 404


# --- config and tokens ------------------------------------------------------------------------


async def test_config_names_rows_that_exist(demo_client: httpx.AsyncClient, session_factory: Any) -> None:
    config = await _config(demo_client)
    assert config["roomSlug"] == "demo:lobby" and config["documentSlug"] == "shared-text"
    assert config["graphqlPath"] == "/graphql"
    async with session_factory() as session:
        key = await api_keys.find_active(session, config["publicApiKey"])
        assert key is not None and key.type == ApiKeyType.PUBLISHABLE
        assert key.rate_limit == demo_seed.KEY_RATE_LIMIT  # shared by every visitor
        organization = await session.get(Organization, key.organization_id)
        assert organization is not None and organization.slug == demo_seed.ORGANIZATION_SLUG
        room = await session.get(Room, uuid.UUID(config["roomId"]))
        assert room is not None and room.organization_id == organization.id
        assert room.slug == "demo:lobby" and room.status == RoomStatus.ACTIVE
        assert room.access == RoomAccess.PRIVATE  # only the tokens' grants open it
        assert room.features["presence"] and room.features["cursors"]
        document = await session.get(Document, uuid.UUID(config["documentId"]))
        assert document is not None and document.room_id == room.id
        assert document.slug == "shared-text" and document.type == DocumentType.TEXT
    assert (await _config(demo_client)) == config  # the same on every request


async def test_a_visitor_token_works_in_the_demo_room(demo_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=demo_server.url) as http:
        config = await _config(http)
        minted = await _token(http)
        assert re.fullmatch(r"visitor-[0-9a-f]{16}", minted["userId"]), minted
        assert minted["expiresAt"].endswith("+00:00")
        again = await _token(http, userId=minted["userId"], name="Ada L.")
        assert again["userId"] == minted["userId"]  # the page keeps its visitor id

        credentials = {"apiKey": config["publicApiKey"], "token": again["token"]}
        async with graphql_ws(demo_server.ws_url, credentials) as ws:
            op = await ws.subscribe(PRESENCE, {"room": config["roomId"], "presence": {"page": "demo"}})
            sync = (await next_of(ws, op))["roomPresence"]
            assert sync["kind"] == "SYNC"
            (me,) = [user for user in sync["users"] if user["userId"] == minted["userId"]]
            assert me["info"]["name"] == "Ada L." and me["info"]["color"] == "#ff8800"

        # The shared text is writable and readable with the same credentials over HTTP.
        visitor = GQL(http).bearer(again["token"], **{"x-api-key": config["publicApiKey"]})
        applied = await visitor.data(APPLY, id=config["documentId"], update=YClient().append("hello"))
        assert applied["applyDocumentUpdate"]["seq"] >= 1
        assert (await visitor.data(TEXT, id=config["documentId"]))["document"]["text"] == "hello"
        viewer = (await visitor.data("{ viewer { kind userId } }"))["viewer"]
        assert viewer == {"kind": "end_user", "userId": minted["userId"]}


async def test_a_visitor_token_opens_no_room_outside_demo(
    demo_server: LiveServer, session_factory: Any
) -> None:
    async with httpx.AsyncClient(base_url=demo_server.url) as http:
        config = await _config(http)
        minted = await _token(http)
    async with session_factory() as session:
        key = await api_keys.find_active(session, config["publicApiKey"])
        assert key is not None
        demo_org_id = key.organization_id
    other_org = factories.organization()
    outside = factories.room_in(demo_org_id, slug="lobby")  # same organization, not demo:*
    lookalike = factories.room(other_org, slug="demo:lobby")  # demo:* in another organization
    await factories.add(session_factory, other_org, outside, lookalike)
    credentials = {"apiKey": config["publicApiKey"], "token": minted["token"]}
    async with graphql_ws(demo_server.ws_url, credentials) as ws:
        for room in (outside, lookalike):
            op = await ws.subscribe(PRESENCE, {"room": str(room.id)})
            error = await error_of(ws, op)
            assert error["extensions"]["code"] in ("NOT_FOUND", "FORBIDDEN"), error


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json", None),
        (b"[1, 2]", None),
        (b'"Ada"', None),
        (b'{"color": "#ff0000"}', "name"),
        (b'{"name": "", "color": "#ff0000"}', "name"),
        (b'{"name": "   ", "color": "#ff0000"}', "name"),
        (b'{"name": "' + b"x" * 41 + b'", "color": "#ff0000"}', "name"),
        (b'{"name": 7, "color": "#ff0000"}', "name"),
        (b'{"name": "A\\u0000da", "color": "#ff0000"}', "name"),
        (b'{"name": "A\\nda", "color": "#ff0000"}', "name"),
        (b'{"name": "Ada"}', "color"),
        (b'{"name": "Ada", "color": "red"}', "color"),
        (b'{"name": "Ada", "color": "#ff00001"}', "color"),
        (b'{"name": "Ada", "color": "#ff0000", "userId": ""}', "userId"),
        (b'{"name": "Ada", "color": "#ff0000", "userId": "a b"}', "userId"),
        (b'{"name": "Ada", "color": "#ff0000", "userId": "' + b"v" * 65 + b'"}', "userId"),
        (b'{"name": "Ada", "color": "#ff0000", "userId": 12}', "userId"),
        (b'{"name": "Ada", "color": "#ff0000", "userId": "other:org"}', "userId"),
    ],
)
async def test_bad_token_requests_are_validation_errors(
    demo_client: httpx.AsyncClient, body: bytes, field: str | None
) -> None:
    response = await demo_client.post(
        "/demo/token", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR" and error["field"] == field, error
    assert error["message"]


async def test_tokens_are_rate_limited_per_address(settings: Settings) -> None:
    tight = settings.model_copy(
        update={
            "demo_enabled": True,
            "demo_token_rate_limit": "3/minute",
            "redis_namespace": f"sftest-{uuid.uuid4().hex[:8]}",  # counters of this test alone
        }
    )
    application = create_app(tight)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            for _ in range(3):
                await _token(http)
            refused = await http.post("/demo/token", json=VISITOR)
            assert refused.status_code == 429, refused.text
            error = refused.json()["error"]
            assert error["code"] == "RATE_LIMITED" and error["retryAfter"] >= 1
            assert int(refused.headers["retry-after"]) >= 1
            # Only the token endpoint is limited this tightly.
            assert (await http.get("/demo/config")).status_code == 200


# --- on only where it should be -----------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [{"demo_enabled": False}, {"redis_url": REDIS_URL, "demo_enabled": None}],
    ids=["turned-off", "production-mode"],
)
async def test_the_demo_is_off_in_production(settings: Settings, overrides: dict[str, Any]) -> None:
    off = settings.model_copy(update=overrides)
    assert not off.serves_demo
    # (routes are chosen when the app is built: no lifespan, so no Redis, is needed to see them)
    application = create_app(off)
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        for method, path in DEMO_PATHS:
            response = await http.request(method, path, json=VISITOR if method == "POST" else None)
            assert response.status_code == 404, (path, response.status_code)
        landing = await http.get("/", headers={"accept": "text/html"})
        assert 'href="/graphql"' in landing.text and 'href="/demo"' not in landing.text


def test_the_default_is_on_only_in_the_embedded_default() -> None:
    secret = {"secret_key": TEST_SECRET_KEY}
    assert Settings(database_url="sqlite+aiosqlite:///x.db", **secret).serves_demo
    assert not Settings(database_url="sqlite+aiosqlite:///x.db", redis_url="redis://r:6379/0").serves_demo
    assert not Settings(database_url="postgresql://u@db:5432/app", **secret).serves_demo
    assert Settings(database_url="postgresql://u@db:5432/app", demo_enabled=True, **secret).serves_demo


async def test_no_demo_organization_when_off(settings: Settings, session_factory: Any) -> None:
    application = create_app(settings.model_copy(update={"demo_enabled": False}))
    async with application.router.lifespan_context(application):
        pass
    async with session_factory() as session:
        found = await session.execute(
            select(Organization).where(Organization.slug == demo_seed.ORGANIZATION_SLUG)
        )
        assert found.first() is None


# --- seeding ----------------------------------------------------------------------------------


async def _counts(session_factory: Any) -> tuple[int, int, int, int]:
    async with session_factory() as session:
        org_ids = select(Organization.id).where(Organization.slug == demo_seed.ORGANIZATION_SLUG)
        room_ids = select(Room.id).where(Room.organization_id.in_(org_ids))  # type: ignore[attr-defined]

        async def count(query: Any) -> int:
            return int(
                (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
            )

        return (
            await count(org_ids),
            await count(room_ids),
            await count(select(Document.id).where(Document.room_id.in_(room_ids))),  # type: ignore[attr-defined]
            await count(
                select(ApiKey.id).where(
                    ApiKey.organization_id.in_(org_ids),  # type: ignore[attr-defined]
                    ApiKey.status == ApiKeyStatus.ACTIVE,
                )
            ),
        )


async def test_seeding_twice_and_concurrently_makes_one_of_each(
    settings: Settings, session_factory: Any
) -> None:
    keys = load_keys(settings)
    seeds = await asyncio.gather(*(demo_seed.seed(session_factory, keys) for _ in range(4)))
    seeds.append(await demo_seed.seed(session_factory, keys))
    assert all(seed == seeds[0] for seed in seeds), seeds
    assert {seed.public_api_key for seed in seeds} == {seeds[0].public_api_key}
    assert await _counts(session_factory) == (1, 1, 1, 1)


async def test_two_processes_starting_at_once_serve_the_same_demo(
    settings: Settings, session_factory: Any, tmp_path: Path
) -> None:
    # Real `syncforge serve` processes, started together: each seeds at start.
    redis_url = REDIS_URL if settings.redis_url else None
    started = await asyncio.gather(
        *(asyncio.to_thread(spawn, settings, redis_url, tmp_path, SYNCFORGE_DEMO="true") for _ in range(2))
    )
    try:
        configs = []
        for process in started:
            async with httpx.AsyncClient(base_url=process.url) as http:
                configs.append(await _config(http))
        assert configs[0] == configs[1]
        assert await _counts(session_factory) == (1, 1, 1, 1)
    finally:
        for process in started:
            process.popen.terminate()
            process.popen.wait(timeout=20)


async def test_seeding_mends_what_changed(settings: Settings, session_factory: Any) -> None:
    keys = load_keys(settings)
    first = await demo_seed.seed(session_factory, keys)
    async with session_factory() as session:
        room = await session.get(Room, first.room_id)
        document = await session.get(Document, first.document_id)
        key = await session.get(ApiKey, first.api_key_id)
        assert room is not None and document is not None and key is not None
        room.status = RoomStatus.ARCHIVED  # the idle-room job archived it
        document.deleted_at = room.inserted_at  # someone trashed it
        key.status = ApiKeyStatus.REVOKED
        await session.commit()
    mended = await demo_seed.seed(session_factory, keys)
    assert (mended.organization_id, mended.room_id, mended.document_id) == (
        first.organization_id,
        first.room_id,
        first.document_id,
    )
    assert mended.api_key_id != first.api_key_id and mended.public_api_key != first.public_api_key
    async with session_factory() as session:
        room = await session.get(Room, first.room_id)
        document = await session.get(Document, first.document_id)
        assert room is not None and room.status == RoomStatus.ACTIVE
        assert document is not None and document.deleted_at is None
        assert await api_keys.find_active(session, mended.public_api_key) is not None
        assert await api_keys.find_active(session, first.public_api_key) is None
    # A new deployment secret: a new key, and the old secret's key stops working.
    another_secret = settings.model_copy(update={"secret_key": "another-" + "k" * 32})
    rotated = await demo_seed.seed(session_factory, load_keys(another_secret))
    assert rotated.public_api_key != mended.public_api_key
    async with session_factory() as session:
        assert await api_keys.find_active(session, mended.public_api_key) is None
    assert await _counts(session_factory) == (1, 1, 1, 1)


async def test_a_token_reopens_an_archived_demo_room(
    demo_client: httpx.AsyncClient, session_factory: Any
) -> None:
    config = await _config(demo_client)
    async with session_factory() as session:
        room = await session.get(Room, uuid.UUID(config["roomId"]))
        assert room is not None
        room.status = RoomStatus.ARCHIVED
        await session.commit()
    await _token(demo_client)
    async with session_factory() as session:
        room = await session.get(Room, uuid.UUID(config["roomId"]))
        assert room is not None and room.status == RoomStatus.ACTIVE


async def test_a_database_not_ready_at_start_is_retried(tmp_path: Path) -> None:
    # A fresh SQLite file, not migrated yet: the process starts anyway, the demo answers 503,
    # and once the database is migrated the next request seeds it.
    late = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'late.db'}",
        secret_key=TEST_SECRET_KEY,
        demo_enabled=True,
    )
    application = create_app(late)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            early = await http.get("/demo/config")
            assert early.status_code == 503 and early.json()["error"]["code"] == "UNAVAILABLE"
            assert int(early.headers["retry-after"]) >= 1
            await asyncio.to_thread(upgrade, late)
            assert (await _config(http))["roomSlug"] == "demo:lobby"
