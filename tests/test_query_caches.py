"""The caches keyed by query text (validation over HTTP and WebSocket, the WebSocket fast path's
plans) are bounded in bytes: distinct large documents are not kept, many distinct documents
evict each other within the bound, and the small documents clients repeat are still hits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from app.graphql import validation_cache
from app.graphql.byte_lru import ENTRY_OVERHEAD_BYTES, ByteLRU
from app.graphql.validation_cache import ValidatedQueries
from app.graphql.view import GraphQLView
from app.graphql.ws import plans as plans_module
from app.main import create_app
from app.settings import Settings
from tests.conftest import LiveServer
from tests.gql import GQL
from tests.realtime import RoomSetup, run, setup_room

MOVE = "mutation($r: UUID!) { moveCursor(roomId: $r, x: 1) }"


def padded(document: str, size: int, tag: object) -> str:
    """`document`, distinct by `tag`, padded with a comment to about `size` bytes (still valid)."""
    head = f"{document} # {tag} "
    return head + "x" * max(0, size - len(head))


def view_of(app: Starlette) -> GraphQLView:
    for route in app.routes:
        endpoint = getattr(route, "endpoint", None)
        if isinstance(endpoint, GraphQLView):
            return endpoint
    raise AssertionError("no GraphQL view")


def validations_of(app: Starlette) -> ByteLRU[str, bool]:
    schema = view_of(app).schema
    return next(ext for ext in schema.extensions if isinstance(ext, ValidatedQueries)).cache


@pytest.fixture
def unlimited(settings: Settings) -> Settings:
    # Hundreds of requests from one address in a test: not what the abuse limits are about.
    return settings.model_copy(update={"ip_rate_limit": "100000/minute"})


@pytest.fixture
async def http(unlimited: Settings) -> AsyncIterator[tuple[Starlette, GQL]]:
    application = create_app(unlimited)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield application, GQL(client)


def test_the_byte_lru_keeps_within_its_bytes_and_refuses_large_entries() -> None:
    cache: ByteLRU[str, int] = ByteLRU(10_000, max_entry_bytes=2_000)
    assert not cache.put("large", 1, 2_000) and "large" not in cache and cache.bytes == 0
    for i in range(100):
        assert cache.put(f"k{i}", i, 1_000)
        cache.get("k0", None)  # used again and again: kept while the others come and go
        assert cache.bytes <= cache.max_bytes
    assert len(cache) == 10_000 // (1_000 + ENTRY_OVERHEAD_BYTES)
    assert cache.get("k0", None) == 0 and cache.get("k99", None) == 99 and "k1" not in cache
    before = cache.bytes
    cache.put("k99", 99, 10)  # replaced: charged once, at its new size
    assert cache.bytes == before - 1_000 + 10 and cache.get("k99", None) == 99


async def test_distinct_large_queries_over_http_are_not_kept(http: tuple[Starlette, GQL]) -> None:
    app, gql = http
    cache = validations_of(app)
    for i in range(30):
        # Like the report's: anonymous, valid, and far larger than any client's operation.
        body = await gql.raw(padded("query { __typename }", 256 << 10, i))
        assert body == {"data": {"__typename": "Query"}}
    assert len(cache) == 0 and cache.bytes == 0


async def test_many_distinct_queries_over_http_stay_within_the_bound(http: tuple[Starlette, GQL]) -> None:
    app, gql = http
    cache = validations_of(app)
    size = validation_cache.MAX_QUERY_BYTES - 1_024  # each one just small enough to be kept
    count = validation_cache.MAX_CACHE_BYTES // size + 20
    for i in range(count):
        assert (await gql.raw(padded("query { __typename }", size, i)))["data"] == {"__typename": "Query"}
        assert cache.bytes <= cache.max_bytes
    assert 0 < len(cache) < count
    assert padded("query { __typename }", size, count - 1) in cache  # the latest are kept
    assert padded("query { __typename }", size, 0) not in cache  # the oldest made room for them


async def test_a_repeated_query_is_validated_once(
    http: tuple[Starlette, GQL], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, gql = http
    validated: list[Any] = []
    real = validation_cache.validate

    def counting(*args: Any) -> Any:
        validated.append(args[1])
        return real(*args)

    monkeypatch.setattr(validation_cache, "validate", counting)
    for _ in range(5):
        assert (await gql.raw("query Ping { __typename }"))["data"] == {"__typename": "Query"}
    assert len(validated) == 1 and "query Ping { __typename }" in validations_of(app)
    # Invalid documents are not kept, and are answered as before: coded, every time.
    for _ in range(2):
        error = await gql.error("query { nope }")
        assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        assert error["message"] == "Cannot query field 'nope' on type 'Query'."
        assert error["locations"] == [{"line": 1, "column": 9}]
    assert len(validated) == 3 and "query { nope }" not in validations_of(app)


@pytest.fixture
async def room(unlimited: Settings, session_factory) -> AsyncIterator[tuple[Starlette, RoomSetup]]:  # type: ignore[no-untyped-def]
    application = create_app(unlimited)
    server = LiveServer(application)
    await server.start()
    try:
        yield application, await setup_room(server, session_factory)
    finally:
        await server.stop()


async def test_distinct_large_documents_over_the_websocket_stay_within_the_bound(
    room: tuple[Starlette, RoomSetup],
) -> None:
    app, setup = room
    plans = view_of(app).plans
    cache = plans.cache
    async with setup.client("alice") as ws:
        cache.clear()  # of the setup's HTTP operations (minting tokens is planned)
        # Larger than hot operations are: answered (by Strawberry), neither planned nor kept.
        for i in range(10):
            answer = await run(ws, padded(MOVE, 64 << 10, i), r=setup.room_id)
            assert "moveCursor" in (answer.get("data") or {}) or answer.get("errors"), answer
        assert len(cache) == 0 and cache.bytes == 0
        # Hot, each just small enough to be planned: the plans evict each other within the bound.
        size = plans_module.MAX_PLAN_QUERY_BYTES - 512
        count = plans_module.MAX_PLAN_CACHE_BYTES // (size * plans_module.PLAN_BYTES_PER_QUERY_BYTE) + 10
        for i in range(count):
            await run(ws, padded(MOVE, size, i), r=setup.room_id)
            assert cache.bytes <= cache.max_bytes
        assert 0 < len(cache) < count
        assert (padded(MOVE, size, count - 1), None) in cache and (padded(MOVE, size, 0), None) not in cache
        # The small document a client repeats is planned once.
        cache.clear()
        for _ in range(5):
            await run(ws, MOVE, r=setup.room_id)
        assert len(cache) == 1
        plan = cache.get((MOVE, None), None)
        assert plan is not None and plans.get(MOVE, None) is plan


async def test_websocket_operations_are_validated_within_the_same_bound(
    room: tuple[Starlette, RoomSetup],
) -> None:
    # Operations the fast path does not serve are validated by Strawberry, through the same cache.
    app, setup = room
    validations, plans = validations_of(app), view_of(app).plans.cache
    async with setup.client("bob") as ws:
        validations.clear()  # of the setup's HTTP operations
        plans.clear()
        for i in range(10):
            answer = await run(ws, padded("query { __typename }", 64 << 10, i))
            assert answer["data"] == {"__typename": "Query"}, answer
        assert len(validations) == 0 and len(plans) == 0
        for _ in range(3):
            assert (await run(ws, "query Ping { __typename }"))["data"] == {"__typename": "Query"}
    assert len(plans) == 1 and ("query Ping { __typename }", None) in plans  # not hot: a cached None
    assert "query Ping { __typename }" in validations and validations.bytes <= validations.max_bytes
