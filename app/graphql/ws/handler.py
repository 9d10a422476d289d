"""graphql-transport-ws, with the hot operations served without executing GraphQL per message.

Strawberry's handler runs the protocol (connection_init, ping/pong, subscribe, complete, the close
codes) and every ordinary operation. A `subscribe` whose document the plan cache recognises as a
hot mutation runs its function inline and answers `next` + `complete`; a hot subscription
becomes a FastStream registered with its room's feed, which renders each event once for all
streams of the same document. Every frame of the connection, Strawberry's included, leaves
through one bounded Outbox, in order.
"""

from __future__ import annotations

import json
import logging
import time
from functools import partial
from typing import Any

from graphql import GraphQLError
from starlette.websockets import WebSocketDisconnect
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler

from app import input_guard
from app.documents import awareness_graphql as awareness
from app.errors import BadRequest, DomainError
from app.graphql.context import Context, client_ip
from app.graphql.errors import coded_error
from app.graphql.ws.plans import Plan, PlanCache
from app.graphql.ws.stream import FastStream, error_payload
from app.realtime.connection_limits import ConnectionLimits
from app.realtime.outbox import Outbox
from app.realtime.stream import complete_frame, next_head

log = logging.getLogger(__name__)

MESSAGE_TYPES = frozenset({"connection_init", "ping", "pong", "subscribe", "complete"})
MAX_CLOSE_REASON_BYTES = 123  # the WebSocket protocol's limit


class TransportHandler(BaseGraphQLTransportWSHandler[Context, None]):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        websocket = self.websocket.ws  # type: ignore[attr-defined]
        settings = self.context.state.settings
        self.plans: PlanCache = self.view.plans  # type: ignore[attr-defined]
        self.outbox = Outbox(
            websocket.send,
            max_frames=settings.ws_outbox_max_frames,
            max_bytes=settings.ws_outbox_max_bytes,
            close_connection=self.websocket.close,
        )
        self.context.outbox = self.outbox
        # Shared with the context: the credential watch rechecks a connection's streams.
        self.streams: dict[str, FastStream] = self.context.streams
        # Checked here for fast streams and Strawberry's operations alike, with a coded error.
        self.subscription_limit = self.max_subscriptions_per_connection
        self.max_subscriptions_per_connection = None
        self.context.limits = ConnectionLimits(self.context.state.connection_rates)

    async def handle(self) -> None:
        """Strawberry's loop, reading ASGI messages directly: an idle connection then holds two
        fewer generators, and each message costs two fewer hops."""
        self.on_request_accepted()
        websocket = self.websocket.ws  # type: ignore[attr-defined]
        state = websocket.state
        try:
            while True:
                message = await websocket.receive()
                if message["type"] != "websocket.receive":
                    break  # disconnected
                text = message.get("text")
                if text is None:
                    await self.handle_invalid_message("WebSocket message type must be text")
                    break
                try:
                    data = input_guard.decode(text)
                except BadRequest as error:
                    await self.handle_invalid_message(
                        f"WebSocket message must be valid JSON: {error.message}"
                    )
                    break
                state.last_activity = time.time()
                await self.handle_message(data)
        except WebSocketDisconnect:
            pass
        finally:
            await self.shutdown()

    async def handle_connection_init(self, message: Any) -> None:
        await super().handle_connection_init(message)
        self.connection_init_timeout_task = None  # done: do not keep it for the connection's life
        self.context.connection_params = None  # the credentials were checked; do not hold the token

    async def handle_message(self, message: Any) -> None:
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            await self.handle_invalid_message("Failed to parse message")
            return
        if message["type"] not in MESSAGE_TYPES:
            await self.handle_invalid_message(f"Unknown message type: {message['type']!r}")
            return
        if "id" in message and not isinstance(message["id"], str):
            await self.handle_invalid_message(f"Invalid {message['type']} message: id must be a string")
            return
        await super().handle_message(message)

    async def send_message(self, message: Any) -> None:
        # Strawberry's frames go through the outbox too, so nothing overtakes what is queued.
        await self.outbox.send(json.dumps(message))

    async def handle_subscribe(self, message: Any) -> None:
        if not self.connection_acknowledged:
            await self.websocket.close(code=4401, reason="Unauthorized")
            return
        op_id, payload = message.get("id"), message.get("payload")
        if (
            not isinstance(op_id, str)
            or not isinstance(payload, dict)
            or not isinstance(payload.get("query"), str)
            or not payload["query"].strip()
            or not isinstance(payload.get("variables"), dict | None)
            or not isinstance(payload.get("operationName"), str | None)
            or not isinstance(payload.get("extensions"), dict | None)
        ):
            await self.handle_invalid_message("Invalid subscribe message")
            return
        if op_id in self.operations or op_id in self.streams:
            await self.websocket.close(code=4409, reason=f"Subscriber for {op_id} already exists")
            return
        plan = self.plans.get(payload["query"], payload.get("operationName"))
        try:
            await self._admit(payload, plan)
        except DomainError as error:
            formatted = coded_error(
                GraphQLError(error.message, original_error=error), self.context.request_id
            )
            await self.send_message({"id": op_id, "type": "error", "payload": [formatted.formatted]})
            return
        prepared = plan.arguments(payload.get("variables")) if plan is not None else None
        if plan is None or prepared is None:
            # Not hot, or a variable is wrong: Strawberry executes it and reports its errors.
            await super().handle_subscribe(message)
            return
        variables, arguments = prepared
        if plan.mutation is not None:
            await self._run_mutation(op_id, plan, variables, arguments)
        else:
            await self._open_stream(op_id, plan, variables, arguments)

    async def _admit(self, payload: dict[str, Any], plan: Plan | None) -> None:
        """Refuse the operation before it runs (a coded DomainError): input the checks at the
        door refuse; one operation too many that stays (subscriptions, and queries while they
        run; hot mutations complete at once); past the address's or API key's rate limit, which
        operations on a socket count against like requests over HTTP (but continuous streams of
        updates, see FastMutation.counts_as_request)."""
        input_guard.check_request(
            payload.get("variables"), payload.get("operationName"), payload.get("extensions")
        )
        if plan is None or plan.subscription is not None:
            limit = self.subscription_limit
            if limit is not None and len(self.operations) + len(self.streams) >= limit:
                raise BadRequest(
                    f"at most {limit} operations at once per connection", reason="TOO_MANY_OPERATIONS"
                )
        if plan is None or plan.mutation is None or plan.mutation.counts_as_request:
            context = self.context
            await context.state.rate_limits.hit_ip(client_ip(context.request))
            key_id = getattr(context.principal, "api_key_id", None)
            if key_id is not None:
                per_minute = context.principal.rate_limit or context.state.settings.api_key_rate_limit_default  # type: ignore[union-attr]
                await context.state.rate_limits.hit_key(str(key_id), per_minute)

    async def _run_mutation(
        self, op_id: str, plan: Plan, variables: dict[str, Any], arguments: dict[str, Any]
    ) -> None:
        assert plan.mutation is not None
        try:
            result = await plan.mutation.run(self.context, arguments)
            payload = plan.result_renderer(variables)(result)
        except Exception as error:
            payload = error_payload(error, plan.nodes, [plan.response_key], self.context.request_id)
        self.outbox.push(next_head(op_id) + payload + "}")
        self.outbox.push(complete_frame(op_id))

    async def _open_stream(
        self, op_id: str, plan: Plan, variables: dict[str, Any], arguments: dict[str, Any]
    ) -> None:
        assert plan.subscription is not None
        stream = FastStream(
            op_id,
            plan.payload_renderer(variables),
            self.outbox,
            self._forget,
            response_key=plan.response_key,
            request_id=self.context.request_id,
        )
        stream.recheck = partial(plan.subscription.authorize, self.context, arguments)
        self.streams[op_id] = stream
        try:
            await plan.subscription.open(self.context, arguments, stream)
        except Exception as error:
            self.streams.pop(op_id, None)
            await stream.close(dropped=False)
            self.outbox.push(
                stream.head
                + error_payload(error, plan.nodes, [plan.response_key], self.context.request_id)
                + "}"
            )
            self.outbox.push(stream.tail)

    def _forget(self, stream: FastStream) -> None:
        if self.streams.get(stream.id) is stream:
            del self.streams[stream.id]

    async def handle_complete(self, message: Any) -> None:
        stream = self.streams.pop(message.get("id"), None) if isinstance(message.get("id"), str) else None
        if stream is None:
            await super().handle_complete(message)
            return
        await stream.close(dropped=False)

    async def shutdown(self) -> None:
        streams, self.streams = list(self.streams.values()), {}
        for stream in streams:
            # The connection is gone without saying goodbye: presence waits out its grace period.
            await stream.close(dropped=True)
        await super().shutdown()
        self.outbox.close()
        context = self.context
        if context.keepalive is not None:
            context.state.pinger.remove(context.keepalive)
        if context.credential is not None:
            context.state.credentials.forget(context.credential)
        if context.awareness_documents:
            await awareness.connection_ended(context)
        for room_id in context.cursor_rooms or ():
            context.state.cursors.remove(room_id, context.connection_id)


def close_reason(text: str) -> str:
    """`text` as a close reason: UTF-8 that can be encoded (a client's lone surrogate, quoted
    back, is escaped) and cut to the protocol's 123 bytes."""
    raw = text.encode("utf-8", "backslashreplace")[:MAX_CLOSE_REASON_BYTES]
    return raw.decode("utf-8", "ignore")
