"""GraphQL of MFA (TOTP): enrol, confirm, status, recovery codes, disable.

The TOTP secret leaves the server once, in the answer to startMfaEnrollment; recovery codes once, in
the answer that creates them. Audit rows name what changed, never a secret or a code."""

from __future__ import annotations

import strawberry

from app.accounts import mfa
from app.accounts.graphql.auth import current_user
from app.accounts.models import User
from app.audit import service as audit
from app.graphql.context import Info


@strawberry.type
class MfaEnrollment:
    """Shown this once: add it to an authenticator app, then confirm with a code (confirmMfa)."""

    secret: str = strawberry.field(description="The TOTP secret (base32), for manual entry.")
    provisioning_uri: str = strawberry.field(description="otpauth:// URI, to show as a QR code.")


@strawberry.type
class MfaStatus:
    enabled: bool
    recovery_codes_remaining: int = strawberry.field(description="Unused recovery codes.")


def _audit(info: Info, session, action: str, user: User, **changes: object) -> None:  # type: ignore[no-untyped-def]
    client = info.context.client
    audit.record(
        session,
        action,
        principal=info.context.principal,
        entity_type="user",
        entity_id=user.id,
        changes=changes,
        ip_address=client.ip,
        user_agent=client.user_agent,
    )


@strawberry.type
class MfaQuery:
    @strawberry.field(description="MFA state of the signed-in developer.")
    async def mfa_status(self, info: Info) -> MfaStatus:
        async with info.context.session() as session:
            user = await current_user(info, session)
            remaining = await mfa.remaining_recovery_codes(session, user)
        return MfaStatus(enabled=user.mfa_enabled_at is not None, recovery_codes_remaining=remaining)


@strawberry.type
class MfaMutation:
    @strawberry.mutation(
        description="Start (or restart) TOTP enrolment. MFA is on only after confirmMfa; the secret is "
        "shown in this answer only."
    )
    async def start_mfa_enrollment(self, info: Info) -> MfaEnrollment:
        async with info.context.unit_of_work() as uow:
            user = await current_user(info, uow.session)
            enrollment = mfa.enroll(info.context.state.keys, user)
            _audit(info, uow.session, "mfa.enrollment_started", user)
        return MfaEnrollment(secret=enrollment.secret, provisioning_uri=enrollment.provisioning_uri)

    @strawberry.mutation(
        description="Turn MFA on with a code from the authenticator app. Returns the recovery codes, "
        "shown this once; each signs in once instead of a code."
    )
    async def confirm_mfa(self, info: Info, code: str) -> list[str]:
        async with info.context.unit_of_work() as uow:
            user = await current_user(info, uow.session)
            codes = await mfa.confirm(uow.session, info.context.state.keys, user, code)
            _audit(info, uow.session, "mfa.enabled", user, recovery_codes=len(codes))
        return codes

    @strawberry.mutation(
        description="Turn MFA off: needs the password and a code (TOTP or an unused recovery code)."
    )
    async def disable_mfa(self, info: Info, password: str, code: str) -> bool:
        async with info.context.unit_of_work() as uow:
            user = await current_user(info, uow.session)
            factor = await mfa.disable_with_proof(
                uow.session, info.context.state.keys, user, password=password, code=code
            )
            _audit(info, uow.session, "mfa.disabled", user, second_factor=factor)
        return True

    @strawberry.mutation(
        description="Replace all recovery codes with new ones (needs a TOTP code); shown this once."
    )
    async def regenerate_recovery_codes(self, info: Info, code: str) -> list[str]:
        async with info.context.unit_of_work() as uow:
            user = await current_user(info, uow.session)
            codes = await mfa.regenerate_recovery_codes(uow.session, info.context.state.keys, user, code)
            _audit(info, uow.session, "mfa.recovery_codes_regenerated", user, recovery_codes=len(codes))
        return codes
