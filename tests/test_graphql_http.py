"""GraphQL over HTTP: reading organizations and rooms, pagination, and coded errors."""

from __future__ import annotations

import logging
import uuid

import httpx
import pytest

from app.main import create_app
from app.settings import Settings
from tests import factories
from tests.conftest import TEST_SECRET_KEY
from tests.gql import GQL, create_org, sign_up

QUERY_ROOMS = """
query Rooms($org: UUID!, $first: Int!, $after: String) {
  rooms(organizationId: $org, first: $first, after: $after) {
    edges { cursor node { id name slug type access status features metadata hasPassword
                          organization { id slug } } }
    pageInfo { hasNextPage endCursor }
  }
}"""


async def test_health_query_reports_dependencies(anon: GQL, settings: Settings) -> None:
    health = (await anon.data("{ health { ok version mode dependencies { name ok } } }"))["health"]
    assert health["ok"] is True
    assert health["mode"] == settings.mode.value
    names = {d["name"] for d in health["dependencies"]}
    assert names == ({"database", "redis"} if settings.redis_url else {"database"})


async def test_organizations_and_rooms_are_readable_and_paginated(anon: GQL, session_factory) -> None:  # type: ignore[no-untyped-def]
    dev = await sign_up(anon)
    org_id = await create_org(dev)
    other_dev = await sign_up(anon)
    other_org = await create_org(other_dev)
    rooms = [factories.room_in(uuid.UUID(org_id), name=f"R{i}") for i in range(5)]
    await factories.add(session_factory, *rooms, factories.room_in(uuid.UUID(other_org)))

    org = await dev.gql.data("query($id: UUID) { organization(id: $id) { id plan } }", id=org_id)
    assert org["organization"] == {"id": org_id, "plan": "FREE"}

    seen: list[str] = []
    after = None
    while True:
        page = (await dev.gql.data(QUERY_ROOMS, org=org_id, first=2, after=after))["rooms"]
        seen += [edge["node"]["name"] for edge in page["edges"]]
        for edge in page["edges"]:
            node = edge["node"]
            assert node["organization"]["id"] == org_id
            assert node["features"]["presence"] is True and node["hasPassword"] is False
            assert (node["type"], node["access"], node["status"]) == ("DOCUMENT", "PRIVATE", "ACTIVE")
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == ["R0", "R1", "R2", "R3", "R4"]  # every room once, oldest first, none of other_org

    room = rooms[3]
    one = await dev.gql.data("query($id: UUID) { room(id: $id) { slug } }", id=str(room.id))
    assert one["room"] == {"slug": room.slug}
    mine = await dev.gql.data("{ organizations(first: 10) { edges { node { id } } } }")
    assert [e["node"]["id"] for e in mine["organizations"]["edges"]] == [org_id]


@pytest.mark.parametrize(
    ("query", "variables", "code"),
    [
        ("query($id: UUID) { room(id: $id) { id } }", {"id": str(uuid.uuid4())}, "NOT_FOUND"),
        ("query($id: UUID) { organization(id: $id) { id } }", {"id": str(uuid.uuid4())}, "NOT_FOUND"),
        ("query($id: UUID) { room(id: $id) { id } }", {"id": "not-a-uuid"}, "VALIDATION_ERROR"),
        ("{ organization { id } }", {}, "VALIDATION_ERROR"),
        ("{ organizations(first: 1000) { edges { cursor } } }", {}, "VALIDATION_ERROR"),
        ('{ organizations(after: "@@@") { edges { cursor } } }', {}, "VALIDATION_ERROR"),
        ("{ health { ok ", {}, "GRAPHQL_PARSE_FAILED"),
        ("{ health { nope } }", {}, "GRAPHQL_VALIDATION_FAILED"),
    ],
)
async def test_every_error_carries_a_code(anon: GQL, query: str, variables: dict, code: str) -> None:  # type: ignore[type-arg]
    dev = await sign_up(anon)
    body = await dev.gql.raw(query, **variables)
    assert body["errors"], body
    for error in body["errors"]:
        assert error["extensions"]["code"] == code, error
        assert error["extensions"]["requestId"]


async def test_unexpected_errors_are_masked_with_a_request_id(caplog: pytest.LogCaptureFixture) -> None:
    # A database that cannot be reached makes the resolver fail in a way no code path expects.
    broken = Settings(
        database_url="postgresql+asyncpg://postgres@127.0.0.1:1/nowhere", secret_key=TEST_SECRET_KEY
    )
    app = create_app(broken)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            with caplog.at_level(logging.ERROR, logger="syncforge.graphql"):
                body = await GQL(client).raw(
                    'mutation { logIn(input: {email: "a@b.co", password: "x"}) { accessToken } }'
                )
    (error,) = body["errors"]
    assert error["message"] == "Internal server error"
    assert error["extensions"]["code"] == "INTERNAL_ERROR"
    request_id = error["extensions"]["requestId"]
    assert "Connect" not in str(body) and "127.0.0.1" not in str(body)  # nothing leaks
    logged = [r for r in caplog.records if request_id in r.getMessage()]
    assert logged and logged[0].exc_info is not None  # the traceback is in the server log


async def test_request_id_header_is_used(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql", json={"query": "{ nope }"}, headers={"x-request-id": "req-abcdef123"}
    )
    assert response.json()["errors"][0]["extensions"]["requestId"] == "req-abcdef123"


async def test_introspection_can_be_turned_off(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"introspection": False}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            gql = GQL(client)
            error = await gql.error("{ __schema { queryType { name } } }")
            assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
            assert (await gql.data("{ health { ok } }"))["health"]["ok"] is True


async def test_a_subscription_over_http_is_refused_with_a_code(anon: GQL) -> None:
    error = await anon.error("subscription { health { ok } }")
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert "WebSocket" in error["message"]
