"""The ASGI GraphQL endpoint: HTTP and graphql-transport-ws, plus the self-hosted GraphiQL page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from app.graphql.context import Context, request_id_for

GRAPHQL_DIR = Path(__file__).parent
GRAPHIQL_TEMPLATE = GRAPHQL_DIR / "templates" / "graphiql.html"
GRAPHIQL_ASSETS = GRAPHQL_DIR / "static" / "graphiql"
GRAPHIQL_ASSETS_URL = "/graphiql-assets"
# Present once `npm ci && npm run build` has copied the assets out of node_modules.
GRAPHIQL_MARKER = GRAPHIQL_ASSETS / "graphiql.min.js"

MISSING_ASSETS_PAGE = """<!doctype html><title>SyncForge GraphiQL</title>
<h1>GraphiQL assets are not built</h1>
<p>Run <code>npm ci &amp;&amp; npm run build</code> in the repository (the README's run command does it),
then reload. The GraphQL endpoint itself works: POST queries to this URL.</p>"""


class GraphQLView(GraphQL[Context, None]):
    def __init__(self, schema: Any) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql",
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        )

    async def get_context(self, request: Request | WebSocket, response: Any = None) -> Context:
        return Context(
            state=request.app.state.syncforge,
            request=request,
            request_id=request_id_for(request),
        )

    async def render_graphql_ide(self, request: Request) -> Response:
        if not GRAPHIQL_MARKER.exists():
            return HTMLResponse(MISSING_ASSETS_PAGE, status_code=503)
        html = GRAPHIQL_TEMPLATE.read_text().replace("{{ASSETS}}", GRAPHIQL_ASSETS_URL)
        return HTMLResponse(html)
