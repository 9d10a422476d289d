"""Kill and restart a `syncforge serve` process while two SDK clients edit one text
(codegen/typescript/client/test/outage.mjs): shared by tests/test_sdk_reconnect.py and
bench/sdk_reconnect.py."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

from app.settings import Settings
from tests.processes import Process, spawn
from tests.sdk_node import CLIENT, NODE, ROOT, sdk_server

OUTAGE_SCRIPT = CLIENT / "test" / "outage.mjs"


async def _line(stream: asyncio.StreamReader, timeout: float) -> dict[str, Any]:
    while True:
        raw = await asyncio.wait_for(stream.readline(), timeout)
        if not raw:
            raise AssertionError("outage.mjs ended early")
        if raw.startswith(b"{"):
            return json.loads(raw)  # type: ignore[no-any-return]


async def outage_round(
    settings: Settings, redis_url: str | None, tmp: Path, *, down_s: float = 1.0
) -> dict[str, Any]:
    """One round: the figures outage.mjs prints (recoveryMs, missing, duplicated, ...)."""
    server: Process = await asyncio.to_thread(spawn, settings, redis_url, tmp)
    try:
        async with sdk_server(server) as sdk:
            node = await asyncio.create_subprocess_exec(
                NODE,
                str(OUTAGE_SCRIPT),
                cwd=ROOT,
                env=sdk.env(),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            assert node.stdin is not None and node.stdout is not None
            try:
                assert (await _line(node.stdout, 60)).get("ready")
                await asyncio.sleep(0.3)
                server.popen.send_signal(signal.SIGKILL)  # a crash: nothing is flushed or said
                await asyncio.to_thread(server.popen.wait)
                node.stdin.write(b"down\n")
                await node.stdin.drain()
                await asyncio.sleep(down_s)
                server = await asyncio.to_thread(spawn, settings, redis_url, tmp, server.port)
                node.stdin.write(b"up\n")
                await node.stdin.drain()
                result = await _line(node.stdout, 90)
            except BaseException:
                node.kill()
                err = (await node.stderr.read()).decode() if node.stderr else ""
                raise AssertionError(f"outage.mjs failed:\n{err[-4000:]}") from None
            await node.wait()
            return result
    finally:
        if server.popen.poll() is None:
            server.popen.send_signal(signal.SIGTERM)
            await asyncio.to_thread(server.popen.wait, 20)
