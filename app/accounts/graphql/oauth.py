"""Sign-in with Google and GitHub for single-page apps: the app asks for the provider's URL, sends
the browser there, and hands the code and state from its redirect page to `oauthSignIn`."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.accounts import oauth
from app.accounts.graphql.types import AuthPayload
from app.errors import DomainError
from app.graphql.context import Info

OAuthProviderEnum = strawberry.enum(oauth.Provider, name="OAuthProvider")


@strawberry.type
class OAuthAuthorization:
    url: str = strawberry.field(description="The provider's authorization page: send the browser here.")
    state: str = strawberry.field(
        description="Comes back on the redirect URI; check that it matches, then pass it to oauthSignIn."
    )
    redirect_uri: str = strawberry.field(description="Where the provider sends the browser back.")
    expires_at: datetime = strawberry.field(description="oauthSignIn must be called before this.")


@strawberry.type
class OauthQuery:
    @strawberry.field(
        description="Start signing in with a provider (authorization code with PKCE). redirectUri must be "
        "a page under the service's public URL; by default {publicUrl}/auth/oauth/{provider}/callback."
    )
    async def oauth_authorization_url(
        self, info: Info, provider: OAuthProviderEnum, redirect_uri: str | None = None
    ) -> OAuthAuthorization:
        state = info.context.state
        async with info.context.unit_of_work() as uow:
            started = await oauth.start(
                uow.session, state.settings, state.keys, oauth.Provider(provider), redirect_uri
            )
        return OAuthAuthorization(
            url=started.url,
            state=started.state,
            redirect_uri=started.redirect_uri,
            expires_at=started.expires_at,
        )


@strawberry.type
class OauthMutation:
    @strawberry.mutation(
        description="Finish signing in with a provider: the code and state from the redirect URI. Links to "
        "the account with the same email if the provider verified it, or creates one. With MFA on, pass "
        "totpCode or recoveryCode (the flow must be restarted if it was missing)."
    )
    async def oauth_sign_in(
        self,
        info: Info,
        provider: OAuthProviderEnum,
        code: str,
        state: str,
        totp_code: str | None = None,
        recovery_code: str | None = None,
    ) -> AuthPayload:
        app_state, client = info.context.state, info.context.client
        chosen = oauth.Provider(provider)
        oauth.provider_config(app_state.settings, chosen)  # an unconfigured provider is a VALIDATION_ERROR
        # The state is spent in its own transaction: a failed exchange cannot make it usable again.
        async with info.context.unit_of_work() as uow:
            pending = await oauth.consume_state(uow.session, app_state.keys, chosen, state)
        profile = await oauth.fetch_profile(app_state.settings, pending, code)
        try:
            async with info.context.unit_of_work() as uow:
                new_session = await oauth.sign_in(
                    uow.session,
                    app_state.settings,
                    app_state.keys,
                    profile,
                    client,
                    totp_code=totp_code,
                    recovery_code=recovery_code,
                )
        except DomainError as error:
            async with info.context.unit_of_work() as uow:
                oauth.record_failure(uow.session, profile, error, client)
            raise
        return AuthPayload.from_session(new_session)
