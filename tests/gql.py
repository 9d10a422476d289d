"""A GraphQL-over-HTTP client for tests, and the steps most tests start with."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

PASSWORD = "correct horse battery staple"


@dataclass
class GQL:
    http: httpx.AsyncClient
    headers: dict[str, str] = field(default_factory=dict)

    async def raw(self, query: str, **variables: Any) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables}, headers=self.headers
        )
        assert response.status_code in (200, 400, 429), response.text
        return response.json()  # type: ignore[no-any-return]

    async def data(self, query: str, **variables: Any) -> dict[str, Any]:
        """The data of a query that must succeed."""
        body = await self.raw(query, **variables)
        assert not body.get("errors"), body["errors"]
        return body["data"]  # type: ignore[no-any-return]

    async def error(self, query: str, **variables: Any) -> dict[str, Any]:
        """The first error of a query that must fail."""
        body = await self.raw(query, **variables)
        assert body.get("errors"), body
        return body["errors"][0]  # type: ignore[no-any-return]

    def bearer(self, token: str, **extra: str) -> GQL:
        return GQL(self.http, {"authorization": f"Bearer {token}", **extra})

    def with_headers(self, **headers: str) -> GQL:
        return GQL(self.http, headers)


SIGN_UP = """mutation($input: SignUpInput!) { signUp(input: $input) {
  accessToken refreshToken user { id email } } }"""
CREATE_ORG = (
    """mutation($input: CreateOrganizationInput!) { createOrganization(input: $input) { id slug } }"""
)
CREATE_KEY = """mutation($org: UUID!, $input: CreateApiKeyInput!) {
  createApiKey(organizationId: $org, input: $input) { secret apiKey { id prefix scopes } } }"""
CREATE_END_USER_TOKEN = """mutation($input: CreateEndUserTokenInput!) {
  createEndUserToken(input: $input) { token expiresAt endUserId } }"""


@dataclass
class Developer:
    gql: GQL  # authenticated as this developer
    user_id: str
    email: str
    access_token: str
    refresh_token: str


async def sign_up(anon: GQL, email: str | None = None, name: str = "Dev") -> Developer:
    email = email or f"dev-{uuid.uuid4().hex[:10]}@example.com"
    payload = (await anon.data(SIGN_UP, input={"email": email, "password": PASSWORD, "name": name}))["signUp"]
    return Developer(
        gql=anon.bearer(payload["accessToken"]),
        user_id=payload["user"]["id"],
        email=email,
        access_token=payload["accessToken"],
        refresh_token=payload["refreshToken"],
    )


async def create_org(dev: Developer, slug: str | None = None) -> str:
    slug = slug or f"org-{uuid.uuid4().hex[:10]}"
    return (await dev.gql.data(CREATE_ORG, input={"name": slug.title(), "slug": slug}))["createOrganization"][
        "id"
    ]  # type: ignore[no-any-return]


async def create_key(dev: Developer, org_id: str, kind: str = "SECRET", **options: Any) -> tuple[str, str]:
    """(full key, key id)"""
    created = (
        await dev.gql.data(CREATE_KEY, org=org_id, input={"name": f"{kind} key", "kind": kind, **options})
    )["createApiKey"]
    return created["secret"], created["apiKey"]["id"]


async def end_user_token(
    secret_key_gql: GQL, user_id: str, permissions: list[dict[str, Any]], **extra: Any
) -> str:
    minted = await secret_key_gql.data(
        CREATE_END_USER_TOKEN, input={"userId": user_id, "permissions": permissions, **extra}
    )
    return minted["createEndUserToken"]["token"]  # type: ignore[no-any-return]
