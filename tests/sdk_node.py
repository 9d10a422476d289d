"""What the TypeScript SDK's Node tests need from the suite: a live server with an organization,
its keys, and a token service (tokens minted with the secret key, and short-lived ones for the
4403 test, re-signed here since the API's minimum lifetime is a minute)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.security import jwt
from app.security.keys import Keys
from tests.conftest import TEST_SECRET_KEY, LiveServer
from tests.gql import GQL, create_key, create_org, end_user_token, sign_up

ROOT = Path(__file__).resolve().parents[1]
CLIENT = ROOT / "codegen" / "typescript" / "client"
CLIENT_DIST = CLIENT / "dist" / "index.js"
NODE = shutil.which("node") or "node"
ALL_ROOMS = [{"room": "*", "access": ["read", "write", "presence", "comment"]}]


def require_built_sdk() -> None:
    if not CLIENT_DIST.exists():
        pytest.fail(f"{CLIENT_DIST} is missing: run `npm ci && npm run build` in the repository root")


@dataclass
class SdkServer:
    server: Any  # LiveServer or a Process: `url`, `ws_url`
    org_id: str
    secret: str
    publishable: str
    tokens_url: str

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "SYNCFORGE_URL": self.server.url,
            "SYNCFORGE_WS_URL": self.server.ws_url,
            "SYNCFORGE_ORG": self.org_id,
            "SYNCFORGE_SECRET": self.secret,
            "SYNCFORGE_PUBLIC": self.publishable,
            "SYNCFORGE_TOKENS": self.tokens_url,
        }


def token_service(backend: GQL) -> Starlette:
    """POST /token {"userId", "name", "color", "ttlSeconds"} -> {"token"}: minted by the API with
    the secret key; below a minute, the same token re-signed with a shorter expiry."""
    keys = Keys.from_secret(TEST_SECRET_KEY)

    async def mint(request: Request) -> JSONResponse:
        body = await request.json()
        user_id = body["userId"]
        info = {"name": body.get("name", user_id), "color": body.get("color")}
        token = await end_user_token(backend, user_id, ALL_ROOMS, userInfo=info)
        ttl = body.get("ttlSeconds")
        if ttl is not None and ttl < 60:
            claims = pyjwt.decode(token, options={"verify_signature": False})
            for registered in ("iss", "aud", "sub", "iat", "exp"):
                claims.pop(registered)
            token = jwt.encode(
                keys.jwt,
                subject=user_id,
                audience=jwt.END_USER_AUDIENCE,
                ttl=timedelta(seconds=ttl),
                **claims,
            )
        return JSONResponse({"token": token})

    return Starlette(routes=[Route("/token", mint, methods=["POST"])])


@asynccontextmanager
async def sdk_server(server: Any) -> AsyncIterator[SdkServer]:
    """An organization with keys on `server`, and the token service."""
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        anon = GQL(http)
        dev = await sign_up(anon)
        org_id = await create_org(dev)
        secret, _ = await create_key(dev, org_id, "SECRET")
        publishable, _ = await create_key(dev, org_id, "PUBLISHABLE")
        tokens = LiveServer(token_service(anon.bearer(secret)))
        await tokens.start()
        try:
            yield SdkServer(server, org_id, secret, publishable, f"{tokens.url}/token")
        finally:
            await tokens.stop()


async def run_node(*args: str, env: dict[str, str], timeout: float) -> tuple[int, str, str]:
    """Run node (in this event loop's background, so an in-process server keeps serving)."""
    process = await asyncio.create_subprocess_exec(
        NODE, *args, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        out, err = await process.communicate()
        return -1, out.decode(), err.decode() + f"\n(node timed out after {timeout} s)"
    return process.returncode or 0, out.decode(), err.decode()


def last_json(output: str) -> dict[str, Any]:
    for line in reversed(output.splitlines()):
        if line.startswith("{"):
            return json.loads(line)  # type: ignore[no-any-return]
    raise AssertionError(f"no JSON line in the output:\n{output[-3000:]}")
