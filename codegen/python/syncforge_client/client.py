"""SyncForge: the generated async client, authenticated with a secret key, raising SyncForgeError."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import httpx

from ._version import __version__
from .errors import SyncForgeError
from .generated.async_base_client import HttpClient, Response
from .generated.client import GeneratedClient
from .generated.exceptions import GraphQLClientInvalidResponseError
from .generated.input_types import CreateEndUserTokenInput, EndUserInfoInput, RoomGrantInput
from .generated.mint_end_user_token import MintEndUserTokenCreateEndUserToken

__all__ = ["DEFAULT_ACCESS", "DEFAULT_URL", "EndUserToken", "SyncForge"]

DEFAULT_URL = "http://127.0.0.1:8000"
# What `rooms=[...]` grants in each room when `access` is not given.
DEFAULT_ACCESS: tuple[str, ...] = ("read", "write", "presence", "comment")

EndUserToken = MintEndUserTokenCreateEndUserToken
"""A minted end-user token: `token`, `expires_at` (datetime) and `end_user_id`."""


def graphql_endpoint(url: str) -> str:
    """The GraphQL endpoint of a SyncForge server: `url` itself if it ends in /graphql, else url/graphql."""
    base = url.rstrip("/")
    return base if base.endswith("/graphql") else f"{base}/graphql"


class SyncForge(GeneratedClient):
    """An async client of one SyncForge server for your backend, authenticated with a secret API key.

    Use it as an async context manager (it closes its HTTP connections on exit)::

        async with SyncForge("http://127.0.0.1:8000", secret_key="sk_live_...") as syncforge:
            room = await syncforge.create_room(org_id, CreateRoomInput(name="Design", slug="team-42:design"))
            minted = await syncforge.create_end_user_token("user-7", name="Ada", rooms=["team-42:*"])

    Every generated operation of queries.graphql is a method (`viewer`, `health`, `room`, `rooms`,
    `create_room`, `update_room`, `archive_room`, `unarchive_room`, `delete_room`, `create_document`,
    `document`, `documents`, `document_sync`, `apply_document_update`, `mint_end_user_token`,
    `broadcast_event`); each answers typed pydantic models and raises SyncForgeError.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        secret_key: str,
        timeout: float = 10.0,
        headers: Mapping[str, str] | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        """A client of the server at `url` (its base URL, or its /graphql endpoint).

        `secret_key` is an organization's secret API key (sk_live_...): keep it on your servers.
        `headers` are sent with every request besides the key; `http_client` is an httpx.AsyncClient
        of your own (then `timeout` is its business, and it is not closed on exit).
        """
        if not isinstance(secret_key, str) or not secret_key.strip():
            raise ValueError("secret_key: an API key such as sk_live_... is required")
        self._request_headers: dict[str, str] = {
            "User-Agent": f"syncforge-client-python/{__version__}",
            **(headers or {}),
            "Authorization": f"Bearer {secret_key.strip()}",
        }
        self._owns_http_client = http_client is None
        super().__init__(
            url=graphql_endpoint(url),
            headers=self._request_headers,
            http_client=cast(HttpClient, http_client or httpx.AsyncClient(timeout=timeout)),
        )
        self._organization_id: str | None = None

    async def __aexit__(
        self,
        exc_type: object,
        exc_val: object,
        exc_tb: object,
    ) -> None:
        """Close the HTTP connections (unless the http_client was yours)."""
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connections (unless the http_client was yours); the client is unusable after."""
        if self._owns_http_client:
            await self.http_client.aclose()

    async def execute(
        self,
        query: str,
        operation_name: str | None = None,
        variables: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Response:
        """Send one operation with the secret key; a network failure raises SyncForgeError NETWORK_ERROR."""
        kwargs["headers"] = {**self._request_headers, **(kwargs.get("headers") or {})}
        try:
            return await super().execute(query, operation_name, variables, **kwargs)
        except httpx.TransportError as exc:
            raise SyncForgeError("NETWORK_ERROR", f"{type(exc).__name__}: {exc} ({self.url})") from exc

    def get_data(self, response: Response) -> dict[str, Any]:
        """The `data` of an answer, or SyncForgeError for its first error (or an HTTP failure)."""
        status = response.status_code
        retry_after = getattr(response, "headers", {}).get("retry-after")
        try:
            body = response.json()
        except ValueError:
            body = None
        errors = body.get("errors") if isinstance(body, dict) else None
        if isinstance(errors, list) and errors:
            raise SyncForgeError.from_errors(errors, status_code=status, retry_after_header=retry_after)
        if not 200 <= status <= 299:
            text = getattr(response, "text", "")
            detail = text[:200] if isinstance(text, str) and text else "no GraphQL answer"
            raise SyncForgeError(
                "RATE_LIMITED" if status == 429 else "HTTP_ERROR",
                f"HTTP {status}: {detail}",
                status_code=status,
                retry_after=retry_after,
            )
        try:
            return super().get_data(response)
        except GraphQLClientInvalidResponseError as exc:
            raise SyncForgeError(
                "INVALID_RESPONSE", "the server's answer is not a GraphQL response", status_code=status
            ) from exc

    async def organization_id(self) -> str:
        """The id of the organization the secret key belongs to (asked once, then remembered)."""
        if self._organization_id is None:
            viewer = await self.viewer()
            if viewer.organization_id is None:
                raise SyncForgeError(
                    "UNAUTHORIZED", f"these credentials belong to no organization (viewer kind {viewer.kind})"
                )
            self._organization_id = viewer.organization_id
        return self._organization_id

    async def create_end_user_token(
        self,
        user_id: str,
        *,
        name: str | None = None,
        color: str | None = None,
        avatar: str | None = None,
        extra: Mapping[str, Any] | None = None,
        rooms: Sequence[str] | None = None,
        access: Sequence[str] = DEFAULT_ACCESS,
        permissions: Sequence[RoomGrantInput | Mapping[str, Any]] | None = None,
        ttl_seconds: int = 3600,
    ) -> EndUserToken:
        """Mint a token for one of your users, for their browser (with your publishable key).

        `user_id` is your application's id for the user; `name`, `color` (#RRGGBB), `avatar` (a URL) and
        `extra` are what other users see of them (presence, cursors). Grant rooms with `rooms` (room ids,
        slugs or slug prefixes ending in `*`, e.g. "team-42:*", each with `access`: any of read, write,
        presence, comment) and/or `permissions` (`{"room": ..., "access": [...]}` each). The token lives
        `ttl_seconds` (60 to 86400). Answers the token, its `expires_at` and the server's `end_user_id`.
        """
        if rooms is None and permissions is None:
            raise ValueError("create_end_user_token: give rooms=[...] and/or permissions=[...]")
        if isinstance(rooms, str):
            raise TypeError("create_end_user_token: rooms is a list of rooms, e.g. rooms=['team-42:*']")
        grants = [RoomGrantInput(room=room, access=list(access)) for room in rooms or ()]
        grants += [
            grant if isinstance(grant, RoomGrantInput) else RoomGrantInput.model_validate(grant)
            for grant in permissions or ()
        ]
        info: dict[str, Any] = {
            key: value
            for key, value in (("name", name), ("color", color), ("avatar", avatar), ("extra", extra))
            if value is not None
        }
        # Fields by their GraphQL names (aliases): what type checkers know of pydantic models.
        token_input = CreateEndUserTokenInput(
            userId=user_id,
            userInfo=EndUserInfoInput(**info) if info else None,
            permissions=grants,
            ttlSeconds=ttl_seconds,
        )
        return await self.mint_end_user_token(token_input)
