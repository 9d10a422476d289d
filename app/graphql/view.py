"""The ASGI GraphQL endpoint: HTTP and graphql-transport-ws, plus the self-hosted GraphiQL page."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLRequestData
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from app import input_guard
from app.auth.authenticate import Credentials
from app.errors import BadRequest, DomainError, ErrorCode
from app.graphql.context import Context, client_ip, request_id_for
from app.graphql.ws.handler import TransportHandler, close_reason
from app.graphql.ws.plans import PlanCache
from app.graphql.ws.stream import error_payload

log = logging.getLogger("syncforge.graphql")

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

# Hot mutations are small documents with small variables; anything larger goes to Strawberry.
MAX_FAST_BODY_BYTES = 64 << 10

# WebSocket close codes of graphql-transport-ws for a rejected connection_init.
CLOSE_FORBIDDEN = 4403
CLOSE_RATE_LIMITED = 4429


class ReasonedWebSocketAdapter(ASGIWebSocketAdapter):
    """Closes a rejected connection with the reason our authentication gave, not just
    'Forbidden', and every close with a reason the protocol can carry (a client's text quoted
    back may hold a lone surrogate). (Messages are read by the handler itself, see
    app/graphql/ws/handler.py.)"""

    async def close(self, code: int, reason: str) -> None:
        rejection = getattr(self.ws.state, "rejection", None)
        if code == CLOSE_FORBIDDEN and rejection is not None:
            code, reason = rejection
        await super().close(code, close_reason(reason))


class GraphQLView(GraphQL[Context, None]):
    websocket_adapter_class = ReasonedWebSocketAdapter  # type: ignore[assignment]
    graphql_transport_ws_handler_class = TransportHandler  # type: ignore[assignment]

    def __init__(self, schema: Any, plans: PlanCache) -> None:
        self.plans = plans
        self._http_fields = tuple(name for name, m in plans.fast.mutations.items() if m.http)
        super().__init__(
            schema,
            graphql_ide="graphiql",
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            # Browsers on developers' own sites connect here. Credentials travel in connection_init,
            # never in cookies, so cross-site WebSocket hijacking has nothing to ride on; the
            # allowed origins of each publishable key are enforced in on_ws_connect instead.
            allowed_origins=("*",),
            # Everything goes by POST (or WebSocket): a GET never runs an operation, so links and
            # cross-site image tags cannot trigger one.
            allow_queries_via_get=False,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive=receive)
        try:
            response = await self._fast(request) if scope["method"] == "POST" else None
            if response is None:
                response = await self.run(request)
        except (DomainError, HTTPException) as error:
            response = refusal(error, request_id_for(request))
        await response(scope, receive, send)

    async def _fast(self, request: Request) -> Response | None:
        """A hot mutation declared for HTTP (FastMutation.http) is run without executing GraphQL:
        its document validated and planned once, its arguments coerced, its result rendered by a
        compiled selection. None: anything else (or anything unusual), which Strawberry serves."""
        if not self._http_fields or not request.headers.get("content-type", "").startswith(
            "application/json"
        ):
            return None
        body = await request.body()  # kept by the request: Strawberry reads it again if need be
        if len(body) > MAX_FAST_BODY_BYTES:
            return None
        try:
            data = input_guard.decode(body)
        except DomainError:
            return None
        query = data.get("query") if isinstance(data, dict) else None
        if not isinstance(query, str) or not any(name in query for name in self._http_fields):
            return None  # other documents are neither planned nor kept in the plan cache
        operation_name = data.get("operationName")
        if not isinstance(operation_name, str | None):
            return None
        plan = self.plans.get(query, operation_name)
        if plan is None or plan.mutation is None or not plan.mutation.http:
            return None
        input_guard.check_request(data.get("variables"), operation_name, data.get("extensions"))
        prepared = plan.arguments(data.get("variables"))
        if prepared is None:
            return None  # a wrong variable: Strawberry answers with its usual error
        variables, arguments = prepared
        answer = Response()  # authentication may set a status and headers (429, Retry-After)
        context = await self.get_context(request, answer)
        if context.auth_error is not None:
            text = error_payload(context.auth_error, [], [], context.request_id)
        else:
            try:
                result = await plan.mutation.run(context, arguments)
                text = plan.result_renderer(variables)(result)
            except Exception as error:
                text = error_payload(error, plan.nodes, [plan.response_key], context.request_id)
        headers = {k: v for k, v in answer.headers.items() if k not in ("content-length", "content-type")}
        return Response(text, status_code=answer.status_code, headers=headers, media_type="application/json")

    def decode_json(self, data: str | bytes) -> object:
        return input_guard.decode(data)

    def parse_json(self, data: str | bytes) -> Any:
        value = self.decode_json(data)
        if not isinstance(value, dict | list):
            raise BadRequest("the body must be a JSON object with `query` (and `variables`)")
        return value

    async def parse_http_body(self, request: Any) -> GraphQLRequestData | list[GraphQLRequestData]:
        parsed = await super().parse_http_body(request)
        for data in parsed if isinstance(parsed, list) else [parsed]:
            input_guard.check_request(data.variables, data.operation_name, data.extensions)
        return parsed

    async def get_context(self, request: Request | WebSocket, response: Any = None) -> Context:
        context = Context(
            state=request.app.state.syncforge,
            request=request,
            request_id=request_id_for(request),
        )
        if isinstance(request, Request):
            await self._authenticate_http(context, request, response)
        return context

    async def _authenticate_http(self, context: Context, request: Request, response: Any) -> None:
        authorization = request.headers.get("authorization", "")
        scheme, _, value = authorization.partition(" ")
        credentials = Credentials(
            ip=client_ip(request),
            bearer=value.strip() if scheme.lower() == "bearer" and value.strip() else None,
            api_key=request.headers.get("x-api-key") or None,
            origin=request.headers.get("origin"),
        )
        try:
            context.principal = await context.state.authenticator.authenticate(credentials)
        except DomainError as error:
            context.auth_error = error
            if response is not None and error.code == ErrorCode.RATE_LIMITED:
                response.status_code = 429
                response.headers["Retry-After"] = str(error.extensions["retryAfter"])
        except Exception:
            # Answer in GraphQL's shape, with the request id, like any unexpected error.
            log.exception("authentication failed unexpectedly (request %s)", context.request_id)
            context.auth_error = DomainError("Internal server error")

    async def on_ws_connect(self, context: Context) -> None:
        params = context.connection_params or {}
        websocket = context.request
        token = params.get("token") or params.get("accessToken")
        api_key = params.get("apiKey")
        if not all(v is None or isinstance(v, str) for v in (token, api_key)):
            websocket.state.rejection = (CLOSE_FORBIDDEN, "apiKey and token must be strings")
            raise ConnectionRejectionError
        credentials = Credentials(
            ip=client_ip(websocket), bearer=token, api_key=api_key, origin=websocket.headers.get("origin")
        )
        try:
            context.principal = await context.state.authenticator.authenticate(credentials)
            websocket.state.last_activity = time.time()
            if context.outbox is not None:
                context.keepalive = context.state.pinger.add(context.outbox, websocket.state, websocket.close)
                context.credential = context.state.credentials.watch(
                    context, websocket.close, credentials.origin
                )
        except DomainError as error:
            code = CLOSE_RATE_LIMITED if error.code == ErrorCode.RATE_LIMITED else CLOSE_FORBIDDEN
            # (cut to the protocol's 123 bytes when the socket is closed)
            websocket.state.rejection = (code, error.message)
            raise ConnectionRejectionError from None

    async def render_graphql_ide(self, request: Request) -> Response:
        if not GRAPHIQL_MARKER.exists():
            return HTMLResponse(MISSING_ASSETS_PAGE, status_code=503)
        html = GRAPHIQL_TEMPLATE.read_text().replace("{{ASSETS}}", GRAPHIQL_ASSETS_URL)
        return HTMLResponse(html)


def refusal(error: DomainError | HTTPException, request_id: str) -> JSONResponse:
    """A request refused before any operation ran (malformed body, bad variables, wrong method),
    in GraphQL's error shape like every other answer."""
    if isinstance(error, HTTPException):
        status, message, extensions = error.status_code, error.reason, {"code": ErrorCode.BAD_REQUEST.value}
    else:
        status, message = 400, error.message
        extensions = {**error.extensions, "code": error.code.value}
    extensions["requestId"] = request_id
    return JSONResponse({"data": None, "errors": [{"message": message, "extensions": extensions}]}, status)
