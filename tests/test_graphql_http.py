"""GraphQL over HTTP: the first slice of the schema, and coded errors."""

from __future__ import annotations

import logging
import uuid

import httpx
import pytest

from app.main import create_app
from app.settings import Settings
from tests import factories

QUERY_ROOMS = """
query Rooms($org: UUID!, $first: Int!, $after: String) {
  rooms(organizationId: $org, first: $first, after: $after) {
    edges { cursor node { id name slug type access status features metadata hasPassword
                          organization { id slug } } }
    pageInfo { hasNextPage endCursor }
  }
}"""


async def gql(client: httpx.AsyncClient, query: str, **variables: object) -> dict:  # type: ignore[type-arg]
    response = await client.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code in (200, 400), response.text
    return response.json()  # type: ignore[no-any-return]


async def test_health_query_reports_dependencies(client: httpx.AsyncClient, settings: Settings) -> None:
    body = await gql(client, "{ health { ok version mode dependencies { name ok } } }")
    health = body["data"]["health"]
    assert health["ok"] is True
    assert health["mode"] == settings.mode.value
    names = {d["name"] for d in health["dependencies"]}
    assert names == ({"database", "redis"} if settings.redis_url else {"database"})


async def test_organizations_and_rooms_are_readable_and_paginated(client, session_factory) -> None:  # type: ignore[no-untyped-def]
    org, other = factories.organization(), factories.organization()
    rooms = [factories.room(org, name=f"R{i}") for i in range(5)]
    await factories.add(session_factory, org, other)
    await factories.add(session_factory, *rooms, factories.room(other))

    by_slug = await gql(client, "query($s: String) { organization(slug: $s) { id name plan } }", s=org.slug)
    assert by_slug["data"]["organization"] == {"id": str(org.id), "name": org.name, "plan": "FREE"}

    seen: list[str] = []
    after = None
    while True:
        page = (await gql(client, QUERY_ROOMS, org=str(org.id), first=2, after=after))["data"]["rooms"]
        seen += [edge["node"]["name"] for edge in page["edges"]]
        for edge in page["edges"]:
            node = edge["node"]
            assert node["organization"] == {"id": str(org.id), "slug": org.slug}
            assert node["features"]["presence"] is True and node["hasPassword"] is False
            assert (node["type"], node["access"], node["status"]) == (
                "DOCUMENT",
                "PRIVATE",
                "ACTIVE",
            )
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == ["R0", "R1", "R2", "R3", "R4"]  # every room once, oldest first, none of `other`

    room = rooms[3]
    one = await gql(client, "query($id: UUID) { room(id: $id) { slug } }", id=str(room.id))
    assert one["data"]["room"] == {"slug": room.slug}
    orgs = await gql(client, "{ organizations(first: 10) { edges { node { slug } } } }")
    assert {e["node"]["slug"] for e in orgs["data"]["organizations"]["edges"]} == {
        org.slug,
        other.slug,
    }


@pytest.mark.parametrize(
    ("query", "variables", "code"),
    [
        ("query($id: UUID) { room(id: $id) { id } }", {"id": str(uuid.uuid4())}, "NOT_FOUND"),
        (
            "query($id: UUID) { organization(id: $id) { id } }",
            {"id": str(uuid.uuid4())},
            "NOT_FOUND",
        ),
        ("query($id: UUID) { room(id: $id) { id } }", {"id": "not-a-uuid"}, "VALIDATION_ERROR"),
        ("{ organization { id } }", {}, "VALIDATION_ERROR"),
        ("{ organizations(first: 1000) { edges { cursor } } }", {}, "VALIDATION_ERROR"),
        ('{ organizations(after: "@@@") { edges { cursor } } }', {}, "VALIDATION_ERROR"),
        ("{ health { ok ", {}, "GRAPHQL_PARSE_FAILED"),
        ("{ health { nope } }", {}, "GRAPHQL_VALIDATION_FAILED"),
    ],
)
async def test_every_error_carries_a_code(client, query: str, variables: dict, code: str) -> None:  # type: ignore[no-untyped-def,type-arg]
    body = await gql(client, query, **variables)
    assert body["errors"], body
    for error in body["errors"]:
        assert error["extensions"]["code"] == code, error
        assert error["extensions"]["requestId"]


async def test_unexpected_errors_are_masked_with_a_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A database that cannot be reached makes the resolver fail in a way no code path expects.
    broken = Settings(database_url="postgresql+asyncpg://postgres@127.0.0.1:1/nowhere")
    app = create_app(broken)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            with caplog.at_level(logging.ERROR, logger="syncforge.graphql"):
                body = await gql(client, "{ organizations { edges { cursor } } }")
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
            body = await gql(client, "{ __schema { queryType { name } } }")
            assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
            assert (await gql(client, "{ health { ok } }"))["data"]["health"]["ok"] is True


async def test_a_subscription_over_http_is_refused_with_a_code(client: httpx.AsyncClient) -> None:
    body = await gql(client, "subscription { health { ok } }")
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert "WebSocket" in error["message"]
