"""TOTP second factor (pyotp): enrolment, confirmation, verification, recovery codes."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import pyotp
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.credentials_models import RecoveryCode
from app.accounts.models import User
from app.db.types import utcnow
from app.errors import Conflict, Unauthorized, ValidationFailed
from app.security.encryption import decrypt, encrypt
from app.security.keys import Keys
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


def check_totp(keys: Keys, user: User, code: str, *, now: float | None = None) -> bool:
    """True for a valid code whose time step was not used before (then that step is spent)."""
    if user.totp_secret_encrypted is None or not code.isdigit() or len(code) != 6:
        return False
    totp = pyotp.TOTP(_secret(keys, user))
    now = time.time() if now is None else now
    current = int(now // totp.interval)
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if secrets.compare_digest(totp.at(step * totp.interval), code):
            if user.totp_last_step is not None and step <= user.totp_last_step:
                return False  # replay: this code (or a later one) was already used
            user.totp_last_step = step
            return True
    return False


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
    if not check_totp(keys, user, code):
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
    if totp_code and check_totp(keys, user, totp_code):
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


async def remaining_recovery_codes(session: AsyncSession, user: User) -> int:
    rows = await session.execute(
        select(RecoveryCode.id).where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.used_at.is_(None),  # type: ignore[union-attr]
        )
    )
    return len(rows.all())


async def _delete_recovery_codes(session: AsyncSession, user: User) -> None:
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
