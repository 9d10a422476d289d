"""No password, key, token or secret appears in logs, or in any response after its creation."""

from __future__ import annotations

import logging

import httpx
import pytest

from app.main import create_app
from app.settings import Settings
from tests.gql import GQL, PASSWORD, create_key, create_org, end_user_token, sign_up

EVERYTHING = """query($o: UUID) { me { id email } organization(id: $o) {
  apiKeys { id prefix name scopes } members { user { id email } role } invitations { id email } } }"""


async def test_secrets_never_reach_logs_or_later_responses(
    anon: GQL, caplog: pytest.LogCaptureFixture, running_worker
) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    dev = await sign_up(anon)
    org_id = await create_org(dev)
    secret, _ = await create_key(dev, org_id, "SECRET")
    publishable, _ = await create_key(dev, org_id, "PUBLISHABLE")
    token = await end_user_token(anon.bearer(secret), "u1", [{"room": "*", "access": ["read"]}])
    await anon.bearer(token, **{"x-api-key": publishable}).raw("{ health { ok } }")
    relog = (
        await anon.data(
            "mutation($i: LogInInput!) { logIn(input: $i) { refreshToken accessToken } }",
            i={"email": dev.email, "password": PASSWORD},
        )
    )["logIn"]
    await anon.data(
        "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken } }", t=relog["refreshToken"]
    )
    await anon.raw(
        "mutation($i: LogInInput!) { logIn(input: $i) { accessToken } }",
        i={"email": dev.email, "password": "a wrong password guess"},
    )
    await dev.gql.data(
        "mutation($o: UUID!) {"
        ' inviteMember(organizationId: $o, email: "x@example.com", role: MEMBER) { id } }',
        o=org_id,
    )
    later = str(await dev.gql.data(EVERYTHING, o=org_id))

    secrets = {
        "password": PASSWORD,
        "wrong password": "a wrong password guess",
        "secret key": secret,
        "publishable key": publishable,
        "end-user token": token,
        "refresh token": relog["refreshToken"],
        "first refresh token": dev.refresh_token,
        "access token": relog["accessToken"],
    }
    logs = caplog.text + "".join(str(record.args) for record in caplog.records)
    assert caplog.records, "the flow should have logged something"
    for name, value in secrets.items():
        assert value not in logs, f"{name} appears in the logs"
        assert value not in later, f"{name} appears in a later response"


async def test_the_demo_key_and_visitor_tokens_never_reach_logs(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app = create_app(settings.model_copy(update={"demo_enabled": True}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            public = (await http.get("/demo/config")).json()["publicApiKey"]
            token = (await http.post("/demo/token", json={"name": "Ada", "color": "#123456"})).json()["token"]
            await GQL(http).bearer(token, **{"x-api-key": public}).raw("{ viewer { kind } }")
    logs = caplog.text + "".join(str(record.args) for record in caplog.records)
    assert "demo: serving /demo" in logs  # the seed did log
    assert public not in logs and token not in logs
