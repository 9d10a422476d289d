"""MFA (TOTP, FR-1.5): enrolment, confirmation, log-in with a code, replay protection, recovery codes,
disabling, audit rows; the secret and the codes never reach logs or later responses."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import pyotp
import pytest
from sqlalchemy import select

from app.accounts import mfa
from app.accounts.models import User
from app.audit.models import AuditLog
from app.security.keys import Keys
from tests.gql import GQL, PASSWORD, Developer, sign_up

ENROLL = "mutation { startMfaEnrollment { secret provisioningUri } }"
CONFIRM = "mutation($c: String!) { confirmMfa(code: $c) }"
DISABLE = "mutation($p: String!, $c: String!) { disableMfa(password: $p, code: $c) }"
REGENERATE = "mutation($c: String!) { regenerateRecoveryCodes(code: $c) }"
STATUS = "{ mfaStatus { enabled recoveryCodesRemaining } }"
LOG_IN = "mutation($i: LogInInput!) { logIn(input: $i) { accessToken } }"


def next_code(secret: str) -> str:
    """The code of the next 30 s step: still accepted (clock drift window), and later than any
    step spent so far in the test, so no sleeping is needed."""
    return pyotp.TOTP(secret).at(time.time() + 30)


def wrong_code(secret: str) -> str:
    """A well-formed code that no step of the accepted window has."""
    totp, now = pyotp.TOTP(secret), time.time()
    window = {totp.at(now + offset) for offset in (-60, -30, 0, 30, 60)}
    return next(
        code for code in ("000000", "111111", "222222", "333333", "444444", "555555") if code not in window
    )


async def log_in(anon: GQL, dev: Developer, **factor: str) -> dict[str, Any]:
    return await anon.raw(LOG_IN, i={"email": dev.email, "password": PASSWORD, **factor})


async def enable_mfa(dev: Developer) -> tuple[str, list[str]]:
    """(secret, recovery codes); the current step is spent by the confirmation."""
    secret = (await dev.gql.data(ENROLL))["startMfaEnrollment"]["secret"]
    codes = (await dev.gql.data(CONFIRM, c=pyotp.TOTP(secret).now()))["confirmMfa"]
    return secret, codes


async def audit_actions(session_factory, user_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    async with session_factory() as session:
        rows = await session.execute(
            select(AuditLog.action)
            .where(AuditLog.actor_user_id == uuid.UUID(user_id))
            .order_by(AuditLog.created_at)
        )
        return list(rows.scalars())


async def test_enrol_confirm_and_log_in_with_a_code_once(anon: GQL, session_factory) -> None:  # type: ignore[no-untyped-def]
    dev = await sign_up(anon)
    assert (await dev.gql.data(STATUS))["mfaStatus"] == {"enabled": False, "recoveryCodesRemaining": 0}
    enrollment = (await dev.gql.data(ENROLL))["startMfaEnrollment"]
    secret, uri = enrollment["secret"], enrollment["provisioningUri"]
    assert uri.startswith("otpauth://totp/") and f"secret={secret}" in uri and "issuer=SyncForge" in uri
    assert pyotp.parse_uri(uri).secret == secret

    # Stored encrypted, bound to this user: never the secret itself.
    async with session_factory() as session:
        stored = (
            await session.execute(select(User.totp_secret_encrypted).where(User.id == uuid.UUID(dev.user_id)))
        ).scalar_one()
    assert stored.startswith("v1:") and secret not in stored

    # Not on until confirmed: log-in still needs no code.
    assert not (await log_in(anon, dev)).get("errors")
    wrong = await dev.gql.error(CONFIRM, c=wrong_code(secret))
    assert wrong["extensions"]["code"] == "VALIDATION_ERROR" and wrong["extensions"]["field"] == "code"
    assert (await dev.gql.data("{ me { mfaEnabled } }"))["me"]["mfaEnabled"] is False

    codes = (await dev.gql.data(CONFIRM, c=pyotp.TOTP(secret).now()))["confirmMfa"]
    assert len(codes) == 10 and len(set(codes)) == 10
    assert (await dev.gql.data("{ me { mfaEnabled } }"))["me"]["mfaEnabled"] is True
    assert (await dev.gql.data(STATUS))["mfaStatus"] == {"enabled": True, "recoveryCodesRemaining": 10}
    again = await dev.gql.error(ENROLL)
    assert again["extensions"]["code"] == "CONFLICT"  # disable first

    # Log-in now needs a code.
    missing = (await log_in(anon, dev))["errors"][0]
    assert missing["extensions"]["code"] == "UNAUTHORIZED"
    assert missing["extensions"]["reason"] == "MFA_REQUIRED"
    invalid = (await log_in(anon, dev, totpCode="12345x"))["errors"][0]
    assert invalid["extensions"]["reason"] == "MFA_INVALID"
    fullwidth = (await log_in(anon, dev, totpCode="\uff11\uff12\uff13\uff14\uff15\uff16"))["errors"][0]
    assert fullwidth["extensions"]["reason"] == "MFA_INVALID"  # fullwidth digits: not an internal error

    code = next_code(secret)
    signed_in = await log_in(anon, dev, totpCode=code)
    assert not signed_in.get("errors") and signed_in["data"]["logIn"]["accessToken"]
    replay = (await log_in(anon, dev, totpCode=code))["errors"][0]
    assert replay["extensions"]["code"] == "UNAUTHORIZED" and replay["extensions"]["reason"] == "MFA_INVALID"
    # A wrong password is refused before any code is looked at.
    wrong_password = await anon.raw(
        LOG_IN, i={"email": dev.email, "password": "not the password", "totpCode": code}
    )
    assert wrong_password["errors"][0]["extensions"]["reason"] == "INVALID_CREDENTIALS"


async def test_recovery_codes_are_single_use_and_can_be_regenerated(anon: GQL, session_factory) -> None:  # type: ignore[no-untyped-def]
    dev = await sign_up(anon)
    secret, codes = await enable_mfa(dev)

    assert not (await log_in(anon, dev, recoveryCode=codes[0])).get("errors")
    reused = (await log_in(anon, dev, recoveryCode=codes[0]))["errors"][0]
    assert reused["extensions"]["code"] == "UNAUTHORIZED" and reused["extensions"]["reason"] == "MFA_INVALID"
    # Typed in upper case with stray spaces: still one code.
    assert not (await log_in(anon, dev, recoveryCode=f"  {codes[1].upper()} ")).get("errors")
    assert (await dev.gql.data(STATUS))["mfaStatus"]["recoveryCodesRemaining"] == 8

    # Regenerating needs a TOTP code (a recovery code is not enough) and replaces every code.
    refused = await dev.gql.error(REGENERATE, c=codes[2])
    assert refused["extensions"]["code"] == "VALIDATION_ERROR" and refused["extensions"]["field"] == "code"
    fresh = (await dev.gql.data(REGENERATE, c=next_code(secret)))["regenerateRecoveryCodes"]
    assert len(fresh) == 10 and not set(fresh) & set(codes)
    assert (await dev.gql.data(STATUS))["mfaStatus"]["recoveryCodesRemaining"] == 10
    stale = (await log_in(anon, dev, recoveryCode=codes[2]))["errors"][0]
    assert stale["extensions"]["reason"] == "MFA_INVALID"
    assert not (await log_in(anon, dev, recoveryCode=fresh[0])).get("errors")

    actions = await audit_actions(session_factory, dev.user_id)
    assert actions.count("mfa.recovery_codes_regenerated") == 1


async def test_disable_needs_password_and_code(anon: GQL, session_factory) -> None:  # type: ignore[no-untyped-def]
    dev = await sign_up(anon)
    not_on = await dev.gql.error(DISABLE, p=PASSWORD, c="123456")
    assert not_on["extensions"]["code"] == "CONFLICT"
    secret, codes = await enable_mfa(dev)

    wrong_password = await dev.gql.error(DISABLE, p="not the password", c=next_code(secret))
    assert wrong_password["extensions"]["code"] == "VALIDATION_ERROR"
    assert wrong_password["extensions"]["field"] == "password"
    wrong_code = await dev.gql.error(DISABLE, p=PASSWORD, c="not-a-code")
    assert (
        wrong_code["extensions"]["code"] == "VALIDATION_ERROR" and wrong_code["extensions"]["field"] == "code"
    )
    assert (await dev.gql.data("{ me { mfaEnabled } }"))["me"]["mfaEnabled"] is True

    # The failed attempt above did not spend the code: it still turns MFA off.
    assert (await dev.gql.data(DISABLE, p=PASSWORD, c=next_code(secret)))["disableMfa"] is True
    assert (await dev.gql.data(STATUS))["mfaStatus"] == {"enabled": False, "recoveryCodesRemaining": 0}
    assert not (await log_in(anon, dev)).get("errors")  # no code needed any more
    gone = (await log_in(anon, dev, recoveryCode=codes[0]))["data"]  # a leftover code is simply ignored
    assert gone["logIn"]["accessToken"]
    async with session_factory() as session:
        user = await session.get(User, uuid.UUID(dev.user_id))
        assert user is not None
        assert user.totp_secret_encrypted is None and user.mfa_enabled_at is None

    # MFA can be set up again, and disabled with a recovery code instead of a TOTP code.
    _, codes = await enable_mfa(dev)
    assert (await dev.gql.data(DISABLE, p=PASSWORD, c=codes[0]))["disableMfa"] is True

    async with session_factory() as session:
        rows = (
            await session.execute(
                select(AuditLog)
                .where(AuditLog.actor_user_id == uuid.UUID(dev.user_id), AuditLog.action.startswith("mfa."))  # type: ignore[attr-defined]
                .order_by(AuditLog.created_at)
            )
        ).scalars()
        mfa_rows = [(row.action, row.changes, row.entity_id, row.actor_type) for row in rows]
    assert [action for action, *_ in mfa_rows] == [
        "mfa.enrollment_started",
        "mfa.enabled",
        "mfa.disabled",
        "mfa.enrollment_started",
        "mfa.enabled",
        "mfa.disabled",
    ]
    assert all(entity == dev.user_id and actor == "user" for _, _, entity, actor in mfa_rows)
    assert [changes.get("second_factor") for action, changes, *_ in mfa_rows if action == "mfa.disabled"] == [
        "totp",
        "recovery_code",
    ]


async def test_mfa_needs_a_signed_in_developer(anon: GQL) -> None:
    for query in (ENROLL, STATUS, 'mutation { confirmMfa(code: "123456") }'):
        error = await anon.error(query)
        assert error["extensions"]["code"] == "UNAUTHORIZED"


async def test_secret_and_codes_never_reach_logs_or_later_responses(
    anon: GQL, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    dev = await sign_up(anon)
    secret, codes = await enable_mfa(dev)
    await log_in(anon, dev)
    await log_in(anon, dev, totpCode=next_code(secret))
    await log_in(anon, dev, recoveryCode=codes[0])
    await log_in(anon, dev, recoveryCode=codes[0])  # refused: already used
    await dev.gql.raw(DISABLE, p="a wrong password guess", c=codes[1])
    later = str(
        await dev.gql.data("{ me { id email mfaEnabled } mfaStatus { enabled recoveryCodesRemaining } }")
    )
    await dev.gql.data(DISABLE, p=PASSWORD, c=codes[1])

    logs = caplog.text + "".join(str(record.args) for record in caplog.records)
    assert caplog.records, "the flow should have logged something"
    secrets = {"TOTP secret": secret, "password": PASSWORD, "wrong password": "a wrong password guess"}
    secrets.update({f"recovery code {i}": code for i, code in enumerate(codes)})
    for name, value in secrets.items():
        assert value not in logs, f"{name} appears in the logs"
        assert value not in later, f"{name} appears in a later response"


async def test_check_totp_window_and_replay(settings, session_factory) -> None:  # type: ignore[no-untyped-def]
    keys = Keys.from_secret(settings.secret_key)
    async with session_factory() as session:
        user = User(email=f"unit-{uuid.uuid4().hex[:8]}@example.com")
        session.add(user)
        await session.flush()
        secret = mfa.enroll(keys, user).secret
        await session.commit()
        totp, now = pyotp.TOTP(secret), time.time()

        assert not await mfa.check_totp(session, keys, user, totp.at(now - 90), now=now)  # 3 steps ago
        assert not await mfa.check_totp(session, keys, user, totp.at(now + 90), now=now)  # 3 steps ahead
        assert not await mfa.check_totp(session, keys, user, "12345", now=now)
        assert await mfa.check_totp(session, keys, user, totp.at(now), now=now)
        assert not await mfa.check_totp(session, keys, user, totp.at(now), now=now)  # replay
        assert not await mfa.check_totp(session, keys, user, totp.at(now - 30), now=now)  # older than spent
        code = totp.at(now + 30)
        assert await mfa.check_totp(session, keys, user, f"{code[:3]} {code[3:]}", now=now)  # as displayed
        await session.commit()

    # Two requests racing with one code: both read the user before either spent the step; the
    # conditional update lets only one of them through.
    async with session_factory() as first, session_factory() as second:
        mine, theirs = await first.get(User, user.id), await second.get(User, user.id)
        assert mine is not None and theirs is not None
        code = totp.at(now + 60)
        assert await mfa.check_totp(first, keys, mine, code, now=now + 60)
        await first.commit()
        assert theirs.totp_last_step is not None and theirs.totp_last_step < mine.totp_last_step  # type: ignore[operator]
        assert not await mfa.check_totp(second, keys, theirs, code, now=now + 60)
