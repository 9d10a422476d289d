"""The demo's HTTP endpoints, added to the app only when the demo is on (settings.serves_demo):

- GET /demo: the page, which loads the React app from /demo-assets/ (built by npm into static/);
  503 naming the build command while that build is missing.
- GET /demo/config: what the page connects with (the publishable key, the room and document).
- POST /demo/token: an end-user token for a visitor, limited to the demo's rooms.

Answers of /demo/config and /demo/token are JSON; errors are `{"error": {"code", "message", ...}}`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from app.demo import seed as demo_seed
from app.demo import visitor_tokens
from app.demo.runtime import DemoRuntime
from app.errors import DomainError, ErrorCode, RateLimited, Unavailable
from app.graphql.context import client_ip, request_id_for
from app.rooms.models import Room
from app.state import AppState

log = logging.getLogger("syncforge.demo")

DEMO_DIR = Path(__file__).parent
DEMO_TEMPLATE = DEMO_DIR / "templates" / "demo.html"
DEMO_ASSETS = DEMO_DIR / "static"
DEMO_ASSETS_URL = "/demo-assets"
# Present once `npm ci && npm run build` has built the demo app (demo/ in the repository).
DEMO_MARKER = DEMO_ASSETS / "demo.js"
GRAPHQL_PATH = "/graphql"

MISSING_BUILD_PAGE = """<!doctype html><title>SyncForge demo</title>
<h1>The demo is not built</h1>
<p>Run <code>npm ci &amp;&amp; npm run build</code> in the repository (it builds the demo app into
<code>app/demo/static/</code>), then reload. The API itself works: GraphiQL is at
<a href="/graphql">/graphql</a>.</p>"""

_STATUS = {
    ErrorCode.VALIDATION_ERROR: 400,
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.UNAVAILABLE: 503,
}
_NO_STORE = {"cache-control": "no-store"}


class BuildOutput(StaticFiles):
    """StaticFiles over a build directory that may not exist yet: 404s until it does (Starlette
    answers 500 for a missing directory, even with check_dir=False)."""

    async def check_config(self) -> None:
        if self.directory is not None and not await to_thread.run_sync(os.path.isdir, self.directory):
            return
        await super().check_config()


def demo_routes() -> list[BaseRoute]:
    return [
        Route("/demo", page, methods=["GET", "HEAD"]),
        Route("/demo/config", config, methods=["GET", "HEAD"]),
        Route("/demo/token", token, methods=["POST"]),
        Mount(DEMO_ASSETS_URL, BuildOutput(directory=DEMO_ASSETS, check_dir=False)),
    ]


async def page(request: Request) -> Response:
    if not DEMO_MARKER.exists():
        return HTMLResponse(MISSING_BUILD_PAGE, status_code=503)
    return HTMLResponse(DEMO_TEMPLATE.read_text(), headers={"cache-control": "no-cache"})


async def config(request: Request) -> Response:
    try:
        seed = await _runtime(request).seeded()
    except DomainError as error:
        return _error(error, request)
    return JSONResponse(
        {
            "publicApiKey": seed.public_api_key,
            "roomId": str(seed.room_id),
            "roomSlug": demo_seed.ROOM_SLUG,
            "documentId": str(seed.document_id),
            "documentSlug": demo_seed.DOCUMENT_SLUG,
            "graphqlPath": GRAPHQL_PATH,
        },
        headers=_NO_STORE,
    )


async def token(request: Request) -> Response:
    demo = _runtime(request)
    state: AppState = request.app.state.syncforge
    try:
        ip = client_ip(request)
        await state.rate_limits.hit_ip(ip)  # like every request, then the demo's own limit
        await demo.hit_token_limit(ip)
        visitor = visitor_tokens.parse_visitor(await request.body())
        seed = await demo.seeded()
        async with state.unit_of_work() as uow:
            room = await uow.session.get(Room, seed.room_id)
            if room is None:  # deleted by hand since the seed: seed again next time
                demo.forget()
                raise Unavailable("the demo room is gone; it is made again shortly", retry_after=1.0)
            if await demo_seed.reopen(uow.session, room):  # the idle-room job archived it
                room_id = room.id
                uow.on_commit(lambda: state.rooms.changed(room_id))
            minted = await visitor_tokens.mint(
                uow.session, state.keys, seed, visitor, max_ttl_s=state.settings.end_user_token_max_ttl_s
            )
    except DomainError as error:
        return _error(error, request)
    return JSONResponse(
        {
            "token": minted.token,
            "expiresAt": minted.expires_at.isoformat(),
            "userId": minted.external_id,
        },
        headers=_NO_STORE,
    )


def _runtime(request: Request) -> DemoRuntime:
    runtime: DemoRuntime = request.app.state.demo
    return runtime


def _error(error: DomainError, request: Request) -> JSONResponse:
    status = _STATUS.get(error.code)
    headers = dict(_NO_STORE)
    if status is None:  # nothing else is expected here: say so like the GraphQL endpoint does
        request_id = request_id_for(request)
        log.error("demo: %s failed (request %s): %s", request.url.path, request_id, error.message)
        internal = ErrorCode.INTERNAL_ERROR.value
        body = {"code": internal, "message": "Internal server error", "requestId": request_id}
        return JSONResponse({"error": body}, status_code=500, headers=headers)
    if isinstance(error, RateLimited | Unavailable):
        headers["retry-after"] = str(max(1, round(float(error.extensions["retryAfter"]))))
    body = {"code": error.code.value, "message": error.message, "field": error.extensions.get("field")}
    body.update({k: v for k, v in error.extensions.items() if k != "field"})
    return JSONResponse({"error": body}, status_code=status, headers=headers)
