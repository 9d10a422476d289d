"""Document benchmarks (issues 5 and 12): update propagation through the real protocol, the cost of
durability, production mode, and a large document.

    .venv/bin/python bench/documents.py --quick            # scaled down, about 1.5 minutes
    .venv/bin/python bench/documents.py                    # the issue's sizes, about 6 minutes
    .venv/bin/python bench/documents.py --workload propagation --production --subscribers 200 --duration 10
    .venv/bin/python bench/documents.py --workload large --edits 100000

propagation  One writer and S subscribers (50, then 200) on one document; the writer makes R small edits a
             second for D seconds: a Y.Text insert plus a Y.Map "ts" = send time in one transaction, sent as
             the update that transaction made (its own inserts and deletes, as Yjs editors send them: not a
             diff against the state vector, whose delete set grows with every overwritten "ts").
             Servers, each a fresh process pinned to core 0:
               syncforge         `syncforge serve`, embedded default (SQLite, in-memory pub/sub), durable:
                                 each update is appended to the log and committed before it is acknowledged
               syncforge-production  the same code in production mode: a fresh PostgreSQL database (created,
                                 migrated with `syncforge migrate`, dropped), Redis pub/sub under a namespace
                                 of its own (its keys deleted afterwards) and a `syncforge worker` for the
                                 compaction jobs (pinned to the load generator's cores). Its targets (issue
                                 12: p95 < 50 ms, CPU per delivery at most 1.2x the embedded default's) are
                                 set against the embedded default of the same run (--production: these two).
               syncforge-memory  the embedded default with SYNCFORGE_DOCUMENT_DURABILITY=none: acknowledged
                                 from memory (the durability-cost baseline; never a real setting)
               raw               bench/raw_relay.py: the update forwarded as a room event, no GraphQL, no CRDT
               pycrdt-websocket  bench/pycrdt_ws_server.py: pycrdt-websocket's y-websocket server (the peer)
             The load generator is one process (uvloop) on the other core; its receivers are callbacks on
             websockets' sans-I/O protocol (no task wakes per message). By default every subscriber applies
             every update to a pycrdt Doc, as a real client does (--appliers N: only N of them, the others
             count). Propagation is send -> applied, for every edit (an applier tells which edits it holds
             by its text's length, so an update that carries several edits times each). Printed:
             p50/p95/p99 propagation, the writer's ack latency (SyncForge), the fraction of the expected
             deliveries (edits x subscribers) received, deliveries/s, frames per delivery, server CPU and CPU
             per delivery, peak RSS, the load generator's CPU (share of its core, and µs per delivery), the
             rest of the machine's CPU (PostgreSQL, Redis, the worker, anything else), ratios to the raw
             relay and to pycrdt-websocket, the targets (met or MISSED), the worst propagation and ack of
             each second of editing (stalls show there), and for syncforge-production the Redis commands
             and PostgreSQL transactions per edit over the window.
large        In this process, on a SQLite file: a document whose log holds N edits (default 100,000) is
             loaded into a replica (as a server does on first use), compacted (the job), loaded again from
             the compacted state, and synced to a new client. Time and peak memory of each step.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import multiprocessing as mp
import os
import resource
import secrets
import sys
import tempfile
import time
import tracemalloc
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import realtime as bench

HOST = bench.HOST
DOC_ROOM = "bench-docs"
CREATE_DOCUMENT = """mutation($room: UUID!) {
  createDocument(roomId: $room, input: {name: "Bench document"}) { id } }"""
UPDATES = "subscription($id: UUID!) { documentUpdates(documentId: $id) { seq update } }"
APPLY = "mutation($id: UUID!, $u: String!) { applyDocumentUpdate(documentId: $id, update: $u) { seq } }"
SERVERS = ("syncforge", "syncforge-production", "syncforge-memory", "raw", "pycrdt-websocket")
SYNCFORGE_KINDS = ("syncforge", "syncforge-production", "syncforge-memory")


# ------------------------------------------------------------------------------------------- servers


class DocServer(bench.ServerProcess):
    """bench.ServerProcess, plus the pycrdt-websocket peer."""

    @property
    def ws_url(self) -> str:
        if self.kind == "pycrdt":
            return f"ws://{HOST}:{self.port}/{DOC_ROOM}"
        return super().ws_url

    def command(self) -> list[str]:
        if self.kind == "pycrdt":
            script = Path(__file__).resolve().parent / "pycrdt_ws_server.py"
            return [sys.executable, str(script), "--host", HOST, "--port", str(self.port)]
        return super().command()


async def prepare_syncforge(
    server: DocServer, account: bench.SyncForgeAccount, clients: int
) -> dict[str, Any]:
    import httpx

    specs = [{"i": i, "room": DOC_ROOM} for i in range(clients)]
    rooms = await account.prepare(server.http_url, specs)
    org = account.room_org[DOC_ROOM]
    async with httpx.AsyncClient(base_url=server.http_url, timeout=60) as http:
        created = await account._data(
            http, CREATE_DOCUMENT, {"authorization": f"Bearer {org.secret}"}, room=rooms[DOC_ROOM]
        )
    return {"document": created["createDocument"]["id"], "specs": specs}


# -------------------------------------------------------------------------------------- load generator


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


class Peer:
    """One subscriber. An applier applies every update to a pycrdt Doc, as a client does, and times
    each edit the update brought: edit i adds the text's i-th character, so the text's length says
    which edits it holds (an update may carry several), and `sent[i]` is when the writer sent it
    (the same process, the same clock). A counter only counts: the highest seq it saw (SyncForge),
    or one edit per message."""

    def __init__(self, apply: bool, sent: list[float], worst: list[float]) -> None:
        from pycrdt import Doc, Text

        self.apply = apply
        self.doc = Doc()
        self.text = self.doc.get("content", type=Text)
        self.sent = sent
        self.worst = worst  # per edit, the longest any applier waited for it (shared)
        self.frames = 0  # messages received
        self.edits = 0  # edits held (appliers) or known received (counters)
        self.latencies: list[float] = []
        self.last_seq = 0
        self.out_of_order = 0

    def on_update(self, update: bytes) -> None:
        self.frames += 1
        if not self.apply:
            self.edits += 1
            return
        self.doc.apply_update(update)
        held = len(self.text)
        if held > self.edits:
            now, sent, worst = time.monotonic(), self.sent, self.worst
            for i in range(self.edits, held):
                latency = now - sent[i]
                self.latencies.append(latency)
                if latency > worst[i]:
                    worst[i] = latency
            self.edits = held

    def on_seq(self, seq: int) -> None:
        """A SyncForge update numbered `seq` (it may stand for several, or for the whole document)."""
        if seq <= self.last_seq:
            self.out_of_order += 1
        self.last_seq = max(seq, self.last_seq)


async def _connect(url: str, subprotocol: str | None) -> Any:
    from websockets.asyncio.client import connect

    protocols = [subprotocol] if subprotocol else None
    return await connect(url, subprotocols=protocols, compression=None, max_size=None, open_timeout=30)  # type: ignore[arg-type]


async def _graphql_init(ws: Any, init: dict[str, Any]) -> None:
    await ws.send(json.dumps({"type": "connection_init", "payload": init}))
    while json.loads(await ws.recv())["type"] != "connection_ack":
        pass


async def _run_receiver(
    plan: dict[str, Any], index: int, peer: Peer, ready: asyncio.Event, stop: asyncio.Event
) -> None:
    kind, url = plan["kind"], plan["url"]
    if kind in ("pycrdt-websocket", "raw"):
        # The same lean client as SyncForge's receivers: each server's latency carries the same
        # load generator overhead.
        on_message = _pycrdt_receiver(peer) if kind == "pycrdt-websocket" else _raw_receiver(peer)
        socket = await LeanSocket.connect(url, None, on_message)
        try:
            if kind == "raw":
                socket.send(json.dumps({"t": "hello", "room": DOC_ROOM, "id": f"bench-{index}"}))
                socket.send(json.dumps({"t": "sub", "what": "events"}))
            ready.set()
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait([stopped, socket.closed], return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
        finally:
            socket.close()
        return
    spec = plan["specs"][index]
    loop = asyncio.get_running_loop()
    acked: asyncio.Future[None] = loop.create_future()
    failed: asyncio.Future[None] = loop.create_future()

    def on_text(socket: LeanSocket, text: str | bytes) -> None:
        if not isinstance(text, str):
            return
        if text.startswith('{"id":"u"'):
            if peer.apply:
                update = json.loads(text)["payload"]["data"]["documentUpdates"]
                peer.on_seq(update["seq"])
                peer.on_update(base64.b64decode(update["update"]))
            else:
                # The writer is the only editor: the first seq is 1, so seq counts edits.
                at = text.index('"seq":') + 6
                seq = int(text[at : text.index(",", at)])
                peer.frames += 1
                peer.on_seq(seq)
                peer.edits = peer.last_seq
            return
        message = json.loads(text)
        kind = message.get("type")
        if kind == "connection_ack" and not acked.done():
            acked.set_result(None)
        elif message.get("id") == "q" and kind == "complete":
            ready.set()  # the subscription was registered before this answer
        elif kind == "ping":
            socket.send('{"type":"pong"}')
        elif message.get("id") == "u" and not failed.done():
            failed.set_exception(RuntimeError(f"documentUpdates: {text[:300]}"))

    socket = await LeanSocket.connect(url, bench.PROTOCOL, on_text)
    try:
        socket.send(
            json.dumps(
                {"type": "connection_init", "payload": {"apiKey": spec["api_key"], "token": spec["token"]}}
            )
        )
        await asyncio.wait_for(asyncio.shield(acked), 30)
        subscription = {"query": UPDATES, "variables": {"id": plan["document"]}}
        socket.send(json.dumps({"id": "u", "type": "subscribe", "payload": subscription}))
        socket.send(json.dumps({"id": "q", "type": "subscribe", "payload": {"query": "{ __typename }"}}))
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait([stopped, failed, socket.closed], return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if failed.done():
            failed.result()
    finally:
        socket.close()


def _pycrdt_receiver(peer: Peer) -> Any:
    from pycrdt import YMessageType, YSyncMessageType, handle_sync_message

    def on_message(socket: LeanSocket, message: str | bytes) -> None:
        if isinstance(message, str) or message[0] != YMessageType.SYNC:
            return
        if message[1] == YSyncMessageType.SYNC_UPDATE:
            # The update follows as a length-prefixed buffer: skip the varuint length.
            position = 2
            while message[position] & 0x80:
                position += 1
            peer.on_update(bytes(message[position + 1 :]))
        elif message[1] == YSyncMessageType.SYNC_STEP1:
            reply = handle_sync_message(message[1:], peer.doc)
            if reply is not None:
                socket.send(reply)

    return on_message


def _raw_receiver(peer: Peer) -> Any:
    def on_message(socket: LeanSocket, message: str | bytes) -> None:
        if isinstance(message, str):
            peer.on_update(base64.b64decode(json.loads(message)["payload"]["u"]) if peer.apply else b"")

    return on_message


class LeanSocket(asyncio.Protocol):
    """A WebSocket client that hands each text message to a callback as soon as it is parsed
    (websockets' sans-I/O protocol under an asyncio Protocol): no task wakes up per message, so
    the load generator's 200 receivers cost their handling and little more, as a browser's
    WebSocket does. Pings are answered by the protocol. `on_message(socket, text or bytes)`."""

    def __init__(self, url: str, subprotocol: str | None, on_message: Any) -> None:
        from websockets.client import ClientProtocol
        from websockets.typing import Subprotocol
        from websockets.uri import parse_uri

        protocols = [Subprotocol(subprotocol)] if subprotocol else None
        self.protocol = ClientProtocol(parse_uri(url), subprotocols=protocols, max_size=None)
        self.on_message = on_message
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.transport: Any = None

    @classmethod
    async def connect(cls, url: str, subprotocol: str | None, on_message: Any) -> LeanSocket:
        from websockets.uri import parse_uri

        uri = parse_uri(url)
        loop = asyncio.get_running_loop()
        _, socket = await loop.create_connection(
            lambda: cls(url, subprotocol, on_message), uri.host, uri.port
        )
        await asyncio.wait_for(asyncio.shield(socket.opened), 30)
        return socket

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.protocol.send_request(self.protocol.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        from websockets.frames import Frame, Opcode

        self.protocol.receive_data(data)
        for event in self.protocol.events_received():
            if isinstance(event, Frame):
                if event.opcode is Opcode.TEXT:
                    self.on_message(self, event.data.decode())
                elif event.opcode is Opcode.BINARY:
                    self.on_message(self, bytes(event.data))
            elif not self.opened.done():  # the handshake's response
                error = self.protocol.handshake_exc
                if error is None:
                    self.opened.set_result(None)
                else:
                    self.opened.set_exception(error)
        self._flush()

    def send(self, message: str | bytes) -> None:
        if not self.transport.is_closing():
            if isinstance(message, str):
                self.protocol.send_text(message.encode())
            else:
                self.protocol.send_binary(message)
            self._flush()

    def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.transport.write(data)
            elif self.transport.can_write_eof():
                self.transport.write_eof()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed during the handshake"))
        if not self.closed.done():
            self.closed.set_result(None)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            with contextlib.suppress(Exception):
                self.protocol.send_close()
                self._flush()
            self.transport.close()


async def _run_writer(plan: dict[str, Any], go: float, sent: list[float]) -> dict[str, Any]:
    from pycrdt import Doc, Map, Text, create_update_message

    kind, url = plan["kind"], plan["url"]
    doc = Doc()
    text, stamps = doc.get("content", type=Text), doc.get("bench", type=Map)
    # What a Yjs editor sends: the update its transaction made (y-websocket's and our SDK's
    # `update` event), whose delete set is the transaction's own; not doc.get_update(before),
    # which carries the whole delete set (every overwritten "ts") and grows with every edit.
    made: list[bytes] = []
    doc.observe(lambda event: made.append(event.update))
    acks: list[float] = []
    sent_at: dict[str, float] = {}
    ack_of = [0.0] * int(plan["rate"] * plan["duration"])  # by edit
    errors = 0
    if kind == "pycrdt-websocket":
        ws = await _connect(url, None)
    elif kind == "raw":
        ws = await _connect(url, None)
        await ws.send(json.dumps({"t": "hello", "room": DOC_ROOM, "id": "bench-writer"}))
    else:
        ws = await _connect(url, bench.PROTOCOL)
        spec = plan["specs"][-1]
        await _graphql_init(ws, {"apiKey": spec["api_key"], "token": spec["token"]})

    async def read_acks() -> None:
        nonlocal errors
        with contextlib.suppress(Exception):
            while True:
                message = json.loads(await ws.recv())
                if message.get("type") == "next":
                    if message["payload"].get("errors"):
                        errors += 1
                    started = sent_at.pop(message["id"], None)
                    if started is not None:
                        acks.append(time.monotonic() - started)
                        ack_of[int(message["id"][1:])] = acks[-1]
                elif message.get("type") == "ping":
                    await ws.send('{"type":"pong"}')

    reader = asyncio.create_task(read_acks()) if kind in SYNCFORGE_KINDS else None
    period, count = 1.0 / plan["rate"], int(plan["rate"] * plan["duration"])
    behind = 0
    for i in range(count):
        delay = go + i * period - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -period:
            behind += 1
        with doc.transaction():
            text.insert(len(text), f"{i % 10}")
            stamps["ts"] = time.time()
        update = made.pop()
        sent.append(time.monotonic())
        if kind == "pycrdt-websocket":
            await ws.send(create_update_message(update))
        elif kind == "raw":
            await ws.send(json.dumps({"t": "event", "type": "u", "payload": {"u": _b64(update)}}))
        else:
            op = f"w{i}"
            sent_at[op] = time.monotonic()
            payload = {"query": APPLY, "variables": {"id": plan["document"], "u": _b64(update)}}
            await ws.send(json.dumps({"id": op, "type": "subscribe", "payload": payload}))
    deadline = time.monotonic() + 10
    while sent_at and time.monotonic() < deadline and reader is not None:  # noqa: ASYNC110 (acks trickle in)
        await asyncio.sleep(0.05)
    if reader is not None:
        reader.cancel()
    # Closed in the background: pycrdt-websocket's server does not answer the closing handshake,
    # and waiting out websockets' close timeout would stretch the measured window by seconds.
    closing = asyncio.ensure_future(ws.close())
    _CLOSING.add(closing)
    closing.add_done_callback(_CLOSING.discard)
    return {"sent": count, "acks": sorted(acks), "ack_of": ack_of, "ack_errors": errors, "behind": behind}


_CLOSING: set[asyncio.Task[None]] = set()


async def _loadgen(control: Connection, plan: dict[str, Any]) -> None:
    subscribers, appliers = plan["subscribers"], plan["appliers"]
    step = max(1, subscribers // max(1, appliers))
    sent: list[float] = []
    worst = [0.0] * int(plan["rate"] * plan["duration"])
    peers = [
        Peer(apply=(i % step == 0 and i // step < appliers), sent=sent, worst=worst)
        for i in range(subscribers)
    ]
    stop = asyncio.Event()
    readies = [asyncio.Event() for _ in peers]
    semaphore = asyncio.Semaphore(20)

    async def start(i: int) -> None:
        async with semaphore:
            task = asyncio.create_task(_run_receiver(plan, i, peers[i], readies[i], stop))
            ready = asyncio.create_task(readies[i].wait())
            await asyncio.wait([task, ready], timeout=60, return_when=asyncio.FIRST_COMPLETED)
            if not readies[i].is_set():
                ready.cancel()
                raise RuntimeError(
                    f"subscriber {i} did not start: {task.exception() if task.done() else 'timeout'}"
                )
            tasks.append(task)

    tasks: list[asyncio.Task[None]] = []
    # One client first: pycrdt-websocket 0.16.5 fails the clients that connect while a room starts
    # ("YRoom already running"), and the others do no harm waiting for it.
    await start(0)
    await asyncio.gather(*(start(i) for i in range(1, subscribers)))
    await asyncio.sleep(1.0)
    cpu0 = time.process_time()
    control.send(("go", None))
    go = time.monotonic() + 0.2
    writer = await _run_writer(plan, go, sent)
    await asyncio.sleep(1.5)  # the last deliveries
    cpu = time.process_time() - cpu0
    control.send(("done", None))
    stop.set()
    for task in tasks:
        task.cancel()
    latencies = sorted(x for peer in peers for x in peer.latencies)
    control.send(
        (
            "result",
            {
                **writer,
                "worst": worst,
                "received": sum(peer.edits for peer in peers),
                "frames": sum(peer.frames for peer in peers),
                "latencies": latencies,
                "out_of_order": sum(peer.out_of_order for peer in peers),
                "appliers": sum(peer.apply for peer in peers),
                "loadgen_cpu": cpu,
            },
        )
    )


def loadgen_main(control: Connection, plan: dict[str, Any], cores: list[int]) -> None:
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, set(cores))
    try:
        try:
            import uvloop  # the load generator's capacity is the limit of this benchmark

            uvloop.run(_loadgen(control, plan))
        except ImportError:
            asyncio.run(_loadgen(control, plan))
    except Exception:
        import traceback

        control.send(("error", traceback.format_exc()))


# ------------------------------------------------------------------------------------ propagation case


def run_propagation(
    kind: str, subscribers: int, args: argparse.Namespace, workdir: Path, secret: str
) -> dict[str, Any]:
    env = bench.syncforge_env(workdir, secret)
    env["SYNCFORGE_WS_OUTBOX_MAX_FRAMES"] = "4096"
    production: Production | None = None
    if kind == "syncforge-production":
        production = Production(env, workdir)
    try:
        if production is not None:
            production.start()
        return _run_server(kind, subscribers, args, workdir, env, production)
    finally:
        if production is not None:
            production.stop()


def _run_server(
    kind: str,
    subscribers: int,
    args: argparse.Namespace,
    workdir: Path,
    env: dict[str, str],
    production: Production | None = None,
) -> dict[str, Any]:
    server_kind = {"raw": "raw", "pycrdt-websocket": "pycrdt"}.get(kind, "syncforge")
    if kind == "syncforge-memory":
        env["SYNCFORGE_DOCUMENT_DURABILITY"] = "none"
    server = DocServer(server_kind, workdir, env, f"{kind}-{subscribers}", profile=args.profile)
    server.start()
    sampler = bench.Sampler(server.pid)
    sampler.start()
    try:
        plan: dict[str, Any] = {
            "kind": kind,
            "url": server.ws_url,
            "subscribers": subscribers,
            "appliers": subscribers if args.appliers == "all" else min(subscribers, int(args.appliers)),
            "rate": args.rate,
            "duration": args.duration,
        }
        if server_kind == "syncforge":
            plan.update(asyncio.run(prepare_syncforge(server, bench.SyncForgeAccount(), subscribers + 1)))
        parent, child = mp.get_context("spawn").Pipe()
        cores = sorted(bench.other_cores())
        process = mp.get_context("spawn").Process(target=loadgen_main, args=(child, plan, cores))
        process.start()
        started = done = None
        machine0 = machine1 = 0.0
        counted: dict[str, int] | None = None
        result: dict[str, Any] = {}
        while True:
            if not parent.poll(600):
                raise RuntimeError("the load generator stopped answering")
            tag, payload = parent.recv()
            if tag == "go":
                started = time.monotonic()
                machine0 = _machine_busy_s()
                counted = production.counters() if production is not None else None
            elif tag == "done":
                done = time.monotonic()
                machine1 = _machine_busy_s()
                if production is not None and counted is not None:
                    counted = production.counters(since=counted)
            elif tag == "result":
                result = payload
                break
            elif tag == "error":
                raise RuntimeError(payload)
        process.join(30)
        assert started is not None and done is not None
        cpu0, _, _ = sampler.at(started)
        cpu1, _, hwm = sampler.at(done)
        result.update(server_cpu=cpu1 - cpu0, window=done - started, peak_rss_mib=hwm / 1024, kind=kind)
        result["expected"] = result["sent"] * subscribers
        result["round_trips"] = counted
        result["rest_cpu"] = machine1 - machine0 - result["server_cpu"] - result["loadgen_cpu"]
        result["problems"] = server.log_problems()[1] if hasattr(server, "log_problems") else []
        return result
    finally:
        sampler.stop()
        server.stop()
        if args.profile:
            print(server.profile_summary(30))


def _machine_busy_s() -> float:
    """CPU seconds the whole machine has been busy (every core, every process), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / bench.CLK_TCK


class Production:
    """What `syncforge-production` runs on: a fresh PostgreSQL database on 127.0.0.1 (created and
    migrated with `syncforge migrate`, dropped afterwards), Redis on 127.0.0.1 under a namespace of
    its own (its keys deleted afterwards), and one `syncforge worker` (the compaction jobs), pinned
    to the load generator's cores as a worker would run on another machine."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.name = f"syncforge_bench_{secrets.token_hex(4)}"
        self.env = env
        self.workdir = workdir
        self.worker: Any = None
        self.created = False
        env.update(
            DATABASE_URL=f"postgresql+asyncpg://postgres@{HOST}:5432/{self.name}",
            REDIS_URL=f"redis://{HOST}:6379/0",
            SYNCFORGE_REDIS_NAMESPACE=self.name,
        )

    def _psql(self, sql: str) -> None:
        import subprocess

        subprocess.run(["psql", "-h", HOST, "-U", "postgres", "-d", "postgres", "-qc", sql], check=True)

    def start(self) -> None:
        import shutil
        import subprocess

        self._psql(f"CREATE DATABASE {self.name}")
        self.created = True
        command = [sys.executable, "-m", "app.cli"]
        subprocess.run([*command, "migrate"], env=self.env, cwd=self.workdir, check=True)
        log = open(self.workdir / f"worker-{self.name}.log", "ab")  # noqa: SIM115 (as long as the worker)
        cores = ",".join(str(core) for core in sorted(bench.other_cores()))
        pin = ["taskset", "-c", cores] if shutil.which("taskset") else []
        self.worker = subprocess.Popen(
            [*pin, *command, "worker"], env=self.env, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT
        )

    def counters(self, since: dict[str, int] | None = None) -> dict[str, int]:
        """Redis commands by name (the server's INFO commandstats: anything else using this Redis
        counts too) and this database's transactions and rows written (pg_stat_database, which
        each backend updates at most once a second), minus `since`."""
        import redis

        found: dict[str, int] = {}
        with contextlib.suppress(Exception):
            client = redis.Redis.from_url(self.env["REDIS_URL"])
            for name, stats in client.info("commandstats").items():
                found["redis " + name.removeprefix("cmdstat_")] = int(stats["calls"])
            client.close()
        with contextlib.suppress(Exception):
            import subprocess

            row = (
                subprocess.run(
                    [
                        "psql",
                        "-h",
                        HOST,
                        "-U",
                        "postgres",
                        "-d",
                        "postgres",
                        "-Atc",
                        "SELECT xact_commit, tup_inserted, tup_updated, tup_deleted FROM pg_stat_database"
                        f" WHERE datname = '{self.name}'",
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                .stdout.strip()
                .split("|")
            )
            for key, value in zip(("pg commits", "pg inserts", "pg updates", "pg deletes"), row, strict=True):
                found[key] = int(value)
        if since is not None:
            found = {key: value - since.get(key, 0) for key, value in found.items()}
            found = {key: value for key, value in found.items() if value}
        return found

    def stop(self) -> None:
        import redis

        if self.worker is not None:
            self.worker.terminate()
            try:
                self.worker.wait(20)
            except Exception:
                self.worker.kill()
                self.worker.wait(5)
        with contextlib.suppress(Exception):
            client = redis.Redis.from_url(self.env["REDIS_URL"])
            keys = list(client.scan_iter(match=f"{self.name}:*", count=1000))
            for start in range(0, len(keys), 500):
                client.delete(*keys[start : start + 500])
            client.close()
        if self.created:
            self._psql(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")


def _ms(values: list[float], q: float) -> str:
    value = bench.percentile(values, q)
    return "-" if value is None else f"{value * 1000:.1f}"


PRODUCTION_P95_S = 0.050  # issue 12: production mode, 200 receivers, 100 edits/s
PRODUCTION_CPU_RATIO = 1.2  # server CPU per delivery, production / embedded default (same run)


def print_propagation(rows: list[dict[str, Any]], subscribers: int, rate: float) -> None:
    print(f"\n== propagation: 1 writer, {subscribers} subscribers, {rate:g} edits/s ==")
    header = (
        f"{'server':<21}{'p50':>7}{'p95':>7}{'p99':>7} ms {'ack p50/p95 ms':>15}{'received':>9}"
        f"{'deliv/s':>8}{'frames':>7}{'CPU s':>7}{'µs/deliv':>9}{'RSS MiB':>8}{'gen CPU':>8}{'gen µs':>7}"
        f"{'rest':>6}"
    )
    print(header)
    by_kind = {row["kind"]: row for row in rows}
    for row in rows:
        delivered = max(1, row["received"])
        per = row["server_cpu"] / delivered * 1e6
        row["us_per_delivery"] = per
        acks = f"{_ms(row['acks'], 0.5)}/{_ms(row['acks'], 0.95)}" if row["acks"] else "-"
        received = row["received"] / max(1, row["expected"])
        print(
            f"{row['kind']:<21}{_ms(row['latencies'], 0.5):>7}{_ms(row['latencies'], 0.95):>7}"
            f"{_ms(row['latencies'], 0.99):>7}    {acks:>15}{received:>9.1%}"
            f"{row['received'] / row['window']:>8.0f}{row['frames'] / delivered:>7.2f}"
            f"{row['server_cpu']:>7.2f}{per:>9.1f}{row['peak_rss_mib']:>8.0f}"
            f"{row['loadgen_cpu'] / row['window']:>8.0%}{row['loadgen_cpu'] / delivered * 1e6:>7.1f}"
            f"{row['rest_cpu'] / row['window']:>6.0%}"
        )
    appliers = ", ".join(f"{row['kind']} {row['appliers']}" for row in rows)
    print(
        "  (received: edits held by the subscribers / edits x subscribers; frames: messages per delivered"
        " edit; gen: the load generator's share of its core, and its CPU µs per delivery; rest: every other"
        " process, in cores (PostgreSQL, Redis and the worker in production, and whatever else runs);"
        f" appliers: {appliers})"
    )
    sf, raw, peer, memory, prod = (
        by_kind.get(k)
        for k in ("syncforge", "raw", "pycrdt-websocket", "syncforge-memory", "syncforge-production")
    )
    if sf is not None:
        for name, other in (("raw relay", raw), ("pycrdt-websocket", peer)):
            if other is not None and other["received"]:
                cpu_ratio = sf["us_per_delivery"] / other["us_per_delivery"]
                p95 = bench.percentile(sf["latencies"], 0.95), bench.percentile(other["latencies"], 0.95)
                ratio_p95 = f"{p95[0] / p95[1]:.2f}x" if p95[0] and p95[1] else "-"
                print(f"  syncforge / {name}: CPU per delivery {cpu_ratio:.2f}x, p95 {ratio_p95}")
        if memory is not None:
            for label, q in (("p50", 0.5), ("p95", 0.95)):
                durable, volatile = bench.percentile(sf["acks"], q), bench.percentile(memory["acks"], q)
                prop = bench.percentile(sf["latencies"], q), bench.percentile(memory["latencies"], q)
                if (
                    durable is not None
                    and volatile is not None
                    and prop[0] is not None
                    and prop[1] is not None
                ):
                    print(
                        f"  durability adds {label}: ack {(durable - volatile) * 1000:+.1f} ms,"
                        f" propagation {(prop[0] - prop[1]) * 1000:+.1f} ms"
                    )
        p95 = bench.percentile(sf["latencies"], 0.95)
        verdicts = [
            f"p95 < 20 ms: {_verdict(p95 is not None and p95 < 0.020)}",
            f"every update delivered: {_verdict(_complete(sf))}",
            f"≤ 17 µs CPU per delivery: {_verdict(sf['us_per_delivery'] <= 17)}",
        ]
        print("  targets (syncforge, durable): " + "; ".join(verdicts))
    if prod is not None:
        p95 = bench.percentile(prod["latencies"], 0.95)
        verdicts = [
            f"p95 {_ms(prod['latencies'], 0.95)} < {PRODUCTION_P95_S * 1000:.0f} ms:"
            f" {_verdict(p95 is not None and p95 < PRODUCTION_P95_S)}",
            f"every update delivered: {_verdict(_complete(prod))}",
        ]
        if sf is not None:
            ratio = prod["us_per_delivery"] / max(1e-9, sf["us_per_delivery"])
            verdicts.append(
                f"CPU per delivery {ratio:.2f}x the embedded default's ≤ {PRODUCTION_CPU_RATIO:g}x:"
                f" {_verdict(ratio <= PRODUCTION_CPU_RATIO)}"
            )
        else:
            verdicts.append("CPU per delivery vs the embedded default: not measured (run syncforge too)")
        print("  targets (syncforge-production, issue 12): " + "; ".join(verdicts))
    per_second = max(1, int(rate))
    for row in rows:
        for label, key in (("propagation", "worst"), ("ack", "ack_of")):
            if any(row.get(key) or ()):
                seconds = [
                    max(row[key][start : start + per_second]) * 1000
                    for start in range(0, len(row[key]), per_second)
                ]
                print(
                    f"  worst {label} per second of editing ({row['kind']}, ms): "
                    + " ".join(f"{v:.0f}" for v in seconds)
                )
    for row in rows:
        if row.get("round_trips"):
            sent = max(1, row["sent"])
            per = ", ".join(f"{key} {n / sent:.2f}" for key, n in sorted(row["round_trips"].items()))
            print(f"  per update ({row['kind']}, Redis and PostgreSQL counters over the window): {per}")
    for row in rows:
        notes = []
        if row.get("behind"):
            notes.append(f"writer fell behind its schedule {row['behind']} times")
        if row["loadgen_cpu"] / row["window"] > 0.7:
            notes.append("the load generator was busy > 70% of its core: it may be the bottleneck")
        if row.get("out_of_order"):
            notes.append(f"{row['out_of_order']} updates out of sequence order")
        if row.get("ack_errors"):
            notes.append(f"{row['ack_errors']} updates refused")
        if row.get("problems"):
            notes.append("server log: " + " | ".join(row["problems"]))
        if notes:
            print(f"  note ({row['kind']}): " + "; ".join(notes))


def _complete(row: dict[str, Any]) -> bool:
    return row["received"] == row["expected"] and not row["ack_errors"] and len(row["acks"]) == row["sent"]


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


# ------------------------------------------------------------------------------------------ large case


async def run_large(edits: int, workdir: Path) -> None:
    import uuid

    from pycrdt import Doc, Text
    from sqlalchemy import insert, update

    from app.db import create_engine, create_session_factory
    from app.db.migrate import upgrade
    from app.documents import compaction
    from app.documents.models import Document, DocumentUpdate
    from app.documents.replica import DocumentReplica
    from app.realtime.hub import Hub
    from app.settings import Settings

    settings = Settings(database_url=f"sqlite+aiosqlite:///{workdir / 'large.db'}")
    await asyncio.to_thread(upgrade, settings)
    engine = create_engine(settings)
    session_factory = create_session_factory(engine)
    print(f"\n== large document: {edits} edits ==")
    started = time.perf_counter()
    doc, rows = Doc(), []
    text = doc.get("content", type=Text)
    # What an editor sends: one update per transaction (its own inserts and deletes only).
    subscription = doc.observe(lambda event: rows.append(event.update))
    for i in range(edits):
        if i % 5 == 4 and len(text) > 4:
            del text[len(text) // 2 : len(text) // 2 + 2]
        else:
            text.insert((i * 7919) % (len(text) + 1), f"{i % 10}")
    doc.unobserve(subscription)
    log_bytes = sum(map(len, rows))
    print(f"  made {edits} updates in {time.perf_counter() - started:.1f} s ({log_bytes / 1e6:.1f} MB)")
    document_id = uuid.uuid4()
    async with session_factory() as session:
        from app.accounts.models import Organization
        from app.rooms.models import Room

        org = Organization(name="Large", slug=f"large-{secrets.token_hex(3)}")
        room = Room(organization_id=org.id, name="Large", slug="large")
        session.add_all([org, room])
        await session.flush()
        session.add(Document(id=document_id, room_id=room.id, name="Large"))
        await session.flush()
        for start in range(0, edits, 5000):
            chunk = rows[start : start + 5000]
            await session.execute(
                insert(DocumentUpdate),
                [
                    {"id": uuid.uuid4(), "document_id": document_id, "seq": start + i + 1, "update": data}
                    for i, data in enumerate(chunk)
                ],
            )
        await session.execute(
            update(Document)
            .where(Document.id == document_id)
            .values(last_seq=edits, size_bytes=sum(map(len, rows)))
        )
        await session.commit()
    expected = str(text)
    hub = Hub.from_settings(settings)
    await hub.start()

    async def measure(label: str, step: Any) -> Any:
        tracemalloc.start()
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        value = await step()
        elapsed = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(
            f"  {label:<44}{elapsed:>8.2f} s   peak Python allocations {peak / 2**20:>7.1f} MiB"
            f"   process max RSS {rss1 / 1024:>6.0f} MiB (+{(rss1 - rss0) / 1024:.0f})"
        )
        return value

    async def load() -> DocumentReplica:
        replica = DocumentReplica(hub, session_factory, str(document_id), replay_updates=1000)
        await replica.start()
        return replica

    replica = await measure(f"load: replay the log of {edits} updates", load)
    assert str(replica.doc.get("content", type=Text)) == expected
    await replica.stop()

    async def compact() -> Any:
        async with session_factory() as session:
            done = await compaction.compact(session, document_id, snapshot_interval_s=0, max_auto_snapshots=5)
            await session.commit()
            return done

    done = await measure("compact: merge the log into the stored state", compact)
    print(
        f"    -> state {done.state_bytes / 1e3:.0f} kB (log {log_bytes / 1e3:.0f} kB), version {done.version}"
    )
    replica = await measure("load again: from the compacted state", load)
    assert str(replica.doc.get("content", type=Text)) == expected

    async def sync() -> bytes:
        return replica.update_for(None)

    whole = await measure("sync: the whole document for a new client", sync)
    fresh = Doc()
    fresh.apply_update(whole)
    assert str(fresh.get("content", type=Text)) == expected
    print(f"    -> {len(whole) / 1e3:.0f} kB; the text is {len(expected)} characters; all steps agree on it")
    await replica.stop()
    await hub.stop()
    await engine.dispose()


# ---------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workload", choices=("all", "propagation", "large"), default="all")
    parser.add_argument(
        "--servers", default=",".join(SERVERS), help="comma-separated, of " + ", ".join(SERVERS)
    )
    parser.add_argument("--subscribers", default="50,200")
    parser.add_argument("--rate", type=float, default=100.0, help="edits per second")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of editing per case")
    parser.add_argument(
        "--appliers",
        default="all",
        help="how many subscribers apply and time every update (the others count): a number, or all",
    )
    parser.add_argument("--edits", type=int, default=100_000, help="edits of the large document")
    parser.add_argument(
        "--profile", action="store_true", help="run SyncForge under cProfile and print the top"
    )
    parser.add_argument(
        "--production",
        action="store_true",
        help="only the production-mode case and its baseline: --servers syncforge,syncforge-production",
    )
    parser.add_argument("--quick", action="store_true", help="20 subscribers, 4 s, 10,000 edits")
    args = parser.parse_args(argv)
    if args.appliers != "all" and not args.appliers.isdigit():
        parser.error("--appliers: a number, or all")
    if args.production:
        args.servers = "syncforge,syncforge-production"
    if args.quick:
        args.subscribers, args.duration, args.edits = "20", 4.0, 10_000
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bench.raise_fd_limit()
    servers = [s for s in args.servers.split(",") if s]
    with tempfile.TemporaryDirectory(prefix="syncforge-docbench-") as tmp:
        workdir = Path(tmp)
        secret = secrets.token_urlsafe(32)
        if args.workload in ("all", "propagation"):
            for subscribers in (int(s) for s in args.subscribers.split(",")):
                rows = [run_propagation(kind, subscribers, args, workdir, secret) for kind in servers]
                print_propagation(rows, subscribers, args.rate)
        if args.workload in ("all", "large"):
            asyncio.run(run_large(args.edits, workdir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
