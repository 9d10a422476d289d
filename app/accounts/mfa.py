"""TOTP second factor (pyotp): enrolment, confirmation, verification, recovery codes."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import pyotp
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from app.accounts.credentials_models import RecoveryCode
from app.accounts.models import User
from app.db.types import utcnow
from app.errors import Conflict, Unauthorized, ValidationFailed
from app.security.encryption import decrypt, encrypt
from app.security.keys import Keys
from app.security.passwords import verify_password
from app.security.tokens import hash_token

ISSUER = "SyncForge"
RECOVERY_CODES = 10
VALID_WINDOW = 1  # accept the previous and next 30 s step too (clock drift)


@dataclass(frozen=True)
class Enrollment:
    secret: str
    provisioning_uri: str


def _context(user: User) -> str:
    return f"totp:{user.id}"


def _secret(keys: Keys, user: User) -> str:
    assert user.totp_secret_encrypted is not None
    return decrypt(keys.encryption, user.totp_secret_encrypted, context=_context(user))


def enroll(keys: Keys, user: User) -> Enrollment:
    """Start (or restart) enrolment: a new secret, not active until confirmed with a code."""
    if user.mfa_enabled_at is not None:
        raise Conflict("MFA is already enabled; disable it first")
    secret = pyotp.random_base32()
    user.totp_secret_encrypted = encrypt(keys.encryption, secret, context=_context(user))
    user.totp_last_step = None
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)
    return Enrollment(secret=secret, provisioning_uri=uri)


def _fresh_step(keys: Keys, user: User, code: str, now: float | None) -> int | None:
    """The time step of a valid code that is later than the last step used, else None."""
    code = code.replace(" ", "")
    # ASCII only: str.isdigit() accepts other scripts' digits (e.g. fullwidth), on which
    # secrets.compare_digest raises TypeError instead of answering False.
    if user.totp_secret_encrypted is None or not (code.isascii() and code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(_secret(keys, user))
    current = int((time.time() if now is None else now) // totp.interval)
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if user.totp_last_step is not None and step <= user.totp_last_step:
            continue  # replay: this code (or a later one) was already used
        if secrets.compare_digest(totp.at(step * totp.interval), code):
            return step
    return None


async def check_totp(
    session: AsyncSession, keys: Keys, user: User, code: str, *, now: float | None = None
) -> bool:
    """True for a valid code whose time step was not used before; that step is then spent.

    The step is recorded with a conditional UPDATE (compare-and-set on users.totp_last_step), so of
    two transactions racing with the same code only one succeeds, on PostgreSQL as on SQLite."""
    step = _fresh_step(keys, user, code, now)
    if step is None:
        return False
    await session.flush()  # the sessions do not autoflush; the update below must see pending changes
    result = await session.execute(
        update(User)
        .where(
            User.id == user.id,
            or_(User.totp_last_step.is_(None), User.totp_last_step < step),  # type: ignore[union-attr]
        )
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return False  # another request spent this step (or a later one) meanwhile
    set_committed_value(user, "totp_last_step", step)
    return True


def new_recovery_codes(session: AsyncSession, user: User) -> list[str]:
    codes = [f"{secrets.token_hex(4)}-{secrets.token_hex(4)}" for _ in range(RECOVERY_CODES)]
    for code in codes:
        session.add(RecoveryCode(user_id=user.id, code_hash=hash_token(code)))
    return codes


async def confirm(session: AsyncSession, keys: Keys, user: User, code: str) -> list[str]:
    """Activate MFA with a first valid code; returns the recovery codes (shown once)."""
    if user.mfa_enabled_at is not None:
        raise Conflict("MFA is already enabled")
    if user.totp_secret_encrypted is None:
        raise Conflict("start MFA enrolment first")
    if not await check_totp(session, keys, user, code):
        raise ValidationFailed("invalid code", field="code")
    user.mfa_enabled_at = utcnow()
    await _delete_recovery_codes(session, user)
    return new_recovery_codes(session, user)


async def use_recovery_code(session: AsyncSession, user: User, code: str) -> bool:
    result = await session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == hash_token(code.strip().lower()),
            RecoveryCode.used_at.is_(None),  # type: ignore[union-attr]
        )
        .values(used_at=utcnow())
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def verify_second_factor(
    session: AsyncSession, keys: Keys, user: User, totp_code: str | None, recovery_code: str | None
) -> str | None:
    """For a user with MFA on: raise unless a fresh TOTP code or an unused recovery code is given.
    Returns which factor was used (for the audit log), or None when MFA is off."""
    if user.mfa_enabled_at is None:
        return None
    if totp_code and await check_totp(session, keys, user, totp_code):
        return "totp"
    if recovery_code and await use_recovery_code(session, user, recovery_code):
        return "recovery_code"
    if not totp_code and not recovery_code:
        raise Unauthorized("a one-time code is required", reason="MFA_REQUIRED")
    raise Unauthorized("invalid one-time code", reason="MFA_INVALID")


async def disable(session: AsyncSession, user: User) -> None:
    user.totp_secret_encrypted = None
    user.mfa_enabled_at = None
    user.totp_last_step = None
    await _delete_recovery_codes(session, user)


async def disable_with_proof(
    session: AsyncSession, keys: Keys, user: User, *, password: str, code: str
) -> str:
    """Turn MFA off for a user who proves both factors: the password, and a TOTP code or an unused
    recovery code. Returns which second factor was used (for the audit log)."""
    if user.mfa_enabled_at is None:
        raise Conflict("MFA is not enabled")
    if not await verify_password(user.hashed_password, password):
        raise ValidationFailed("wrong password", field="password")
    if await check_totp(session, keys, user, code):
        factor = "totp"
    elif await use_recovery_code(session, user, code):
        factor = "recovery_code"
    else:
        raise ValidationFailed("invalid code", field="code")
    await disable(session, user)
    return factor


async def regenerate_recovery_codes(session: AsyncSession, keys: Keys, user: User, code: str) -> list[str]:
    """Replace every recovery code (used or not) with new ones; needs a fresh TOTP code."""
    if user.mfa_enabled_at is None:
        raise Conflict("MFA is not enabled")
    if not await check_totp(session, keys, user, code):
        raise ValidationFailed("invalid code", field="code")
    await _delete_recovery_codes(session, user)
    return new_recovery_codes(session, user)


async def remaining_recovery_codes(session: AsyncSession, user: User) -> int:
    query = select(func.count(RecoveryCode.id)).where(
        RecoveryCode.user_id == user.id,
        RecoveryCode.used_at.is_(None),  # type: ignore[union-attr]
    )
    return int((await session.execute(query)).scalar_one())


async def _delete_recovery_codes(session: AsyncSession, user: User) -> None:
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
