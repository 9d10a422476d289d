"""A WebSocket connection ends when its credential does: token expiry, key revocation or expiry."""

from __future__ import annotations

import time
from datetime import timedelta

import jwt as pyjwt
import pytest
from websockets.exceptions import ConnectionClosedError

from app.security import jwt
from tests.conftest import LiveServer
from tests.gql import create_key
from tests.gqlws import GraphQLWSClient, graphql_ws
from tests.realtime import PRESENCE, next_of, setup_room

REVOKE = "mutation($id: UUID!) { revokeApiKey(id: $id) { status } }"


async def _closed(ws: GraphQLWSClient, timeout: float = 10) -> tuple[int | None, str | None]:
    with pytest.raises(ConnectionClosedError):
        while True:
            await ws.receive(timeout=timeout)
    return ws.connection.close_code, ws.connection.close_reason


def _short_lived(server: LiveServer, token: str, seconds: float) -> str:
    """The same end-user token, signed by the server's key, expiring in `seconds`."""
    claims = pyjwt.decode(token, options={"verify_signature": False})
    for claim in ("iss", "aud", "iat", "exp"):
        claims.pop(claim)
    subject = claims.pop("sub")
    keys = server.server.config.app.state.syncforge.keys
    ttl = timedelta(seconds=seconds)
    return jwt.encode(keys.jwt, subject=subject, audience=jwt.END_USER_AUDIENCE, ttl=ttl, **claims)


async def test_a_connection_is_closed_when_its_end_user_token_expires(live_server, session_factory) -> None:  # type: ignore[no-untyped-def]
    room = await setup_room(live_server, session_factory)
    token = _short_lived(live_server, await room.token("ada"), 1.5)
    lasting = await room.token("bob")
    init = {"apiKey": room.publishable}
    async with (
        graphql_ws(live_server.ws_url, {**init, "token": token}) as ada,
        graphql_ws(live_server.ws_url, {**init, "token": lasting}) as bob,
    ):
        await next_of(ada, await ada.subscribe(PRESENCE, {"room": room.room_id}))
        expires_at = pyjwt.decode(token, options={"verify_signature": False})["exp"]
        assert await _closed(ada, timeout=15) == (4403, "credentials expired")
        assert time.time() >= expires_at  # not before it expired
        # The other connection is untouched and still works.
        op = await bob.subscribe(PRESENCE, {"room": room.room_id})
        assert (await next_of(bob, op))["roomPresence"]["kind"] == "SYNC"


async def test_revoking_a_key_closes_every_connection_on_it(live_server, session_factory) -> None:  # type: ignore[no-untyped-def]
    room = await setup_room(live_server, session_factory)
    other, _ = await create_key(room.dev, room.org_id, "PUBLISHABLE")
    doomed_key, doomed_id = await create_key(room.dev, room.org_id, "PUBLISHABLE")
    ada_token, bob_token = await room.token("ada"), await room.token("bob")
    async with (
        graphql_ws(live_server.ws_url, {"apiKey": doomed_key, "token": ada_token}) as ada,
        graphql_ws(live_server.ws_url, {"apiKey": other, "token": bob_token}) as bob,
    ):
        await next_of(ada, await ada.subscribe(PRESENCE, {"room": room.room_id}))
        watch = await bob.subscribe(PRESENCE, {"room": room.room_id})
        await next_of(bob, watch)
        await room.dev.gql.data(REVOKE, id=doomed_id)
        assert await _closed(ada) == (4403, "API key revoked")
        # Ada's connection is gone, so bob sees her leave (after the grace period); bob stays.
        diff = (await next_of(bob, watch, timeout=15))["roomPresence"]
        assert [u["userId"] for u in diff["leaves"]] == ["ada"]
    async with graphql_ws(live_server.ws_url, {"apiKey": other, "token": bob_token}):
        pass  # the other key still connects
