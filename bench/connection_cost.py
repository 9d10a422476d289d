"""Server CPU per connection, phase by phase, against the raw relay's: what "connection plus subscribe"
costs when joins come one after the other, with the server's idle background subtracted.

    .venv/bin/python bench/connection_cost.py [--connections 500]

The presence workload of realtime.py spreads its joins over tens of seconds (25/s), so its CPU per
connection also carries that long a window of background work (pings, presence heartbeats, the batched
trace writes). Here the same servers (pinned to core 0) take N connections in a row from a client on
another core, each waiting for its answer; the server's CPU during each phase, minus its idle CPU rate
over the phase's duration, is divided by N:

  handshake        WebSocket upgrade only (uvicorn's and the ASGI app's own cost)
  + init           graphql-transport-ws connection_init with an end-user token (authentication)
  + join           and roomPresence in a room of 10 (join, SYNC, the diff to the room's others)

The raw relay does the handshake, then its hello + presence subscription (its SYNC and diffs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import realtime as bench

PRESENCE = bench.PRESENCE_SUB


async def _measure(
    name: str, pid: int, idle_rate: float, count: int, one: Any, connections: list[Any]
) -> tuple[str, float, float]:
    await asyncio.sleep(1.0)
    cpu0, wall0 = bench.proc_cpu_seconds(pid), time.monotonic()
    for index in range(count):
        connections.append(await one(index))
    await asyncio.sleep(0.5)  # let the server finish what the last one set off
    cpu, wall = bench.proc_cpu_seconds(pid) - cpu0, time.monotonic() - wall0
    return name, cpu / count * 1000, max(0.0, cpu - idle_rate * wall) / count * 1000


async def _idle_rate(pid: int, seconds: float = 4.0) -> float:
    cpu0 = bench.proc_cpu_seconds(pid)
    await asyncio.sleep(seconds)
    return (bench.proc_cpu_seconds(pid) - cpu0) / seconds


async def syncforge_phases(server: bench.ServerProcess, count: int) -> list[tuple[str, float, float]]:
    from websockets.asyncio.client import connect

    account = bench.SyncForgeAccount()
    await account.inspect(server.http_url)
    specs = [{"i": i, "room": f"{bench.USER_PREFIX}cost-{i // 10}"} for i in range(2 * count)]
    room_ids = await account.prepare(server.http_url, specs)
    connections: list[Any] = []

    async def handshake(_: int) -> Any:
        return await connect(server.ws_url, subprotocols=[bench.PROTOCOL], compression=None)

    async def init(index: int) -> Any:
        connection = await handshake(index)
        spec = specs[index]
        payload = {"apiKey": spec["api_key"], "token": spec["token"]}
        await connection.send(json.dumps({"type": "connection_init", "payload": payload}))
        assert json.loads(await connection.recv())["type"] == "connection_ack"
        return connection

    async def join(index: int) -> Any:
        connection = await init(count + index)
        room = room_ids[specs[count + index]["room"]]
        query = {"query": PRESENCE, "variables": {"room": room}}
        await connection.send(json.dumps({"id": "1", "type": "subscribe", "payload": query}))
        assert json.loads(await connection.recv())["payload"]["data"]["roomPresence"]["kind"] == "SYNC"
        return connection

    idle = await _idle_rate(server.pid)
    results = [
        await _measure("handshake", server.pid, idle, count, handshake, connections),
        await _measure("handshake + init", server.pid, idle, count, init, connections),
        await _measure("handshake + init + join", server.pid, idle, count, join, connections),
    ]
    for connection in connections:
        await connection.close()
    return [("idle (ms/s)", idle * 1000, idle * 1000), *results]


async def raw_phases(server: bench.ServerProcess, count: int) -> list[tuple[str, float, float]]:
    from websockets.asyncio.client import connect

    connections: list[Any] = []

    async def handshake(_: int) -> Any:
        return await connect(server.ws_url, compression=None)

    async def join(index: int) -> Any:
        connection = await handshake(index)
        await connection.send(
            json.dumps({"t": "hello", "room": f"cost-{index // 10}", "id": bench.user_id(index)})
        )
        await connection.send(json.dumps({"t": "sub", "what": "presence"}))
        assert json.loads(await connection.recv())["kind"] == "SYNC"
        return connection

    idle = await _idle_rate(server.pid)
    results = [
        await _measure("handshake", server.pid, idle, count, handshake, connections),
        await _measure("handshake + hello + join", server.pid, idle, count, join, connections),
    ]
    for connection in connections:
        await connection.close()
    return [("idle (ms/s)", idle * 1000, idle * 1000), *results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=500, help="connections per phase")
    args = parser.parse_args()
    bench.raise_fd_limit()
    client_cores = bench.other_cores()
    if client_cores:
        os.sched_setaffinity(0, client_cores)
    workdir = Path(tempfile.mkdtemp(prefix="syncforge-conncost-"))
    env = bench.syncforge_env(workdir, secrets.token_hex(32))
    print(
        f"server core {bench.SERVER_CORE}, client cores {sorted(client_cores)}, {args.connections} per phase"
    )
    print(f"{'server':10s} {'phase':28s} {'ms/conn':>9s} {'minus idle':>11s}")
    for kind, phases in (("raw", raw_phases), ("syncforge", syncforge_phases)):
        server = bench.ServerProcess(kind, workdir, env, f"cost-{kind}")
        server.start()
        try:
            for name, per_conn, net in asyncio.run(phases(server, args.connections)):
                print(f"{kind:10s} {name:28s} {per_conn:9.2f} {net:11.2f}", flush=True)
        finally:
            server.stop()
    print("target (issue 4): server CPU per connection plus subscribe <= 1 ms")


if __name__ == "__main__":
    main()
