"""Email verification and password reset by single-use tokens sent by email."""

from __future__ import annotations

import strawberry

from app.accounts import email_flows
from app.accounts.graphql.auth import current_user
from app.accounts.graphql.types import UserType
from app.audit import service as audit
from app.graphql.context import Info


@strawberry.type
class EmailMutation:
    @strawberry.mutation(
        description="Send a new verification email to the signed-in developer; earlier links stop working."
    )
    async def request_email_verification(self, info: Info) -> bool:
        async with info.context.unit_of_work() as uow:
            user = await current_user(info, uow.session)
            await info.context.state.rate_limits.hit_email_request(user.email)
            await email_flows.request_verification(info.context.state, uow, user)
        return True

    @strawberry.mutation(description="Confirm an email address with the token from the verification email.")
    async def verify_email(self, info: Info, token: str) -> UserType:
        client = info.context.client
        async with info.context.unit_of_work() as uow:
            user = await email_flows.verify_email(uow.session, token)
            audit.record(
                uow.session,
                "auth.email_verified",
                actor_user_id=user.id,
                entity_type="user",
                entity_id=user.id,
                ip_address=client.ip,
                user_agent=client.user_agent,
            )
        return UserType.from_model(user)

    @strawberry.mutation(
        description=(
            "Email a password reset link if an account has this address. Always true, so that it does "
            "not tell whether an account exists."
        )
    )
    async def request_password_reset(self, info: Info, email: str) -> bool:
        client = info.context.client
        await info.context.state.rate_limits.hit_email_request(email)
        async with info.context.unit_of_work() as uow:
            user = await email_flows.request_password_reset(info.context.state, uow, email)
            if user is not None:
                audit.record(
                    uow.session,
                    "auth.password_reset_requested",
                    actor_user_id=user.id,
                    entity_type="user",
                    entity_id=user.id,
                    ip_address=client.ip,
                    user_agent=client.user_agent,
                )
        return True

    @strawberry.mutation(
        description="Choose a new password with the token from the reset email; every session is signed out."
    )
    async def reset_password(self, info: Info, token: str, new_password: str) -> bool:
        client = info.context.client
        async with info.context.unit_of_work() as uow:
            user = await email_flows.reset_password(
                uow.session, info.context.state.settings, token, new_password
            )
            audit.record(
                uow.session,
                "auth.password_reset",
                actor_user_id=user.id,
                entity_type="user",
                entity_id=user.id,
                ip_address=client.ip,
                user_agent=client.user_agent,
            )
        return True


@strawberry.type
class EmailQuery:
    pass
