"""Developer sign-up, log-in, sessions and profile."""

from __future__ import annotations

import uuid

import strawberry
from strawberry.scalars import JSON

from app.accounts import sessions
from app.accounts.graphql.types import AuthPayload, UserType, json_map
from app.accounts.models import User
from app.audit import service as audit
from app.auth.principal import Developer, EndUserClient, Principal, PublishableKeyClient, SecretKeyClient
from app.errors import NotFound, Unauthorized, ValidationFailed
from app.graphql.context import Info


async def current_user(info: Info, session) -> User:  # type: ignore[no-untyped-def]
    developer = info.context.policy.require_developer()
    user = await session.get(User, developer.user_id)
    if user is None:
        raise NotFound("user")
    return user


@strawberry.input
class SignUpInput:
    email: str
    password: str
    name: str | None = None


@strawberry.input
class LogInInput:
    email: str
    password: str
    totp_code: str | None = strawberry.field(default=None, description="Needed when MFA is on.")
    recovery_code: str | None = strawberry.field(default=None, description="Instead of totpCode.")


@strawberry.input
class UpdateProfileInput:
    name: str | None = strawberry.UNSET
    avatar_url: str | None = strawberry.UNSET
    preferences: JSON | None = strawberry.UNSET


@strawberry.type
class Viewer:
    """Who the current credentials stand for: what an SDK checks after connecting."""

    kind: str = strawberry.field(description="anonymous, developer, secret_key, publishable_key or end_user.")
    user_id: str | None = strawberry.field(description="Developer id, or your id of the end-user.")
    organization_id: uuid.UUID | None
    scopes: list[str]
    info: JSON | None = strawberry.field(description="The end-user's info from their token.")


def viewer_of(principal: Principal) -> Viewer:
    if isinstance(principal, Developer):
        return Viewer(
            kind="developer", user_id=str(principal.user_id), organization_id=None, scopes=[], info=None
        )
    if isinstance(principal, EndUserClient):
        return Viewer(
            kind="end_user",
            user_id=principal.external_id,
            organization_id=principal.organization_id,
            scopes=sorted(principal.scopes),
            info=principal.info,
        )
    if isinstance(principal, SecretKeyClient | PublishableKeyClient):
        kind = "secret_key" if isinstance(principal, SecretKeyClient) else "publishable_key"
        return Viewer(
            kind=kind,
            user_id=None,
            organization_id=principal.organization_id,
            scopes=sorted(principal.scopes),
            info=None,
        )
    return Viewer(kind="anonymous", user_id=None, organization_id=None, scopes=[], info=None)


@strawberry.type
class AuthQuery:
    @strawberry.field(description="Who the current credentials stand for (never an error).")
    def viewer(self, info: Info) -> Viewer:
        return viewer_of(info.context.principal)

    @strawberry.field(description="The signed-in developer.")
    async def me(self, info: Info) -> UserType:
        async with info.context.session() as session:
            return UserType.from_model(await current_user(info, session))


@strawberry.type
class AuthMutation:
    @strawberry.mutation(description="Create a developer account and sign in.")
    async def sign_up(self, info: Info, input: SignUpInput) -> AuthPayload:
        state = info.context.state
        async with info.context.unit_of_work() as uow:
            user = await sessions.sign_up(
                uow.session, state.settings, email=input.email, password=input.password, name=input.name
            )
            await after_sign_up(info, uow, user)
            new_session = await sessions.issue_session(
                uow.session, state.settings, state.keys, user, info.context.client
            )
        return AuthPayload.from_session(new_session)

    @strawberry.mutation(description="Sign in with email and password (and a one-time code with MFA).")
    async def log_in(self, info: Info, input: LogInInput) -> AuthPayload:
        state, client = info.context.state, info.context.client
        account = input.email.strip().lower()
        await state.rate_limits.check_failed_logins(account)
        try:
            async with info.context.unit_of_work() as uow:
                new_session = await sessions.log_in(
                    uow.session,
                    state.settings,
                    state.keys,
                    email=input.email,
                    password=input.password,
                    totp_code=input.totp_code,
                    recovery_code=input.recovery_code,
                    client=client,
                )
        except Unauthorized as error:
            if error.extensions.get("reason") != "MFA_REQUIRED":
                await state.rate_limits.record_failed_login(account)
            async with info.context.unit_of_work() as uow:
                user = await sessions.find_user_by_email(uow.session, account)
                audit.record(
                    uow.session,
                    "auth.sign_in_failed",
                    actor_user_id=user.id if user else None,
                    entity_type="user",
                    entity_id=user.id if user else None,
                    changes={
                        "email": input.email.strip().lower()[:254],
                        "reason": error.extensions.get("reason"),
                    },
                    ip_address=client.ip,
                    user_agent=client.user_agent,
                )
            raise
        return AuthPayload.from_session(new_session)

    @strawberry.mutation(description="Trade a refresh token for a new session; the old token is spent.")
    async def refresh_session(self, info: Info, refresh_token: str) -> AuthPayload:
        state = info.context.state
        try:
            async with info.context.unit_of_work() as uow:
                new_session = await sessions.refresh(
                    uow.session,
                    state.settings,
                    state.keys,
                    refresh_token=refresh_token,
                    client=info.context.client,
                )
        except Unauthorized as error:
            if error.extensions.get("reason") == "REUSED":
                # The revocation of the family must survive the failed mutation.
                async with info.context.unit_of_work() as uow:
                    await sessions.refresh_reuse_revocation(uow.session, refresh_token)
            raise
        return AuthPayload.from_session(new_session)

    @strawberry.mutation(description="End the session of this refresh token.")
    async def log_out(self, info: Info, refresh_token: str) -> bool:
        async with info.context.unit_of_work() as uow:
            return await sessions.log_out(uow.session, refresh_token)

    @strawberry.mutation(description="End every session of the signed-in developer.")
    async def log_out_everywhere(self, info: Info) -> bool:
        async with info.context.unit_of_work() as uow:
            user = await current_user(info, uow.session)
            await sessions.revoke_all(uow.session, user.id)
        return True

    @strawberry.mutation(description="Change name, avatar or preferences.")
    async def update_profile(self, info: Info, input: UpdateProfileInput) -> UserType:
        async with info.context.unit_of_work() as uow:
            user = await current_user(info, uow.session)
            if input.name is not strawberry.UNSET:
                name = (input.name or "").strip()
                if len(name) > 100:
                    raise ValidationFailed("name must be at most 100 characters", field="name")
                user.name = name or None
            if input.avatar_url is not strawberry.UNSET:
                if input.avatar_url and not input.avatar_url.startswith(("https://", "http://")):
                    raise ValidationFailed("avatarUrl must be an http(s) URL", field="avatarUrl")
                user.avatar_url = input.avatar_url or None
            if input.preferences is not strawberry.UNSET:
                user.preferences = json_map(input.preferences or {}, "preferences")
        return UserType.from_model(user)

    @strawberry.mutation(description="Change the password; every other session is signed out.")
    async def change_password(self, info: Info, current_password: str, new_password: str) -> bool:
        state = info.context.state
        async with info.context.unit_of_work() as uow:
            user = await current_user(info, uow.session)
            await sessions.change_password(
                uow.session, state.settings, user, current=current_password, new=new_password
            )
            audit.record(
                uow.session,
                "auth.password_changed",
                principal=info.context.principal,
                entity_type="user",
                entity_id=user.id,
                ip_address=info.context.client.ip,
            )
        return True


async def after_sign_up(info: Info, uow, user: User) -> None:  # type: ignore[no-untyped-def]
    """Hook for what follows a new account (the verification email)."""
    from app.accounts import email_flows

    await email_flows.send_verification(info.context.state, uow, user)
