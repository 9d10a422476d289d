"""The peer of bench/documents.py: pycrdt-websocket's y-websocket server (PyPI), as its docs run it.

    python bench/pycrdt_ws_server.py --port 8766

Rooms are the URL path (ws://HOST:PORT/<room>); GET /health answers "ok". Served by uvicorn with
ws="websockets-sansio" and per-message deflate off, like the other servers of the benchmarks.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import uvicorn
from pycrdt.websocket import ASGIServer, WebsocketServer


def build(websocket_server: WebsocketServer) -> Any:
    rooms = ASGIServer(websocket_server)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
            )
            await send({"type": "http.response.body", "body": b"ok"})
            return
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await rooms(scope, receive, send)

    return app


async def main(host: str, port: int) -> None:
    websocket_server = WebsocketServer()
    async with websocket_server:
        config = uvicorn.Config(
            build(websocket_server),
            host=host,
            port=port,
            log_level="warning",
            ws="websockets-sansio",
            ws_per_message_deflate=False,
        )
        await uvicorn.Server(config).serve()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="pycrdt-websocket server (peer of bench/documents.py)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766)
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port))
