"""API keys: shown once, stored hashed, scoped, revocable, rotatable, usage batched, origins."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select, update

from app.accounts.models import ApiKey
from app.db.types import utcnow
from tests import factories
from tests.gql import GQL, create_key, create_org, sign_up

ORGS = "{ organizations { edges { node { id } } } }"
ROOMS = "query($o: UUID!) { rooms(organizationId: $o) { edges { node { id } } } }"


async def test_keys_are_shown_once_and_stored_hashed(anon: GQL, session_factory) -> None:  # type: ignore[no-untyped-def]
    dev = await sign_up(anon)
    org_id = await create_org(dev)
    secret, key_id = await create_key(dev, org_id, "SECRET", scopes=["rooms:read", "documents:read"])
    publishable, _ = await create_key(dev, org_id, "PUBLISHABLE")
    assert secret.startswith("sk_live_") and publishable.startswith("pk_live_")
    listed = (
        await dev.gql.data(
            "query($id: UUID) { organization(id: $id) { apiKeys { id prefix scopes kind status } } }",
            id=org_id,
        )
    )["organization"]["apiKeys"]
    assert {k["kind"] for k in listed} == {"SECRET", "PUBLISHABLE"}
    assert secret not in str(listed) and publishable not in str(listed)
    mine = next(k for k in listed if k["id"] == key_id)
    assert mine["prefix"] == secret[:16] + "…" and mine["scopes"] == ["documents:read", "rooms:read"]
    async with session_factory() as session:
        row = await session.get(ApiKey, uuid.UUID(key_id))
    assert row is not None and secret not in row.key_hash and len(row.key_prefix) == 8
    bad_scope = await dev.gql.error(
        'mutation($o: UUID!) { createApiKey(organizationId: $o, input: {name: "x", kind: SECRET,'
        ' scopes: ["root"]}) { secret } }',
        o=org_id,
    )
    assert bad_scope["extensions"]["field"] == "scopes"


async def test_secret_key_scopes_revocation_rotation_and_expiry(anon: GQL, app, session_factory) -> None:  # type: ignore[no-untyped-def]
    dev = await sign_up(anon)
    org_id = await create_org(dev)
    await factories.add(session_factory, factories.room_in(uuid.UUID(org_id)))
    secret, key_id = await create_key(dev, org_id, "SECRET", scopes=["documents:read"])
    backend = anon.bearer(secret)
    assert (await backend.data(ORGS))["organizations"]["edges"] == [{"node": {"id": org_id}}]
    no_scope = await backend.error(ROOMS, o=org_id)
    assert no_scope["extensions"]["code"] == "FORBIDDEN"

    scoped, scoped_id = await create_key(dev, org_id, "SECRET", scopes=["rooms:read"])
    assert len((await anon.bearer(scoped).data(ROOMS, o=org_id))["rooms"]["edges"]) == 1

    rotated = (
        await dev.gql.data(
            "mutation($id: UUID!) { rotateApiKey(id: $id) { secret apiKey { name scopes status } } }",
            id=scoped_id,
        )
    )["rotateApiKey"]
    assert rotated["apiKey"] == {"name": "SECRET key", "scopes": ["rooms:read"], "status": "ACTIVE"}
    assert (await anon.bearer(scoped).error(ROOMS, o=org_id))["extensions"]["code"] == "UNAUTHORIZED"
    assert (await anon.bearer(rotated["secret"]).data(ROOMS, o=org_id))["rooms"]["edges"]

    await dev.gql.data("mutation($id: UUID!) { revokeApiKey(id: $id) { status } }", id=key_id)
    assert (await backend.error(ORGS))["extensions"]["code"] == "UNAUTHORIZED"

    expiring, expiring_id = await create_key(dev, org_id, "SECRET")
    assert await anon.bearer(expiring).data(ORGS)
    async with session_factory() as session:
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == uuid.UUID(expiring_id))
            .values(expires_at=utcnow() - timedelta(1))
        )
        await session.commit()
    # Keys are cached per process for a few seconds; the API's own changes evict them, and so
    # must this change made behind the API's back.
    await app.state.syncforge.authenticator.key_cache.changed(uuid.UUID(expiring_id))
    assert (await anon.bearer(expiring).error(ORGS))["extensions"]["code"] == "UNAUTHORIZED"
    # A key of the right shape that does not exist.
    assert (await anon.bearer("sk_live_" + "A" * 40).error(ORGS))["extensions"]["code"] == "UNAUTHORIZED"


async def test_usage_is_counted_without_a_write_per_request(anon: GQL, app, session_factory) -> None:  # type: ignore[no-untyped-def]
    dev = await sign_up(anon)
    org_id = await create_org(dev)
    secret, key_id = await create_key(dev, org_id, "SECRET")
    for _ in range(7):
        await anon.bearer(secret).data(ORGS)

    async def stored() -> tuple[int, object]:
        async with session_factory() as session:
            row = (await session.execute(select(ApiKey).where(ApiKey.id == uuid.UUID(key_id)))).scalar_one()
            return row.usage_count, row.last_used_at

    assert await stored() == (0, None)  # nothing written per request
    assert await app.state.syncforge.usage.flush() == 1  # one UPDATE for the key
    count, last_used = await stored()
    assert count == 7 and last_used is not None


async def test_publishable_key_origins_are_enforced(anon: GQL) -> None:
    dev = await sign_up(anon)
    org_id = await create_org(dev)
    key, _ = await create_key(dev, org_id, "PUBLISHABLE", allowedOrigins=["https://app.example.com"])
    allowed = anon.with_headers(**{"x-api-key": key, "origin": "https://app.example.com"})
    assert await allowed.data("{ health { ok } }")
    for origin in ("https://evil.example.com", None):
        headers = {"x-api-key": key, **({"origin": origin} if origin else {})}
        error = await anon.with_headers(**headers).error("{ health { ok } }")
        assert error["extensions"]["code"] == "FORBIDDEN" and "origin" in error["message"]
    # Only publishable keys take origins.
    wrong = await dev.gql.error(
        'mutation($o: UUID!) { createApiKey(organizationId: $o, input: {name: "x", kind: SECRET,'
        ' allowedOrigins: ["https://a.test"]}) { secret } }',
        o=org_id,
    )
    assert wrong["extensions"]["field"] == "allowedOrigins"
