"""Developer accounts: sign-up, log-in, rotating refresh tokens, log-out, profile, audit."""

from __future__ import annotations

import jwt as pyjwt
from sqlalchemy import select

from app.audit.models import AuditLog
from tests.gql import GQL, PASSWORD, sign_up

LOG_IN = """mutation($i: LogInInput!) { logIn(input: $i) {
  accessToken refreshToken accessTokenExpiresAt user { id email } } }"""
REFRESH = "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken refreshToken } }"


async def test_sign_up_validates_and_refuses_duplicates(anon: GQL) -> None:
    short = await anon.error(
        'mutation { signUp(input: {email: "a@example.com", password: "short"}) { accessToken } }'
    )
    assert short["extensions"]["code"] == "VALIDATION_ERROR" and short["extensions"]["field"] == "password"
    bad_email = await anon.error(
        'mutation { signUp(input: {email: "nope", password: "long enough password"}) { accessToken } }'
    )
    assert bad_email["extensions"]["field"] == "email"
    dev = await sign_up(anon, email="Someone@Example.com")
    assert dev.email == "Someone@Example.com"
    again = await anon.error(
        'mutation { signUp(input: {email: "someone@example.com", password: "long enough password"})'
        " { accessToken } }"
    )
    assert again["extensions"]["code"] == "CONFLICT"


async def test_access_token_is_a_pinned_short_lived_jwt(anon: GQL, settings) -> None:  # type: ignore[no-untyped-def]
    dev = await sign_up(anon)
    header = pyjwt.get_unverified_header(dev.access_token)
    claims = pyjwt.decode(dev.access_token, options={"verify_signature": False})
    assert header["alg"] == "HS256"
    assert {"iss", "aud", "exp", "iat", "sub"} <= set(claims)
    assert claims["exp"] - claims["iat"] == settings.access_token_ttl_s
    me = await dev.gql.data("{ me { id email emailVerified mfaEnabled } }")
    assert me["me"]["id"] == dev.user_id and me["me"]["emailVerified"] is False
    # A token signed with another key, or with alg "none", is refused.
    forged = pyjwt.encode({**claims, "sub": dev.user_id}, "another-key-another-key-another-key!", "HS256")
    unsigned = pyjwt.encode(claims, None, algorithm="none")
    for token in (forged, unsigned, "garbage"):
        error = await anon.bearer(token).error("{ me { id } }")
        assert error["extensions"]["code"] == "UNAUTHORIZED"


async def test_log_in_rotates_refresh_tokens_and_detects_reuse(anon: GQL, session_factory) -> None:  # type: ignore[no-untyped-def]
    dev = await sign_up(anon)
    wrong = await anon.error(LOG_IN, i={"email": dev.email, "password": "wrong password!"})
    unknown = await anon.error(LOG_IN, i={"email": "nobody@example.com", "password": PASSWORD})
    assert wrong["extensions"]["code"] == unknown["extensions"]["code"] == "UNAUTHORIZED"
    assert wrong["message"] == unknown["message"]  # no account enumeration

    session = (await anon.data(LOG_IN, i={"email": dev.email.upper(), "password": PASSWORD}))["logIn"]
    rotated = (await anon.data(REFRESH, t=session["refreshToken"]))["refreshSession"]
    assert rotated["refreshToken"] != session["refreshToken"]
    # The spent token presented again: reuse → the whole session family is revoked.
    reuse = await anon.error(REFRESH, t=session["refreshToken"])
    assert (reuse["extensions"]["code"], reuse["extensions"]["reason"]) == ("UNAUTHORIZED", "REUSED")
    revoked = await anon.error(REFRESH, t=rotated["refreshToken"])
    assert revoked["extensions"]["code"] == "UNAUTHORIZED"

    async with session_factory() as db:
        actions = [tuple(r) for r in (await db.execute(select(AuditLog.action, AuditLog.changes))).all()]
    assert ("auth.sign_in_failed", {"email": dev.email.lower(), "reason": "INVALID_CREDENTIALS"}) in actions
    assert any(action == "auth.sign_in" for action, _ in actions)


async def test_log_out_revokes_and_password_change_signs_out_everywhere(anon: GQL) -> None:
    dev = await sign_up(anon)
    assert await anon.data("mutation($t: String!) { logOut(refreshToken: $t) }", t=dev.refresh_token)
    assert (await anon.error(REFRESH, t=dev.refresh_token))["extensions"]["code"] == "UNAUTHORIZED"

    other = (await anon.data(LOG_IN, i={"email": dev.email, "password": PASSWORD}))["logIn"]
    wrong = await dev.gql.error(
        'mutation { changePassword(currentPassword: "not it at all", newPassword: "a new long password") }'
    )
    assert wrong["extensions"]["field"] == "currentPassword"
    await dev.gql.data(
        'mutation($c: String!) { changePassword(currentPassword: $c, newPassword: "a new long password") }',
        c=PASSWORD,
    )
    assert (await anon.error(REFRESH, t=other["refreshToken"]))["extensions"]["code"] == "UNAUTHORIZED"
    relog = await anon.data(LOG_IN, i={"email": dev.email, "password": "a new long password"})
    assert relog["logIn"]["user"]["id"] == dev.user_id


async def test_profile_update(anon: GQL) -> None:
    dev = await sign_up(anon)
    updated = await dev.gql.data(
        'mutation { updateProfile(input: {name: "Ada", avatarUrl: "https://x.test/a.png",'
        ' preferences: {theme: "dark"}}) { name avatarUrl preferences } }'
    )
    assert updated["updateProfile"] == {
        "name": "Ada",
        "avatarUrl": "https://x.test/a.png",
        "preferences": {"theme": "dark"},
    }
    bad = await dev.gql.error(
        'mutation { updateProfile(input: {avatarUrl: "javascript:alert(1)"}) { name } }'
    )
    assert bad["extensions"]["field"] == "avatarUrl"
    assert (await anon.error("{ me { id } }"))["extensions"]["code"] == "UNAUTHORIZED"


async def test_failed_log_ins_are_limited_per_account(anon: GQL, settings) -> None:  # type: ignore[no-untyped-def]
    dev = await sign_up(anon)
    limit = int(settings.failed_login_limit.split("/")[0])
    for _ in range(limit):
        wrong = await anon.error(LOG_IN, i={"email": dev.email, "password": "not the password"})
        assert wrong["extensions"]["code"] == "UNAUTHORIZED"
    # Even the right password now waits: guessing is capped per account, whatever the address.
    blocked = await anon.error(LOG_IN, i={"email": dev.email, "password": PASSWORD})
    assert blocked["extensions"]["code"] == "RATE_LIMITED" and blocked["extensions"]["retryAfter"] >= 1
    other = await sign_up(anon)
    assert await anon.data(LOG_IN, i={"email": other.email, "password": PASSWORD})
