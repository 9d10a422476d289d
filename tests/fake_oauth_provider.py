"""A small OAuth 2.0 provider speaking like Google and like GitHub, for tests on 127.0.0.1.

It checks what a real provider checks (client credentials, redirect URI, single-use codes, bearer
tokens) and PKCE: /authorize stores the S256 challenge and /token refuses a verifier whose S256 hash
does not match it. The profiles it serves are plain attributes that tests change.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

CLIENT_ID = "fake-client-id"
CLIENT_SECRET = "fake-client-secret"
PROVIDERS = ("google", "github")


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass
class Grant:
    provider: str
    redirect_uri: str
    code_challenge: str
    scope: str


@dataclass
class FakeOAuthProvider:
    url: str = ""  # set once the server listens
    google_profile: dict[str, Any] = field(
        default_factory=lambda: {
            "sub": "google-1001",
            "email": "ada@example.com",
            "email_verified": True,
            "name": "Ada Lovelace",
            "picture": "https://images.example/ada.png",
        }
    )
    github_user: dict[str, Any] = field(
        default_factory=lambda: {
            "id": 5001,
            "login": "ada",
            "name": "Ada L.",
            "avatar_url": "https://avatars.example/ada.png",
            "email": None,
        }
    )
    github_emails: list[dict[str, Any]] = field(
        default_factory=lambda: [{"email": "ada@example.com", "primary": True, "verified": True}]
    )
    # GitHub answers the token request form-encoded unless asked for JSON; "form" forces it.
    github_token_format: str = "auto"
    grants: dict[str, Grant] = field(default_factory=dict)  # code -> grant
    tokens: dict[str, str] = field(default_factory=dict)  # access token -> provider
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    # Each token request: the provider, and "ok" or the error it was refused with.
    token_requests: list[tuple[str, str]] = field(default_factory=list)
    pkce_verified: int = 0  # token requests whose verifier matched the stored challenge

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/{provider}/authorize", self.authorize),
                Route("/{provider}/token", self.token, methods=["POST"]),
                Route("/google/userinfo", self.google_userinfo),
                Route("/github/api/user", self.github_api_user),
                Route("/github/api/user/emails", self.github_api_emails),
            ]
        )

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """Settings pointing SyncForge at this provider, for both flavours."""
        values: dict[str, Any] = {
            "google_client_id": CLIENT_ID,
            "google_client_secret": CLIENT_SECRET,
            "google_authorize_url": f"{self.url}/google/authorize",
            "google_token_url": f"{self.url}/google/token",
            "google_userinfo_url": f"{self.url}/google/userinfo",
            "github_client_id": CLIENT_ID,
            "github_client_secret": CLIENT_SECRET,
            "github_authorize_url": f"{self.url}/github/authorize",
            "github_token_url": f"{self.url}/github/token",
            "github_api_url": f"{self.url}/github/api",
        }
        values.update(overrides)
        return values

    # --- authorization endpoint (the browser's side) ---------------------------------------

    async def authorize(self, request: Request) -> Response:
        provider = request.path_params["provider"]
        params = dict(request.query_params)
        self.authorize_requests.append(params)
        if provider not in PROVIDERS:
            return PlainTextResponse("unknown provider", status_code=404)
        if params.get("client_id") != CLIENT_ID:
            return PlainTextResponse("unknown client_id", status_code=400)
        redirect_uri = params.get("redirect_uri", "")
        if not redirect_uri.startswith(("http://", "https://")):
            return PlainTextResponse("bad redirect_uri", status_code=400)
        if params.get("response_type") != "code":
            return PlainTextResponse("response_type must be code", status_code=400)
        if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            return PlainTextResponse("PKCE with S256 is required", status_code=400)
        if not params.get("state"):
            return PlainTextResponse("state is required", status_code=400)
        code = secrets.token_urlsafe(16)
        self.grants[code] = Grant(provider, redirect_uri, params["code_challenge"], params.get("scope", ""))
        separator = "&" if "?" in redirect_uri else "?"
        location = f"{redirect_uri}{separator}{urlencode({'code': code, 'state': params['state']})}"
        return RedirectResponse(location, status_code=302)

    # --- token endpoint (the server's side) ------------------------------------------------

    async def token(self, request: Request) -> Response:
        provider = request.path_params["provider"]
        form = dict(await request.form())
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = request.headers.get("authorization", "")
        if basic.lower().startswith("basic "):
            client_id, _, client_secret = base64.b64decode(basic[6:]).decode().partition(":")
        error = self._check_token_request(provider, form, client_id, client_secret)
        self.token_requests.append((provider, error or "ok"))
        if error is not None:
            return self._token_answer(request, provider, {"error": error}, status=400)
        access_token = secrets.token_urlsafe(24)
        self.tokens[access_token] = provider
        body = {"access_token": access_token, "token_type": "bearer" if provider == "github" else "Bearer"}
        if provider == "google":
            body.update(expires_in=3599, scope="openid email profile", id_token="not.checked.here")
        else:
            body["scope"] = "read:user,user:email"
        return self._token_answer(request, provider, body)

    def _check_token_request(
        self, provider: str, form: dict[str, Any], client_id: str | None, client_secret: str | None
    ) -> str | None:
        if (client_id, client_secret) != (CLIENT_ID, CLIENT_SECRET):
            return "invalid_client"
        if form.get("grant_type") != "authorization_code":
            return "unsupported_grant_type"
        grant = self.grants.pop(str(form.get("code", "")), None)  # codes are single use
        if grant is None or grant.provider != provider:
            return "invalid_grant"
        if form.get("redirect_uri") != grant.redirect_uri:
            return "redirect_uri_mismatch"
        verifier = str(form.get("code_verifier", ""))
        if not verifier or s256(verifier) != grant.code_challenge:
            return "invalid_pkce_verifier"
        self.pkce_verified += 1
        return None

    def _token_answer(
        self, request: Request, provider: str, body: dict[str, Any], status: int = 200
    ) -> Response:
        if provider == "google":
            return JSONResponse(body, status_code=status)
        # GitHub: errors come with 200; form-encoded unless the client accepts JSON.
        wants_json = "application/json" in request.headers.get("accept", "")
        if wants_json and self.github_token_format != "form":
            return JSONResponse(body)
        return Response(urlencode(body), media_type="application/x-www-form-urlencoded")

    # --- resource endpoints ----------------------------------------------------------------

    def _bearer(self, request: Request, provider: str) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and self.tokens.get(token) == provider

    async def google_userinfo(self, request: Request) -> Response:
        if not self._bearer(request, "google"):
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        return JSONResponse(self.google_profile)

    async def github_api_user(self, request: Request) -> Response:
        if not self._bearer(request, "github"):
            return JSONResponse({"message": "Bad credentials"}, status_code=401)
        return JSONResponse(self.github_user)

    async def github_api_emails(self, request: Request) -> Response:
        if not self._bearer(request, "github"):
            return JSONResponse({"message": "Bad credentials"}, status_code=401)
        return JSONResponse(self.github_emails)
