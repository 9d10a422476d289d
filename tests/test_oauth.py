"""OAuth sign-in with Google and GitHub, end to end against a local provider on 127.0.0.1.

The test plays the browser: it follows the authorization URL to the fake provider, reads the code
and state from the redirect, and hands them to `oauthSignIn`, as a single-page app would.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pyotp
import pytest
from sqlalchemy import select, update

from app.accounts import mfa
from app.accounts.credentials_models import OAuthState
from app.accounts.models import User
from app.accounts.oauth import verifier_context
from app.audit.models import AuditLog
from app.db.types import utcnow
from app.main import create_app
from app.security.encryption import encrypt
from app.security.keys import Keys
from app.security.tokens import hash_token
from app.settings import Settings
from tests.conftest import TEST_SECRET_KEY, LiveServer, free_port, make_settings
from tests.fake_oauth_provider import CLIENT_ID, CLIENT_SECRET, FakeOAuthProvider, s256
from tests.gql import GQL, PASSWORD, sign_up

PUBLIC_URL = "http://spa.test:3000/app"

AUTHORIZE = """query($p: OAuthProvider!, $r: String) {
  oauthAuthorizationUrl(provider: $p, redirectUri: $r) { url state redirectUri expiresAt } }"""
SIGN_IN = """mutation($p: OAuthProvider!, $code: String!, $state: String!, $totp: String) {
  oauthSignIn(provider: $p, code: $code, state: $state, totpCode: $totp) {
    accessToken refreshToken user { id email name avatarUrl emailVerified status } } }"""
LOG_IN = "mutation($i: LogInInput!) { logIn(input: $i) { accessToken user { id } } }"
ME = "{ me { id email emailVerified status } }"


@pytest.fixture
async def provider() -> AsyncIterator[FakeOAuthProvider]:
    fake = FakeOAuthProvider()
    server = LiveServer(fake.app())
    await server.start()
    fake.url = server.url
    try:
        yield fake
    finally:
        await server.stop()


async def _serve(settings: Settings, **overrides: Any) -> AsyncIterator[GQL]:
    app = create_app(make_settings(settings.database_url, public_url=PUBLIC_URL, **overrides))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            yield GQL(http)


@pytest.fixture
async def gql(settings: Settings, provider: FakeOAuthProvider) -> AsyncIterator[GQL]:
    async for client in _serve(settings, **provider.settings()):
        yield client


async def authorize(gql: GQL, provider: str, redirect_uri: str | None = None) -> tuple[str, str]:
    """Ask SyncForge for the URL, then be the browser: (code, state) from the provider's redirect."""
    started = (await gql.data(AUTHORIZE, p=provider, r=redirect_uri))["oauthAuthorizationUrl"]
    return await follow(started["url"], started["redirectUri"])


async def follow(url: str, redirect_uri: str) -> tuple[str, str]:
    async with httpx.AsyncClient() as browser:
        response = await browser.get(url, follow_redirects=False)
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(redirect_uri + "?")
    query = parse_qs(urlsplit(location).query)
    return query["code"][0], query["state"][0]


async def oauth_sign_in(gql: GQL, provider: str, **extra: Any) -> dict[str, Any]:
    code, state = await authorize(gql, provider)
    return (await gql.data(SIGN_IN, p=provider, code=code, state=state, **extra))["oauthSignIn"]


async def audit_actions(session_factory, user_id: str) -> list[tuple[str, dict[str, Any]]]:  # type: ignore[no-untyped-def]
    async with session_factory() as session:
        rows = await session.execute(
            select(AuditLog.action, AuditLog.changes)
            .where(AuditLog.entity_id == user_id)
            .order_by(AuditLog.created_at)
        )
        return [(action, changes) for action, changes in rows.all()]


async def user_row(session_factory, email: str) -> User:  # type: ignore[no-untyped-def]
    async with session_factory() as session:
        return (await session.execute(select(User).where(User.email == email))).scalar_one()


async def mark_verified(session_factory, user_id: str) -> None:  # type: ignore[no-untyped-def]
    async with session_factory() as session:
        await session.execute(
            update(User).where(User.id == uuid.UUID(user_id)).values(email_verified_at=utcnow())
        )
        await session.commit()


async def test_authorization_url_carries_state_pkce_and_scopes(
    gql: GQL, provider: FakeOAuthProvider, session_factory
) -> None:  # type: ignore[no-untyped-def]
    started = (await gql.data(AUTHORIZE, p="GOOGLE"))["oauthAuthorizationUrl"]
    assert started["redirectUri"] == f"{PUBLIC_URL}/auth/oauth/google/callback"
    url = urlsplit(started["url"])
    params = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{provider.url}/google/authorize"
    assert params["client_id"] == CLIENT_ID and params["response_type"] == "code"
    assert params["state"] == started["state"] and params["code_challenge_method"] == "S256"
    assert params["scope"] == "openid email profile"
    assert CLIENT_SECRET not in started["url"]
    github = await gql.data(AUTHORIZE, p="GITHUB", r=f"{PUBLIC_URL}/login?next=%2Frooms")
    github_params = parse_qs(urlsplit(github["oauthAuthorizationUrl"]["url"]).query)
    assert github_params["scope"] == ["read:user user:email"]
    assert github_params["redirect_uri"] == [f"{PUBLIC_URL}/login?next=%2Frooms"]
    # Stored: the state only as a hash, the verifier only encrypted.
    async with session_factory() as session:
        row = (
            await session.execute(
                select(OAuthState).where(OAuthState.state_hash == hash_token(started["state"]))
            )
        ).scalar_one()
    assert row.provider == "google" and row.consumed_at is None
    assert row.redirect_uri == started["redirectUri"]
    assert row.code_verifier_encrypted.startswith("v1:")


async def test_new_user_via_google(gql: GQL, provider: FakeOAuthProvider, session_factory) -> None:  # type: ignore[no-untyped-def]
    payload = await oauth_sign_in(gql, "GOOGLE")
    assert provider.pkce_verified == 1  # the token endpoint checked S256(verifier) == challenge
    user = payload["user"]
    assert user["email"] == "ada@example.com" and user["name"] == "Ada Lovelace"
    assert user["emailVerified"] is True and user["status"] == "ACTIVE"
    assert user["avatarUrl"] == "https://images.example/ada.png"
    me = (await gql.bearer(payload["accessToken"]).data(ME))["me"]
    assert me == {"id": user["id"], "email": "ada@example.com", "emailVerified": True, "status": "ACTIVE"}
    row = await user_row(session_factory, "ada@example.com")
    assert row.google_id == "google-1001" and row.hashed_password is None
    # The same Google account signs in to the same user, even after its email changed there.
    provider.google_profile["email"] = "ada.lovelace@example.com"
    again = await oauth_sign_in(gql, "GOOGLE")
    assert again["user"]["id"] == user["id"] and again["user"]["email"] == "ada@example.com"
    actions = await audit_actions(session_factory, user["id"])
    assert [a for a, _ in actions] == ["auth.sign_in", "auth.sign_in"]
    assert actions[0][1]["method"] == "oauth:google" and actions[0][1]["new_user"] is True


@pytest.mark.parametrize("token_format", ["auto", "form"])
async def test_github_uses_the_primary_verified_email(
    gql: GQL, provider: FakeOAuthProvider, session_factory, token_format: str
) -> None:  # type: ignore[no-untyped-def]
    provider.github_token_format = token_format  # "form": a token answer that ignores Accept: json
    provider.github_emails = [
        {"email": "old@example.com", "primary": False, "verified": True},
        {"email": "Grace@Example.com", "primary": True, "verified": True},
        {"email": "unverified@example.com", "primary": False, "verified": False},
    ]
    payload = await oauth_sign_in(gql, "GITHUB")
    assert payload["user"]["email"] == "grace@example.com" and payload["user"]["emailVerified"] is True
    assert payload["user"]["name"] == "Ada L."
    assert (await user_row(session_factory, "grace@example.com")).github_id == "5001"
    assert provider.token_requests == [("github", "ok")]
    actions = await audit_actions(session_factory, payload["user"]["id"])
    assert actions[0][0] == "auth.sign_in" and actions[0][1]["method"] == "oauth:github"


async def test_github_without_a_verified_email_is_forbidden(
    gql: GQL, provider: FakeOAuthProvider, session_factory
) -> None:  # type: ignore[no-untyped-def]
    provider.github_emails = [{"email": "nope@example.com", "primary": True, "verified": False}]
    code, state = await authorize(gql, "GITHUB")
    error = await gql.error(SIGN_IN, p="GITHUB", code=code, state=state)
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert error["message"] == "the provider did not verify this email"
    async with session_factory() as session:
        assert (await session.execute(select(User))).first() is None


async def test_links_to_an_existing_verified_account(
    gql: GQL, provider: FakeOAuthProvider, session_factory
) -> None:  # type: ignore[no-untyped-def]
    dev = await sign_up(gql, email="ada@example.com")
    await mark_verified(session_factory, dev.user_id)
    payload = await oauth_sign_in(gql, "GOOGLE")
    assert payload["user"]["id"] == dev.user_id
    row = await user_row(session_factory, "ada@example.com")
    assert row.google_id == "google-1001" and row.hashed_password is not None
    # The password still works, and the earlier session was left alone.
    logged_in = (await gql.data(LOG_IN, i={"email": dev.email, "password": PASSWORD}))["logIn"]
    assert logged_in["user"]["id"] == dev.user_id
    assert (await dev.gql.data(ME))["me"]["id"] == dev.user_id
    actions = dict(await audit_actions(session_factory, dev.user_id))
    assert actions["auth.oauth_linked"] == {"provider": "google", "unverified_account_reset": False}
    # GitHub with the same verified email links too: one user, both providers.
    github = await oauth_sign_in(gql, "GITHUB")
    assert github["user"]["id"] == dev.user_id


async def test_linking_an_unverified_account_drops_what_its_creator_set(
    gql: GQL, provider: FakeOAuthProvider, session_factory
) -> None:  # type: ignore[no-untyped-def]
    # Someone registered the address without proving they own it; its owner then signs in with
    # Google. The account becomes the owner's alone: the password and sessions set before stop working.
    squatter = await sign_up(gql, email="ada@example.com")
    payload = await oauth_sign_in(gql, "GOOGLE")
    assert payload["user"]["id"] == squatter.user_id and payload["user"]["emailVerified"] is True
    refused = await gql.error(LOG_IN, i={"email": squatter.email, "password": PASSWORD})
    assert refused["extensions"]["code"] == "UNAUTHORIZED"
    refresh = "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken } }"
    assert (await gql.error(refresh, t=squatter.refresh_token))["extensions"]["code"] == "UNAUTHORIZED"
    actions = dict(await audit_actions(session_factory, squatter.user_id))
    assert actions["auth.oauth_linked"]["unverified_account_reset"] is True


async def test_an_unverified_provider_email_does_not_link(
    gql: GQL, provider: FakeOAuthProvider, session_factory
) -> None:  # type: ignore[no-untyped-def]
    dev = await sign_up(gql, email="ada@example.com")
    await mark_verified(session_factory, dev.user_id)
    provider.google_profile["email_verified"] = False
    code, state = await authorize(gql, "GOOGLE")
    error = await gql.error(SIGN_IN, p="GOOGLE", code=code, state=state)
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert error["message"] == "the provider did not verify this email"
    assert (await user_row(session_factory, "ada@example.com")).google_id is None
    async with session_factory() as session:
        failed = (
            await session.execute(select(AuditLog).where(AuditLog.action == "auth.sign_in_failed"))
        ).scalar_one()
    assert failed.changes["reason"] == "EMAIL_NOT_VERIFIED" and failed.changes["method"] == "oauth:google"


async def test_a_state_is_single_use(gql: GQL, provider: FakeOAuthProvider) -> None:
    started = (await gql.data(AUTHORIZE, p="GOOGLE"))["oauthAuthorizationUrl"]
    first_code, state = await follow(started["url"], started["redirectUri"])
    second_code, same_state = await follow(started["url"], started["redirectUri"])  # a fresh code
    assert state == same_state
    await gql.data(SIGN_IN, p="GOOGLE", code=first_code, state=state)
    replay = await gql.error(SIGN_IN, p="GOOGLE", code=second_code, state=state)
    assert replay["extensions"]["code"] == "UNAUTHORIZED"
    assert replay["message"] == "invalid or expired OAuth state"
    assert provider.token_requests == [("google", "ok")]  # the replay never reached the provider


async def test_a_state_belongs_to_its_provider(gql: GQL, provider: FakeOAuthProvider) -> None:
    code, state = await authorize(gql, "GOOGLE")
    wrong = await gql.error(SIGN_IN, p="GITHUB", code=code, state=state)
    assert wrong["extensions"]["code"] == "UNAUTHORIZED"
    assert wrong["message"] == "invalid or expired OAuth state"
    unknown = await gql.error(SIGN_IN, p="GOOGLE", code=code, state="made-up-state")
    assert unknown["extensions"]["code"] == "UNAUTHORIZED"
    assert provider.token_requests == []


async def test_an_expired_state_is_refused(gql: GQL, provider: FakeOAuthProvider, session_factory) -> None:  # type: ignore[no-untyped-def]
    code, state = await authorize(gql, "GOOGLE")
    async with session_factory() as session:
        await session.execute(
            update(OAuthState)
            .where(OAuthState.state_hash == hash_token(state))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()
    error = await gql.error(SIGN_IN, p="GOOGLE", code=code, state=state)
    assert error["extensions"]["code"] == "UNAUTHORIZED"
    # Starting another flow clears expired states away.
    await gql.data(AUTHORIZE, p="GOOGLE")
    async with session_factory() as session:
        assert len((await session.execute(select(OAuthState.id))).all()) == 1


async def test_the_token_endpoint_needs_the_right_pkce_verifier(
    gql: GQL, provider: FakeOAuthProvider, session_factory
) -> None:  # type: ignore[no-untyped-def]
    # A stored verifier that decrypts but is not the one the challenge was made from: the
    # provider refuses the code, so a stolen code is useless without the verifier.
    code, state = await authorize(gql, "GOOGLE")
    state_hash = hash_token(state)
    wrong = encrypt(
        Keys.from_secret(TEST_SECRET_KEY).encryption, "x" * 64, context=verifier_context(state_hash)
    )
    async with session_factory() as session:
        await session.execute(
            update(OAuthState)
            .where(OAuthState.state_hash == state_hash)
            .values(code_verifier_encrypted=wrong)
        )
        await session.commit()
    error = await gql.error(SIGN_IN, p="GOOGLE", code=code, state=state)
    assert error["extensions"]["code"] == "UNAUTHORIZED"
    assert error["extensions"]["reason"] == "PROVIDER_ERROR"
    assert "invalid_pkce_verifier" in error["message"] and code not in error["message"]
    assert provider.token_requests == [("google", "invalid_pkce_verifier")] and provider.pkce_verified == 0

    # A corrupted stored verifier is refused before the provider is called.
    code, state = await authorize(gql, "GOOGLE")
    async with session_factory() as session:
        await session.execute(
            update(OAuthState)
            .where(OAuthState.state_hash == hash_token(state))
            .values(code_verifier_encrypted="v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        )
        await session.commit()
    corrupted = await gql.error(SIGN_IN, p="GOOGLE", code=code, state=state)
    assert corrupted["extensions"]["code"] == "UNAUTHORIZED"
    assert len(provider.token_requests) == 1


async def test_the_fake_provider_checks_s256(provider: FakeOAuthProvider) -> None:
    verifier = "v" * 50
    async with httpx.AsyncClient(base_url=provider.url) as http:
        authorized = await http.get(
            "/google/authorize",
            params={
                "client_id": CLIENT_ID,
                "redirect_uri": "http://spa.test/cb",
                "response_type": "code",
                "state": "s",
                "code_challenge": s256(verifier),
                "code_challenge_method": "S256",
            },
        )
        code = parse_qs(urlsplit(authorized.headers["location"]).query)["code"][0]
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "http://spa.test/cb",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        }
        refused = await http.post("/google/token", data={**form, "code_verifier": "w" * 50})
        assert refused.status_code == 400 and refused.json() == {"error": "invalid_pkce_verifier"}
        plain = await http.get("/google/authorize", params={"client_id": CLIENT_ID, "state": "s"})
        assert plain.status_code == 400  # no PKCE, no code


async def test_provider_failures_are_unauthorized_without_secrets(
    gql: GQL, provider: FakeOAuthProvider
) -> None:
    # A code the provider does not know (GitHub answers errors with HTTP 200).
    _, state = await authorize(gql, "GITHUB")
    refused = await gql.error(SIGN_IN, p="GITHUB", code="not-a-code", state=state)
    assert refused["extensions"]["code"] == "UNAUTHORIZED" and "invalid_grant" in refused["message"]
    # The profile endpoint fails after the token was issued: the token is not in the message.
    provider.google_profile = {"email": "ada@example.com"}  # no subject
    code, state = await authorize(gql, "GOOGLE")
    unusable = await gql.error(SIGN_IN, p="GOOGLE", code=code, state=state)
    assert unusable["extensions"]["code"] == "UNAUTHORIZED"
    assert not any(token in unusable["message"] for token in provider.tokens)
    # No email at all.
    provider.github_emails = []
    code, state = await authorize(gql, "GITHUB")
    no_email = await gql.error(SIGN_IN, p="GITHUB", code=code, state=state)
    assert (no_email["extensions"]["code"], no_email["extensions"]["reason"]) == ("UNAUTHORIZED", "NO_EMAIL")


async def test_an_unreachable_provider_is_unauthorized(
    settings: Settings, provider: FakeOAuthProvider
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    async for gql in _serve(settings, **provider.settings(google_token_url=f"{closed}/token")):
        code, state = await authorize(gql, "GOOGLE")
        error = await gql.error(SIGN_IN, p="GOOGLE", code=code, state=state)
        assert (error["extensions"]["code"], error["extensions"]["reason"]) == (
            "UNAUTHORIZED",
            "PROVIDER_UNAVAILABLE",
        )


async def test_suspended_users_cannot_sign_in(gql: GQL, provider: FakeOAuthProvider, session_factory) -> None:  # type: ignore[no-untyped-def]
    payload = await oauth_sign_in(gql, "GOOGLE")
    async with session_factory() as session:
        await session.execute(
            update(User).where(User.id == uuid.UUID(payload["user"]["id"])).values(status="suspended")
        )
        await session.commit()
    code, state = await authorize(gql, "GOOGLE")
    error = await gql.error(SIGN_IN, p="GOOGLE", code=code, state=state)
    assert (error["extensions"]["code"], error["extensions"]["reason"]) == ("UNAUTHORIZED", "SUSPENDED")


async def test_mfa_is_required_when_on(gql: GQL, provider: FakeOAuthProvider, session_factory) -> None:  # type: ignore[no-untyped-def]
    payload = await oauth_sign_in(gql, "GOOGLE")
    keys = Keys.from_secret(TEST_SECRET_KEY)
    async with session_factory() as session:
        user = await session.get(User, uuid.UUID(payload["user"]["id"]))
        assert user is not None
        secret = mfa.enroll(keys, user).secret
        user.mfa_enabled_at = utcnow()
        await session.commit()
    code, state = await authorize(gql, "GOOGLE")
    missing = await gql.error(SIGN_IN, p="GOOGLE", code=code, state=state)
    assert missing["extensions"]["reason"] == "MFA_REQUIRED"
    again = await oauth_sign_in(gql, "GOOGLE", totp=pyotp.TOTP(secret).now())
    assert again["user"]["id"] == payload["user"]["id"]


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example/callback",
        "http://spa.test:3000.evil.example/app/cb",
        "http://spa.test:3000@evil.example/app/cb",
        "http://spa.test:3001/app/cb",
        "https://spa.test:3000/app/cb",
        "http://spa.test:3000/application/cb",
        "http://spa.test:3000/app/cb#fragment",
        "//evil.example/app",
        "javascript:alert(1)",
    ],
)
async def test_redirect_uris_must_be_under_the_public_url(gql: GQL, redirect_uri: str) -> None:
    error = await gql.error(AUTHORIZE, p="GOOGLE", r=redirect_uri)
    assert error["extensions"]["code"] == "VALIDATION_ERROR"
    assert error["extensions"]["field"] == "redirectUri"


async def test_a_custom_redirect_uri_under_the_public_url_is_used(gql: GQL) -> None:
    code, state = await authorize(gql, "GOOGLE", f"{PUBLIC_URL}/oauth-done")
    await gql.data(SIGN_IN, p="GOOGLE", code=code, state=state)


async def test_an_unconfigured_provider_is_a_validation_error(
    settings: Settings, provider: FakeOAuthProvider
) -> None:
    async for gql in _serve(settings, **provider.settings(github_client_id=None)):
        error = await gql.error(AUTHORIZE, p="GITHUB")
        assert (error["extensions"]["code"], error["extensions"]["field"]) == ("VALIDATION_ERROR", "provider")
        assert "SYNCFORGE_GITHUB_CLIENT_ID" in error["message"]
        sign_in = await gql.error(SIGN_IN, p="GITHUB", code="c", state="s")
        assert sign_in["extensions"]["code"] == "VALIDATION_ERROR"
        assert (await gql.data(AUTHORIZE, p="GOOGLE"))["oauthAuthorizationUrl"]["url"]
