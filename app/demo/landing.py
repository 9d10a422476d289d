"""The root URL: a browser gets a page leading to GraphiQL and (when it is on) the demo; any other
client is redirected to /graphql, as it always was."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

LANDING_TEMPLATE = Path(__file__).parent / "templates" / "landing.html"
DEMO_LINK = (
    '<li><a href="/demo">The live demo</a>: avatars, live cursors and a shared text; '
    "open it in two windows.</li>"
)


def landing_page(*, demo: bool) -> str:
    return LANDING_TEMPLATE.read_text().replace("{{DEMO_LINK}}", DEMO_LINK if demo else "")


def index(*, demo: bool) -> Callable[[Request], Awaitable[Response]]:
    """The `/` endpoint; `demo`: whether this app serves the demo."""
    html = landing_page(demo=demo)

    async def endpoint(request: Request) -> Response:
        if "text/html" in request.headers.get("accept", ""):
            return HTMLResponse(html)
        return RedirectResponse("/graphql")

    return endpoint
