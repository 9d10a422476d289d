"""OAuth sign-in with Google and GitHub: the authorization-code flow with state and PKCE (S256).

The flow is split so that no database transaction stays open while the provider is called:

1. `start` stores the state (hashed) and the PKCE verifier (encrypted) and builds the provider's URL.
2. At the callback, `consume_state` spends the state in its own transaction, so a code exchange
   that fails afterwards cannot make the state usable again.
3. `fetch_profile` exchanges the code (with the verifier) and reads the provider's profile.
4. `sign_in` finds the linked user, links the user with the same verified email, or creates one.
"""

from __future__ import annotations

import enum
import logging
import re
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import authlib.deprecate  # noqa: F401  (installs its warning filter before ours below)
import httpx
from authlib.common.errors import AuthlibBaseError
from authlib.common.security import generate_token
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import mfa
from app.accounts.credentials_models import OAuthState
from app.accounts.models import User, UserStatus
from app.accounts.sessions import (
    ClientInfo,
    Session,
    find_user_by_email,
    issue_session,
    normalize_email,
    revoke_all,
)
from app.audit import service as audit
from app.db.types import utcnow
from app.errors import DomainError, Forbidden, Unauthorized, ValidationFailed
from app.security.encryption import decrypt, encrypt
from app.security.keys import Keys
from app.security.tokens import hash_token, new_token
from app.settings import Settings

with warnings.catch_warnings():
    # Authlib 1.9 prefers the `httpx2` package and warns when it falls back to `httpx`, which works.
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    from authlib.integrations.httpx_client import AsyncOAuth2Client

log = logging.getLogger(__name__)

STATE_TTL = timedelta(minutes=10)
HTTP_TIMEOUT_S = 10.0
MAX_INPUT_LENGTH = 2048
INVALID_STATE = "invalid or expired OAuth state"


class Provider(enum.StrEnum):
    GOOGLE = "google"
    GITHUB = "github"

    @property
    def label(self) -> str:
        return "GitHub" if self is Provider.GITHUB else "Google"


SCOPES = {Provider.GOOGLE: "openid email profile", Provider.GITHUB: "read:user user:email"}


@dataclass(frozen=True)
class ProviderConfig:
    provider: Provider
    client_id: str
    client_secret: str
    authorize_url: str
    token_url: str


@dataclass(frozen=True)
class Authorization:
    url: str
    state: str
    redirect_uri: str
    expires_at: datetime


@dataclass(frozen=True)
class PendingSignIn:
    """What `consume_state` recovered: the verifier and redirect URI of that authorization."""

    provider: Provider
    code_verifier: str
    redirect_uri: str


@dataclass(frozen=True)
class Profile:
    provider: Provider
    subject: str  # the provider's stable user id
    email: str
    email_verified: bool
    name: str | None
    avatar_url: str | None


def provider_config(settings: Settings, provider: Provider) -> ProviderConfig:
    prefix = provider.value
    client_id = getattr(settings, f"{prefix}_client_id")
    client_secret = getattr(settings, f"{prefix}_client_secret")
    if not client_id or not client_secret:
        missing = "CLIENT_ID" if not client_id else "CLIENT_SECRET"
        raise ValidationFailed(
            f"{provider.label} sign-in is not configured (SYNCFORGE_{prefix.upper()}_{missing})",
            field="provider",
        )
    return ProviderConfig(
        provider=provider,
        client_id=client_id,
        client_secret=client_secret,
        authorize_url=getattr(settings, f"{prefix}_authorize_url"),
        token_url=getattr(settings, f"{prefix}_token_url"),
    )


def default_redirect_uri(settings: Settings, provider: Provider) -> str:
    return f"{settings.public_url.rstrip('/')}/auth/oauth/{provider.value}/callback"


def resolve_redirect_uri(settings: Settings, provider: Provider, redirect_uri: str | None) -> str:
    """The given redirect URI if it is a page under public_url (no open redirects), else the default."""
    if redirect_uri is None or not redirect_uri.strip():
        return default_redirect_uri(settings, provider)
    uri = redirect_uri.strip()
    if len(uri) > MAX_INPUT_LENGTH or not _is_under(settings.public_url, uri):
        raise ValidationFailed(
            f"redirectUri must be a page under {settings.public_url.rstrip('/')}", field="redirectUri"
        )
    return uri


def _is_under(base_url: str, uri: str) -> bool:
    if any(ch.isspace() or ord(ch) < 32 or ch == "\\" for ch in uri):
        return False
    try:
        base, target = urlsplit(base_url), urlsplit(uri)
        same_origin = (target.scheme.lower(), target.netloc.lower(), target.port) == (
            base.scheme.lower(),
            base.netloc.lower(),
            base.port,
        )
    except ValueError:  # e.g. a malformed port or IPv6 address
        return False
    if not same_origin or target.fragment:
        return False
    prefix = base.path.rstrip("/")
    return target.path == prefix or target.path.startswith(prefix + "/")


def verifier_context(state_hash: str) -> str:
    # Binds the encrypted verifier to its row: a verifier copied to another state does not decrypt.
    return f"oauth-pkce:{state_hash}"


def _oauth_client(config: ProviderConfig, redirect_uri: str) -> AsyncOAuth2Client:
    client = AsyncOAuth2Client(
        client_id=config.client_id,
        client_secret=config.client_secret,
        token_endpoint_auth_method="client_secret_post",  # what both Google and GitHub accept
        scope=SCOPES[config.provider],
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        timeout=HTTP_TIMEOUT_S,
        follow_redirects=False,
    )
    client.register_compliance_hook("access_token_response", _form_token_response_as_json)
    return client


def _form_token_response_as_json(response: httpx.Response) -> httpx.Response:
    """GitHub answers the token request form-encoded unless it honours `Accept: application/json`
    (which Authlib sends); Authlib reads only JSON, so a form body is converted."""
    if "json" in response.headers.get("content-type", ""):
        return response
    fields = dict(parse_qsl(response.text))
    if "access_token" not in fields and "error" not in fields:
        return response
    return httpx.Response(response.status_code, json=fields, request=response.request)


async def start(
    session: AsyncSession, settings: Settings, keys: Keys, provider: Provider, redirect_uri: str | None
) -> Authorization:
    """Begin an authorization: the URL to send the browser to and the state it will come back with."""
    config = provider_config(settings, provider)
    uri = resolve_redirect_uri(settings, provider, redirect_uri)
    state, verifier = new_token(), generate_token(48)
    state_hash = hash_token(state)
    now = utcnow()
    # Flows that were never finished are of no use once expired; this keeps the table small.
    await session.execute(delete(OAuthState).where(OAuthState.expires_at < now))
    session.add(
        OAuthState(
            provider=provider.value,
            state_hash=state_hash,
            code_verifier_encrypted=encrypt(keys.encryption, verifier, context=verifier_context(state_hash)),
            redirect_uri=uri,
            expires_at=now + STATE_TTL,
        )
    )
    async with _oauth_client(config, uri) as client:  # builds the URL; no request is made
        url, _ = client.create_authorization_url(config.authorize_url, state=state, code_verifier=verifier)
    return Authorization(url=url, state=state, redirect_uri=uri, expires_at=now + STATE_TTL)


async def consume_state(session: AsyncSession, keys: Keys, provider: Provider, state: str) -> PendingSignIn:
    """Spend a state (single use). Unknown, expired, spent or another provider's: Unauthorized."""
    if not state or len(state) > MAX_INPUT_LENGTH:
        raise Unauthorized(INVALID_STATE, reason="INVALID_STATE")
    state_hash, now = hash_token(state), utcnow()
    spent = await session.execute(
        update(OAuthState)
        .where(
            OAuthState.state_hash == state_hash,
            OAuthState.provider == provider.value,
            OAuthState.consumed_at.is_(None),  # type: ignore[union-attr]
            OAuthState.expires_at > now,
        )
        .values(consumed_at=now)
    )
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        raise Unauthorized(INVALID_STATE, reason="INVALID_STATE")
    row = (await session.execute(select(OAuthState).where(OAuthState.state_hash == state_hash))).scalar_one()
    try:
        verifier = decrypt(keys.encryption, row.code_verifier_encrypted, context=verifier_context(state_hash))
    except ValueError:
        log.warning("OAuth state %s has a verifier that does not decrypt", row.id)
        raise Unauthorized(INVALID_STATE, reason="INVALID_STATE") from None
    return PendingSignIn(provider=provider, code_verifier=verifier, redirect_uri=row.redirect_uri)


async def fetch_profile(settings: Settings, pending: PendingSignIn, code: str) -> Profile:
    """Exchange the code (proving the verifier) and read the user's profile from the provider.
    Every provider failure is Unauthorized, with a message that holds no token."""
    config = provider_config(settings, pending.provider)
    label = pending.provider.label
    if not code or len(code) > MAX_INPUT_LENGTH:
        raise Unauthorized(f"{label} sign-in failed: no valid authorization code", reason="PROVIDER_ERROR")
    try:
        async with _oauth_client(config, pending.redirect_uri) as client:
            token = await client.fetch_token(config.token_url, code=code, code_verifier=pending.code_verifier)
            if not token.get("access_token"):
                raise _Unusable("the token response has no access token")
            if pending.provider is Provider.GOOGLE:
                return await _google_profile(client, settings)
            return await _github_profile(client, settings)
    except AuthlibBaseError as exc:
        error = _safe_word(getattr(exc, "error", None))
        log.warning("%s token exchange refused: %s", label, error)
        raise Unauthorized(f"{label} refused the sign-in ({error})", reason="PROVIDER_ERROR") from None
    except httpx.TimeoutException:
        log.warning("%s did not answer within %ss", label, HTTP_TIMEOUT_S)
        raise Unauthorized(f"{label} did not answer in time", reason="PROVIDER_UNAVAILABLE") from None
    except httpx.HTTPStatusError as exc:
        status = exc.response.status_code
        log.warning("%s answered HTTP %s to %s", label, status, exc.request.url.copy_with(query=None))
        raise Unauthorized(f"{label} sign-in failed (HTTP {status})", reason="PROVIDER_ERROR") from None
    except httpx.HTTPError as exc:
        log.warning("%s could not be reached: %s", label, type(exc).__name__)
        raise Unauthorized(f"{label} could not be reached", reason="PROVIDER_UNAVAILABLE") from None
    except (_Unusable, ValueError, KeyError, TypeError) as exc:
        log.warning("%s gave an unusable answer: %s", label, type(exc).__name__)
        raise Unauthorized(f"{label} gave an unusable answer", reason="PROVIDER_ERROR") from None


class _Unusable(Exception):
    """The provider's answer lacks what sign-in needs."""


def _safe_word(value: object) -> str:
    text = str(value or "error")
    return text if re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", text) else "error"


async def _get_json(client: AsyncOAuth2Client, url: str, **kwargs: Any) -> Any:
    response = await client.get(url, **kwargs)
    response.raise_for_status()
    return response.json()


async def _google_profile(client: AsyncOAuth2Client, settings: Settings) -> Profile:
    data = await _get_json(client, settings.google_userinfo_url)
    if not isinstance(data, dict) or not data.get("sub"):
        raise _Unusable("no subject")
    return _profile(
        Provider.GOOGLE,
        subject=data["sub"],
        email=data.get("email"),
        verified=data.get("email_verified") in (True, "true"),
        name=data.get("name"),
        avatar_url=data.get("picture"),
    )


async def _github_profile(client: AsyncOAuth2Client, settings: Settings) -> Profile:
    api = settings.github_api_url.rstrip("/")
    headers = {"Accept": "application/vnd.github+json", "User-Agent": "SyncForge"}
    user = await _get_json(client, f"{api}/user", headers=headers)
    emails = await _get_json(client, f"{api}/user/emails", headers=headers)
    if not isinstance(user, dict) or user.get("id") in (None, "") or not isinstance(emails, list):
        raise _Unusable("no user id or email list")
    entries = [e for e in emails if isinstance(e, dict) and e.get("email")]
    # The primary address if verified, else any verified one; an unverified primary is refused later.
    chosen = (
        next((e for e in entries if e.get("primary") and e.get("verified") is True), None)
        or next((e for e in entries if e.get("verified") is True), None)
        or next((e for e in entries if e.get("primary")), None)
    )
    return _profile(
        Provider.GITHUB,
        subject=user["id"],
        email=chosen["email"] if chosen else None,
        verified=bool(chosen and chosen.get("verified") is True),
        name=user.get("name") or user.get("login"),
        avatar_url=user.get("avatar_url"),
    )


def _profile(
    provider: Provider, *, subject: object, email: object, verified: bool, name: object, avatar_url: object
) -> Profile:
    if not isinstance(email, str) or not email:
        raise Unauthorized(f"{provider.label} did not share an email address", reason="NO_EMAIL")
    try:
        email = normalize_email(email)
    except ValidationFailed:
        raise Unauthorized(f"{provider.label} shared an invalid email address", reason="NO_EMAIL") from None
    return Profile(
        provider=provider,
        subject=str(subject)[:255],
        email=email,
        email_verified=verified,
        name=(name.strip()[:100] or None) if isinstance(name, str) else None,
        avatar_url=_http_url(avatar_url),
    )


def _http_url(value: object) -> str | None:
    return value[:2048] if isinstance(value, str) and value.startswith(("https://", "http://")) else None


def _id_column(provider: Provider) -> Any:
    return User.google_id if provider is Provider.GOOGLE else User.github_id


async def find_linked_user(session: AsyncSession, provider: Provider, subject: str) -> User | None:
    query = select(User).where(_id_column(provider) == subject).order_by(User.inserted_at).limit(1)
    return (await session.execute(query)).scalars().first()


async def sign_in(
    session: AsyncSession,
    settings: Settings,
    keys: Keys,
    profile: Profile,
    client: ClientInfo,
    *,
    totp_code: str | None = None,
    recovery_code: str | None = None,
) -> Session:
    """Sign in the user linked to this provider account; else link the user with the same email,
    if the provider verified it; else create a user. MFA, when on, is required here too."""
    provider, method = profile.provider, f"oauth:{profile.provider.value}"
    attribute = f"{provider.value}_id"
    now = utcnow()
    user = await find_linked_user(session, provider, profile.subject)
    created = linked = False
    if user is None:
        if not profile.email_verified:
            raise Forbidden("the provider did not verify this email", reason="EMAIL_NOT_VERIFIED")
        user = await find_user_by_email(session, profile.email)
        if user is None:
            user = User(
                email=profile.email,
                name=profile.name,
                avatar_url=profile.avatar_url,
                status=UserStatus.ACTIVE,
                email_verified_at=now,
                **{attribute: profile.subject},
            )
            session.add(user)
            await session.flush()
            created = True
        else:
            if getattr(user, attribute) is not None:
                raise Forbidden(
                    f"this account is linked to another {provider.label} account", reason="LINKED_ELSEWHERE"
                )
            if user.status == UserStatus.SUSPENDED:
                raise Unauthorized("this account is suspended", reason="SUSPENDED")
            await _link(session, user, profile, attribute, now, client)
            linked = True
    if user.status == UserStatus.SUSPENDED:
        raise Unauthorized("this account is suspended", reason="SUSPENDED")
    factor = await mfa.verify_second_factor(session, keys, user, totp_code, recovery_code)
    audit.record(
        session,
        "auth.sign_in",
        actor_user_id=user.id,
        entity_type="user",
        entity_id=user.id,
        changes={"method": method, "second_factor": factor, "new_user": created, "linked": linked},
        ip_address=client.ip,
        user_agent=client.user_agent,
    )
    return await issue_session(session, settings, keys, user, client)


async def _link(
    session: AsyncSession, user: User, profile: Profile, attribute: str, now: datetime, client: ClientInfo
) -> None:
    """Link a provider account to the user with its (provider-verified) email.

    If that user had never verified the email, whoever created the account did not prove they own
    it (a pre-registered account): its password, MFA and sessions are dropped, so that the person who
    does own the address is not sharing the account with them."""
    reset = user.email_verified_at is None
    if reset:
        user.hashed_password = None
        await mfa.disable(session, user)
        await revoke_all(session, user.id)
        user.email_verified_at = now
    if user.status == UserStatus.PENDING_VERIFICATION:
        user.status = UserStatus.ACTIVE
    setattr(user, attribute, profile.subject)
    user.name = user.name or profile.name
    user.avatar_url = user.avatar_url or profile.avatar_url
    audit.record(
        session,
        "auth.oauth_linked",
        actor_user_id=user.id,
        entity_type="user",
        entity_id=user.id,
        changes={"provider": profile.provider.value, "unverified_account_reset": reset},
        ip_address=client.ip,
        user_agent=client.user_agent,
    )


def record_failure(session: AsyncSession, profile: Profile, error: DomainError, client: ClientInfo) -> None:
    """Audit a refused sign-in of an identified provider account (the caller's own transaction)."""
    audit.record(
        session,
        "auth.sign_in_failed",
        entity_type="user",
        changes={
            "method": f"oauth:{profile.provider.value}",
            "email": profile.email,
            "reason": error.extensions.get("reason"),
        },
        ip_address=client.ip,
        user_agent=client.user_agent,
    )
