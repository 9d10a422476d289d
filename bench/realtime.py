"""Realtime fan-out benchmark: SyncForge over graphql-transport-ws against a raw Starlette WebSocket relay.

Each workload runs twice in the same invocation, once against a fresh `syncforge serve` (embedded default:
temporary SQLite file, in-memory pub/sub) and once against bench/raw_relay.py, both pinned to one core
(`taskset -c 0`). The load generator runs in separate processes on the other cores and reports its own CPU.
Everything talks to 127.0.0.1; every phase is bounded in count and in time.

Workloads (issue 4, "Benchmarks"):
  cursors   one room of N clients, each moving at 20 Hz for D seconds (N from --clients); every client must
            end with every other client's latest position
  events    S subscribers of roomEvents, one publisher at R events/s (no batching)
  presence  C connections joining one room, then C connections joining rooms of 10
  idle      I idle connections, each subscribed to presence and cursors of a room: RSS per connection

Printed per workload and server: p50/p95/p99 latency from send to receipt (the send time travels in the
payload: the cursor's x, the event's payload.ts; for presence, the joiner's subscribe time), deliveries/s,
the fraction of expected deliveries received, server CPU seconds (utime+stime from /proc/<pid>/stat over the
measured window), CPU µs per delivery, peak RSS (VmHWM), the load generator's CPU, and SyncForge / raw ratios.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import collections
import contextlib
import json
import multiprocessing as mp
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
HOST = "127.0.0.1"
SERVER_CORE = 0
TICK_S = 0.05  # the cursor tick of both servers, and the clients' move period (20 Hz)
MOVE_SLOTS = 10  # movers are spread over this many slots of each 50 ms period
CLK_TCK = os.sysconf("SC_CLK_TCK")
PROTOCOL = "graphql-transport-ws"
USER_PREFIX = "bench-"
ROOM_MAIN = "bench-main"
ACCESS = ["read", "write", "presence", "comment"]
PASSWORD = "correct horse battery staple"

PRESENCE_SUB = (
    "subscription($room: UUID!, $presence: JSON) { roomPresence(roomId: $room, presence: $presence) {"
    " kind users { userId connections { connectionId } } joins { userId connections { connectionId } }"
    " leaves { userId connections { connectionId } } updates { userId } } }"
)
CURSORS_SUB = "subscription($room: UUID!) { cursors(roomId: $room) { cursors { connectionId userId x y } } }"
EVENTS_SUB = "subscription($room: UUID!) { roomEvents(roomId: $room) { type payload } }"
MOVE = "mutation($room: UUID!, $x: Float!, $y: Float!) { moveCursor(roomId: $room, x: $x, y: $y) }"
BROADCAST = (
    "mutation($room: UUID!, $type: String!, $payload: JSON!) "
    "{ broadcastEvent(roomId: $room, type: $type, payload: $payload) }"
)
# What each workload needs from the SyncForge schema (checked by introspection of the running server).
NEEDS = {
    "cursors": ("createRoom", "moveCursor", "cursors"),
    "events": ("createRoom", "broadcastEvent", "roomEvents"),
    "presence": ("createRoom", "roomPresence"),
    "idle": ("createRoom",),  # subscribes to whichever of roomPresence and cursors exist
}
SIGN_UP = "mutation($input: SignUpInput!) { signUp(input: $input) { accessToken } }"
CREATE_ORG = (
    "mutation($input: CreateOrganizationInput!) { createOrganization(input: $input) { id maxRooms } }"
)
LOG_IN = "mutation($input: LogInInput!) { logIn(input: $input) { accessToken } }"
MAX_PARTICIPANTS = 10_000
CREATE_KEY = """mutation($org: UUID!, $input: CreateApiKeyInput!) {
  createApiKey(organizationId: $org, input: $input) { secret } }"""
CREATE_TOKEN = "mutation($input: CreateEndUserTokenInput!) { createEndUserToken(input: $input) { token } }"
CREATE_ROOM = """mutation($org: UUID!, $input: CreateRoomInput!) {
  createRoom(organizationId: $org, input: $input) { id } }"""
SCHEMA_FIELDS = """{ __schema { mutationType { fields { name } } subscriptionType { fields { name } } }
  room: __type(name: "CreateRoomInput") { inputFields { name } } }"""


EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Disconnect|Timeout|Closed)\w*(:|$)")
HEX_ID = re.compile(r"[0-9a-f]{16,}")


def user_id(index: int) -> str:
    return f"{USER_PREFIX}{index:05d}"


def user_index(value: Any) -> int | None:
    if isinstance(value, str) and value.startswith(USER_PREFIX):
        with contextlib.suppress(ValueError):
            return int(value[len(USER_PREFIX) :])
    return None


# --------------------------------------------------------------------------------------------- /proc


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (all threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    fields = data[data.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) in KiB."""
    found: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                name, value = line.split(":", 1)
                found[name] = int(value.split()[0])
    return found


class Sampler(threading.Thread):
    """Samples a server's CPU and memory every 50 ms, so any window can be measured afterwards."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.samples: list[tuple[float, float, int, int]] = []  # (monotonic, cpu s, VmRSS, VmHWM)
        self._stop_event = threading.Event()

    def sample(self) -> None:
        with contextlib.suppress(OSError, ValueError, KeyError, IndexError):
            cpu = proc_cpu_seconds(self.pid)
            memory = proc_memory_kib(self.pid)
            self.samples.append((time.monotonic(), cpu, memory["VmRSS"], memory["VmHWM"]))

    def run(self) -> None:
        while not self._stop_event.wait(0.05):
            self.sample()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(2)
        self.sample()

    def wait_quiet(self, earliest: float, latest: float, busy: float = 0.1) -> float:
        """Wait until `earliest`, then until the server used less than `busy` of a core over the last half
        second (it has caught up with its backlog), or until `latest`. Returns the time it stopped waiting."""
        while True:
            now = time.monotonic()
            recent = [s for s in self.samples[-20:] if s[0] >= now - 0.6]
            quiet = (
                len(recent) >= 2 and (recent[-1][1] - recent[0][1]) / (recent[-1][0] - recent[0][0]) < busy
            )
            if now >= latest or (now >= earliest and quiet):
                return now
            time.sleep(0.05)

    def at(self, t: float) -> tuple[float, int, int]:
        """(cpu, rss, hwm) at time t, cpu interpolated between the samples around it."""
        before = [s for s in self.samples if s[0] <= t]
        after = [s for s in self.samples if s[0] >= t]
        if not before:
            s = after[0]
            return s[1], s[2], s[3]
        if not after:
            s = before[-1]
            return s[1], s[2], s[3]
        a, b = before[-1], after[0]
        if b[0] == a[0]:
            return a[1], a[2], a[3]
        cpu = a[1] + (b[1] - a[1]) * (t - a[0]) / (b[0] - a[0])
        return cpu, a[2], max(a[3], b[3])


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def other_cores() -> set[int]:
    cores = os.sched_getaffinity(0)
    rest = cores - {SERVER_CORE}
    return rest or cores


# ------------------------------------------------------------------------------------------- servers


class ServerProcess:
    """One server subprocess pinned to SERVER_CORE; its log goes to a file in the work directory."""

    def __init__(
        self, kind: str, workdir: Path, env: dict[str, str], label: str, profile: bool = False
    ) -> None:
        self.kind = kind
        self.profile_path = workdir / f"{label}.prof" if profile and kind == "syncforge" else None
        self.workdir = workdir
        self.env = env
        self.port = free_port()
        self.log_path = workdir / f"{label}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def http_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        return (
            f"ws://{HOST}:{self.port}/graphql" if self.kind == "syncforge" else f"ws://{HOST}:{self.port}/ws"
        )

    def command(self) -> list[str]:
        if self.kind == "syncforge":
            script = Path(sys.executable).parent / "syncforge"
            base = [str(script)] if script.exists() else [sys.executable, "-m", "app.cli"]
            if self.profile_path is not None:
                base = [sys.executable, "-m", "cProfile", "-o", str(self.profile_path), "-m", "app.cli"]
            command = [*base, "serve", "--host", HOST, "--port", str(self.port)]
        else:
            command = [sys.executable, str(BENCH / "raw_relay.py"), "--host", HOST, "--port", str(self.port)]
        return command

    def start(self, timeout: float = 90.0) -> None:
        command = self.command()
        preexec: Callable[[], None] | None = None
        if shutil.which("taskset"):
            command = ["taskset", "-c", str(SERVER_CORE), *command]
        else:

            def preexec() -> None:
                os.sched_setaffinity(0, {SERVER_CORE})

        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                command,
                env=self.env,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=preexec,
            )
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if self.kind == "syncforge":
                    response = httpx.post(
                        f"{self.http_url}/graphql", json={"query": "{ __typename }"}, timeout=2
                    )
                else:
                    response = httpx.get(f"{self.http_url}/health", timeout=2)
                if response.status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.kind} did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)  # uvicorn shuts down gracefully on both
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def profile_summary(self, top: int = 25) -> str:
        """The functions that took the most time in the server, when it ran under cProfile."""
        import io
        import pstats

        if self.profile_path is None or not self.profile_path.exists():
            return ""
        out = io.StringIO()
        stats = pstats.Stats(str(self.profile_path), stream=out)
        stats.sort_stats("tottime").print_stats(top)
        stats.sort_stats("cumulative").print_stats(top)
        return out.getvalue()

    def log_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def log_problems(self) -> tuple[int, list[str]]:
        """How many log lines are warnings or errors, and the most frequent exceptions ("3x Error: ...")."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return 0, []
        lines = text.splitlines()
        count = sum(any(word in line for word in ("ERROR", "CRITICAL", "WARNING")) for line in lines)
        exceptions: collections.Counter[str] = collections.Counter()
        for line in lines:
            match = EXCEPTION_LINE.match(line)
            if match:
                exceptions[HEX_ID.sub("…", line.split(" (Background on this error")[0])[:160]] += 1
        return count, [f"{n}x {line}" for line, n in exceptions.most_common(3)]


@dataclass
class Organization:
    id: str
    max_rooms: int
    publishable: str
    secret: str
    rooms: dict[str, str] = field(default_factory=dict)  # slug -> id
    tokens: dict[int, str] = field(default_factory=dict)  # user index -> end-user token


@dataclass
class SyncForgeAccount:
    """The developer, organizations, keys, rooms and end-user tokens the bench uses, all made through the
    public GraphQL API. The SQLite file and the secret key outlive each server process, so all of this is
    made once per run. A free organization has few active rooms, so rooms are spread over as many
    organizations as needed, each with its own keys; a client gets the keys of its room's organization."""

    email: str = field(default_factory=lambda: f"bench-{secrets.token_hex(5)}@example.com")
    dev_token: str = ""
    dev_token_at: float = 0.0
    orgs: list[Organization] = field(default_factory=list)
    room_org: dict[str, Organization] = field(default_factory=dict)
    operations: set[str] = field(default_factory=set)
    room_inputs: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)

    async def _data(
        self, http: Any, query: str, headers: dict[str, str] | None = None, **variables: Any
    ) -> Any:
        response = await http.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
        body = response.json()
        if body.get("errors"):
            name = query.split("{", 2)[1].split("(")[0].strip() if "{" in query else query[:40]
            error = body["errors"][0]
            raise RuntimeError(
                f"{name}: {(error.get('extensions') or {}).get('code')} {error.get('message')}"
            )
        return body["data"]

    async def _developer(self, http: Any) -> dict[str, str]:
        # Access tokens live 15 minutes: sign in again well before that.
        if not self.dev_token:
            signed = await self._data(
                http, SIGN_UP, input={"email": self.email, "password": PASSWORD, "name": "Bench"}
            )
            self.dev_token, self.dev_token_at = signed["signUp"]["accessToken"], time.monotonic()
        elif time.monotonic() - self.dev_token_at > 600:
            logged = await self._data(http, LOG_IN, input={"email": self.email, "password": PASSWORD})
            self.dev_token, self.dev_token_at = logged["logIn"]["accessToken"], time.monotonic()
        return {"authorization": f"Bearer {self.dev_token}"}

    async def _new_org(self, http: Any) -> Organization:
        dev = await self._developer(http)
        slug = f"bench-{secrets.token_hex(4)}"
        org = (await self._data(http, CREATE_ORG, dev, input={"name": "Bench", "slug": slug}))[
            "createOrganization"
        ]
        keys: dict[str, str] = {}
        for kind in ("PUBLISHABLE", "SECRET"):
            key_input = {"name": f"bench {kind.lower()}", "kind": kind, "rateLimit": 1_000_000}
            created = await self._data(http, CREATE_KEY, dev, org=org["id"], input=key_input)
            keys[kind] = created["createApiKey"]["secret"]
        organization = Organization(org["id"], int(org["maxRooms"]), keys["PUBLISHABLE"], keys["SECRET"])
        self.orgs.append(organization)
        return organization

    async def inspect(self, base_url: str) -> None:
        import httpx

        async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
            schema = await self._data(http, SCHEMA_FIELDS)
        self.operations = {f["name"] for f in schema["__schema"]["mutationType"]["fields"]}
        subscription = schema["__schema"].get("subscriptionType") or {"fields": []}
        self.operations |= {f["name"] for f in subscription["fields"]}
        self.room_inputs = {f["name"] for f in (schema.get("room") or {}).get("inputFields") or []}

    async def prepare(self, base_url: str, specs: list[dict[str, Any]]) -> dict[str, str]:
        """Make the rooms and tokens these clients need; fill in each spec's apiKey and token. Returns
        slug -> room id."""
        import httpx

        async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
            if not self.orgs:
                await self._new_org(http)
            for slug in dict.fromkeys(spec["room"] for spec in specs if spec.get("room")):
                if slug not in self.room_org:
                    await self._room(http, slug)
            missing = [
                (self.room_org[spec["room"]], spec["i"])
                for spec in specs
                if spec["i"] not in self.room_org[spec["room"]].tokens
            ]
            await self._mint(http, missing)
        for spec in specs:
            org = self.room_org[spec["room"]]
            spec["api_key"], spec["token"] = org.publishable, org.tokens[spec["i"]]
        return {slug: org.rooms[slug] for slug, org in self.room_org.items()}

    async def _room(self, http: Any, slug: str) -> None:
        org = next((o for o in self.orgs if len(o.rooms) < o.max_rooms), None) or await self._new_org(http)
        room_input: dict[str, Any] = {"name": slug, "slug": slug, "access": "PRIVATE"}
        if "maxParticipants" in self.room_inputs:
            room_input["maxParticipants"] = MAX_PARTICIPANTS
        created = await self._data(
            http, CREATE_ROOM, await self._developer(http), org=org.id, input=room_input
        )
        org.rooms[slug] = created["createRoom"]["id"]
        self.room_org[slug] = org

    async def _mint(self, http: Any, wanted: list[tuple[Organization, int]]) -> None:
        semaphore = asyncio.Semaphore(8)

        async def mint(org: Organization, index: int) -> None:
            token_input = {
                "userId": user_id(index),
                "userInfo": {"name": f"Bench {index}", "color": f"#{index * 2654435761 % 0xFFFFFF:06x}"},
                "permissions": [{"room": f"{USER_PREFIX}*", "access": ACCESS}],
                "ttlSeconds": 6 * 3600,
            }
            async with semaphore:
                minted = await self._data(
                    http, CREATE_TOKEN, {"authorization": f"Bearer {org.secret}"}, input=token_input
                )
            org.tokens[index] = minted["createEndUserToken"]["token"]

        await asyncio.gather(*(mint(org, index) for org, index in wanted))


# -------------------------------------------------------------------------------------- load generator
# Runs in separate processes (multiprocessing, spawn) on the cores the server does not use. The parent
# sends a plan; the control messages that follow are ("ready"), ("go"), ("active-done"), ("stop"),
# cursors' ("finals") / ("expected"), ("result") and ("close"), each a tuple (tag, payload).


class Client:
    """One WebSocket connection of the load generator, speaking either protocol."""

    def __init__(self, gen: LoadGen, spec: dict[str, Any]) -> None:
        self.gen = gen
        self.spec = spec
        self.i: int = spec["i"]
        self.user = user_id(self.i)
        self.own = f'"{self.user}"'.encode()
        self.room: str | None = gen.rooms.get(spec.get("room") or "")
        self.observer: bool = spec.get("observer", False)
        self.ws: Any = None
        self.reader: asyncio.Task[None] | None = None
        self.ok = False
        self.closing = False
        self.compressed = False
        self.ops = 0
        self.seq = 0
        # cursors
        self.states = 0
        self.frames = 0
        self.dups = 0
        self.view: dict[str, tuple[Any, Any]] = {}
        # answers to mutations sent over the socket
        self.answers_ok = 0
        self.answers_err = 0
        self.answered = 0  # operations sent over the socket that got their complete (or error)
        # events
        self.events = 0
        self.event_dups = 0
        self.seen: bytearray | None = None
        # presence
        self.synced = asyncio.Event()
        self.t_start = 0.0
        self.t_ack = 0.0
        self.t_sub = 0.0
        self.t_sync = 0.0
        self.sync_users = array.array("i")
        self.joins_u = array.array("i")
        self.joins_t = array.array("d")
        self.resyncs = 0
        self.leaves = 0
        if gen.gql:
            self._move_head = (
                '{"type":"subscribe","payload":{"query":'
                + json.dumps(MOVE)
                + ',"variables":{"room":'
                + json.dumps(self.room)
                + ',"x":'
            )
        else:
            self._move_head = '{"t":"move","x":'

    async def connect(self) -> None:
        from websockets.asyncio.client import connect

        gen = self.gen
        self.t_start = time.monotonic()
        self.ws = await connect(
            gen.url,
            subprotocols=[PROTOCOL] if gen.gql else None,  # type: ignore[list-item]
            compression="deflate" if gen.client_deflate else None,
            max_size=2**24,
            ping_interval=None,
            open_timeout=60,
            close_timeout=2,
        )
        extensions = self.ws.response.headers.get("Sec-WebSocket-Extensions", "") if self.ws.response else ""
        self.compressed = "permessage-deflate" in extensions
        if gen.gql:
            init = {
                "type": "connection_init",
                "payload": {"apiKey": self.spec["api_key"], "token": self.spec["token"]},
            }
            await self.ws.send(json.dumps(init))
            ack = json.loads(await asyncio.wait_for(self.ws.recv(), 60))
            if ack.get("type") != "connection_ack":
                raise RuntimeError(f"connection_init answered {ack}")
        else:
            await self.ws.send(json.dumps({"t": "hello", "room": self.room, "id": self.user}))
        self.t_ack = time.monotonic()
        self.reader = asyncio.create_task(self.read_loop())

    async def subscribe(self, what: str) -> None:
        if not self.gen.gql:
            await self.ws.send(json.dumps({"t": "sub", "what": what}))
            return
        query = {"presence": PRESENCE_SUB, "cursors": CURSORS_SUB, "events": EVENTS_SUB}[what]
        variables: dict[str, Any] = {"room": self.room}
        if what == "presence":
            variables["presence"] = {"bench": True}
        message = {"id": what[0], "type": "subscribe", "payload": {"query": query, "variables": variables}}
        await self.ws.send(json.dumps(message))

    @property
    def busy(self) -> bool:
        """Too many answers pending: a sensible client holds its next move (or event) back."""
        limit = self.gen.params.get("max_inflight", 0)
        return self.gen.gql and limit > 0 and self.ops - self.answered >= limit

    async def move(self, x: float, y: float) -> None:
        if self.gen.gql:
            self.ops += 1
            text = f'{self._move_head}{x!r},"y":{y!r}}}}},"id":"m{self.ops}"}}'
        else:
            text = f'{self._move_head}{x!r},"y":{y!r}}}'
        await self.ws.send(text)

    async def event(self, payload: dict[str, Any]) -> None:
        if self.gen.gql:
            self.ops += 1
            variables = {"room": self.room, "type": "bench", "payload": payload}
            message = {
                "id": f"b{self.ops}",
                "type": "subscribe",
                "payload": {"query": BROADCAST, "variables": variables},
            }
        else:
            message = {"t": "event", "type": "bench", "payload": payload}
        await self.ws.send(json.dumps(message))

    async def read_loop(self) -> None:
        from websockets.exceptions import ConnectionClosed

        recv = self.ws.recv
        handle = self.gen.handle
        clock = time.monotonic
        try:
            while True:
                frame = await recv(decode=False)
                handle(self, frame, clock())
        except ConnectionClosed as exc:
            self.ok = False
            if not (self.gen.closing or self.closing):
                received = exc.rcvd
                reason = f"{received.code} {received.reason}" if received else "no close frame"
                self.gen.closes[f"closed by server: {reason}"[:160]] += 1
        except Exception as exc:  # a bug in the handler must not go unnoticed
            self.gen.note(f"reader: {exc!r}")

    async def close(self) -> None:
        self.closing = True
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), 3)
        if self.reader is not None:
            self.reader.cancel()


class Controlled:
    """A load generator's side of its control channel with the parent, and its error counts."""

    control: Connection
    errors: collections.Counter[str]

    def send(self, tag: str, payload: Any = None) -> None:
        self.control.send((tag, payload))

    async def receive(self, expected: str) -> Any:
        tag, payload = await asyncio.get_running_loop().run_in_executor(None, self.control.recv)
        if tag != expected:
            raise RuntimeError(f"expected {expected!r} from the parent, got {tag!r}")
        return payload

    def note(self, message: str) -> None:
        self.errors[message[:200]] += 1


class LoadGen(Controlled):
    def __init__(self, control: Connection, plan: dict[str, Any]) -> None:
        self.control = control
        self.plan = plan
        server = plan["server"]
        self.gql = server["kind"] == "syncforge"
        self.url: str = server["url"]
        self.client_deflate: bool = server["client_deflate"]
        self.rooms: dict[str, str] = plan["rooms"]
        self.params: dict[str, Any] = plan["params"]
        self.base = 0.0
        self.counting = False
        self.parse_all = False
        self.closing = False
        self.errors: collections.Counter[str] = collections.Counter()
        self.closes: collections.Counter[str] = collections.Counter()
        self.lat = array.array("d")
        self.pending: set[asyncio.Future[None]] = set()
        self.clients = [Client(self, spec) for spec in plan["clients"]]

    # frames
    def handle(self, c: Client, frame: bytes, now: float) -> None:
        if b'"x"' in frame:
            self.on_cursors(c, frame, now)
            return
        message = json.loads(frame)
        if not self.gql:
            kind = message.get("t")
            if kind == "presence":
                self.on_presence(c, message, now)
            elif kind == "event":
                self.on_event(c, message, now)
            return
        kind = message.get("type")
        op = str(message.get("id", ""))
        if kind == "next":
            payload = message.get("payload") or {}
            errors = payload.get("errors")
            if op[:1] in ("m", "b"):
                if errors:
                    c.answers_err += 1
                    self.note(f"{'moveCursor' if op[0] == 'm' else 'broadcastEvent'}: {self._error(errors)}")
                else:
                    c.answers_ok += 1
                return
            if errors:
                self.note(f"subscription {op}: {self._error(errors)}")
                return
            data = payload.get("data") or {}
            if op == "p":
                self.on_presence(c, data.get("roomPresence"), now)
            elif op == "e":
                self.on_event(c, data.get("roomEvents"), now)
        elif kind == "error":
            if op[:1] in ("m", "b"):
                c.answers_err += 1
                c.answered += 1
            self.note(f"error for operation {op[:1]}: {self._error(message.get('payload'))}")
        elif kind == "complete":
            if op[:1] in ("m", "b"):
                c.answered += 1
            elif op in ("p", "c", "e") and not self.closing:
                self.note(f"subscription {op} completed by the server")
        elif kind == "ping":
            task = asyncio.ensure_future(self._pong(c))
            self.pending.add(task)
            task.add_done_callback(self.pending.discard)

    @staticmethod
    async def _pong(c: Client) -> None:
        with contextlib.suppress(Exception):
            await c.ws.send('{"type":"pong"}')

    @staticmethod
    def _error(errors: Any) -> str:
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = errors[0]
            code = (first.get("extensions") or {}).get("code", "")
            return f"{code} {first.get('message', '')}".strip()
        return str(errors)[:150]

    def on_cursors(self, c: Client, frame: bytes, now: float) -> None:
        counting = self.counting
        if counting:
            c.frames += 1
        if (c.observer and counting) or self.parse_all:
            try:
                message = json.loads(frame)
                entries = message["payload"]["data"]["cursors"]["cursors"] if self.gql else message["cursors"]
            except (KeyError, TypeError, ValueError):
                self.note(f"unreadable cursors frame: {frame[:120]!r}")
                return
            base = self.base
            for entry in entries:
                uid = entry.get("userId")
                if uid == c.user:
                    continue
                position = (entry.get("x"), entry.get("y"))
                if c.view.get(uid) == position:
                    if counting:
                        c.dups += 1
                    continue
                c.view[uid] = position
                if counting:
                    c.states += 1
                    if c.observer:
                        self.lat.append(now - base - position[0])
        elif counting:
            c.states += frame.count(b'"x"') - (c.own in frame)

    def on_event(self, c: Client, event: Any, now: float) -> None:
        if not self.counting or not isinstance(event, dict):
            return
        payload = event.get("payload") or {}
        seq, ts = payload.get("seq"), payload.get("ts")
        if not isinstance(seq, int) or not isinstance(ts, float | int):
            self.note(f"unexpected event {str(event)[:100]}")
            return
        if c.seen is not None and 0 <= seq < len(c.seen):
            if c.seen[seq]:
                c.event_dups += 1
                return
            c.seen[seq] = 1
        c.events += 1
        self.lat.append(now - self.base - ts)

    def on_presence(self, c: Client, state: Any, now: float) -> None:
        if not isinstance(state, dict):
            return
        kind = str(state.get("kind", "")).upper()
        if kind == "SYNC":
            users = [user_index(u.get("userId")) for u in state.get("users") or []]
            c.sync_users.extend(u for u in users if u is not None)
            if c.synced.is_set():
                c.resyncs += 1
            else:
                c.t_sync = now
                c.synced.set()
            return
        for joined in state.get("joins") or []:
            u = user_index(joined.get("userId"))
            if u is not None and u != c.i:
                c.joins_u.append(u)
                c.joins_t.append(now)
        c.leaves += len(state.get("leaves") or [])

    # helpers
    async def bounded(self, jobs: Iterable[Awaitable[None]], limit: int) -> None:
        semaphore = asyncio.Semaphore(limit)

        async def run(job: Awaitable[None]) -> None:
            async with semaphore:
                await job

        await asyncio.gather(*(run(job) for job in jobs))

    async def open(self, c: Client, subscriptions: Iterable[str], wait_sync: bool = False) -> None:
        try:
            await c.connect()
            c.t_sub = time.monotonic()
            for what in subscriptions:
                await c.subscribe(what)
            c.ok = True
            if wait_sync:
                await asyncio.wait_for(c.synced.wait(), self.params["sync_timeout"])
        except TimeoutError:
            self.note("no presence SYNC within the timeout")
        except Exception as exc:
            c.ok = False
            self.note(f"connect/subscribe: {type(exc).__name__}: {exc}")

    @staticmethod
    async def sleep_until(t: float) -> None:
        delay = t - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    def cpu(self) -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    # the run
    async def run(self) -> None:
        workload = self.plan["workload"]
        subscriptions: list[str] = self.params.get("subscriptions", [])
        if workload in ("cursors", "events"):
            await self.bounded(
                (
                    self.open(c, [] if c.spec.get("role") == "publisher" else subscriptions)
                    for c in self.clients
                ),
                64,
            )
        elif workload == "idle":
            # Warm up: a few connections come and go first, so that code paths loaded lazily on the first
            # connection are not counted as memory per connection.
            warm = self.clients[: self.params["warmup"]]
            await self.bounded((self.open(c, subscriptions, "presence" in subscriptions) for c in warm), 16)
            await asyncio.gather(*(c.close() for c in warm))
            self.clients = [Client(self, spec) for spec in self.plan["clients"]]
            self.errors.clear()
        self.send("ready", {"connected": sum(c.ok for c in self.clients)})
        go = await self.receive("go")
        self.base, t0, t_end = go["base"], go["t0"], go["t_end"]
        await self.sleep_until(t0)
        cpu0 = self.cpu()
        self.counting = True
        extra: dict[str, Any] = {}
        if workload == "cursors":
            extra = await self.run_cursors(t0, t_end)
        elif workload == "events":
            extra = await self.run_events(t0, t_end)
        elif workload == "presence":
            await asyncio.gather(*(self.join(c, t0) for c in self.clients))
        elif workload == "idle":
            await self.bounded(
                (self.open(c, subscriptions, "presence" in subscriptions) for c in self.clients), 32
            )
        self.send("active-done", {"t": time.monotonic()})
        await self.receive("stop")
        self.counting = False
        cpu1 = self.cpu()
        result = self.collect(workload)
        result.update(extra)
        if workload == "cursors":
            result["final"] = await self.final_positions()
        result.update(
            cpu=cpu1 - cpu0,
            errors=dict(self.errors),
            closes=dict(self.closes),
            compressed=sum(c.compressed for c in self.clients),
        )
        self.send("result", result)
        await self.receive("close")
        self.closing = True
        await self.bounded((c.close() for c in self.clients), 256)

    async def run_cursors(self, t0: float, t_end: float) -> dict[str, Any]:
        groups: list[list[Client]] = [[] for _ in range(MOVE_SLOTS)]
        for c in self.clients:
            groups[c.i % MOVE_SLOTS].append(c)
        slot = TICK_S / MOVE_SLOTS
        moves = skipped = held = 0
        k = 0
        clock = time.monotonic
        while True:
            t = t0 + k * slot
            if t >= t_end:
                break
            delay = t - clock()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -TICK_S:  # the generator fell behind: skip rather than burst
                behind = int(-delay / slot)
                skipped += behind
                k += behind
                continue
            for c in groups[k % MOVE_SLOTS]:
                if not c.ok:
                    continue
                if c.busy:
                    held += 1
                    continue
                c.seq += 1
                try:
                    await c.move(round(clock() - self.base, 6), float(c.seq))
                except Exception as exc:
                    c.ok = False
                    self.note(f"move: {type(exc).__name__}: {exc}")
                moves += 1
            k += 1
        return {"moves": moves, "skipped_slots": skipped, "held": held}

    async def run_events(self, t0: float, t_end: float) -> dict[str, Any]:
        rate = self.params["event_rate"]
        capacity = int(rate * (t_end - t0)) + 10
        for c in self.clients:
            c.seen = bytearray(capacity)
        publishers = [c for c in self.clients if c.spec.get("role") == "publisher" and c.ok]
        sent = held = 0
        if publishers:
            publisher = publishers[0]
            k = 0
            while True:
                t = t0 + k / rate
                if t >= t_end:
                    break
                await self.sleep_until(t)
                if publisher.busy:
                    held += 1
                    k += 1
                    continue
                try:
                    await publisher.event({"ts": round(time.monotonic() - self.base, 6), "seq": k})
                    sent += 1
                except Exception as exc:
                    self.note(f"publish: {type(exc).__name__}: {exc}")
                    break
                k += 1
        return {"sent": sent, "held": held}

    async def join(self, c: Client, t0: float) -> None:
        await self.sleep_until(t0 + c.spec["at"])
        await self.open(c, ["presence"], wait_sync=True)

    def collect(self, workload: str) -> dict[str, Any]:
        clients = self.clients
        result: dict[str, Any] = {
            "clients_ok": sum(c.ok for c in clients),
            "answers_ok": sum(c.answers_ok for c in clients),
            "answers_err": sum(c.answers_err for c in clients),
            "lat": self.lat,
        }
        if workload == "cursors":
            result.update(
                states=sum(c.states for c in clients),
                frames=sum(c.frames for c in clients),
                dups=sum(c.dups for c in clients),
                observer_states=sum(c.states for c in clients if c.observer),
            )
        elif workload == "events":
            subscribers = [c for c in clients if c.spec.get("role") != "publisher"]
            result.update(
                received=sum(c.events for c in subscribers),
                dups=sum(c.event_dups for c in subscribers),
                subscribers_ok=sum(c.ok for c in subscribers),
            )
        else:
            result["clients"] = [
                {
                    "i": c.i,
                    "room": c.spec.get("room"),
                    "ok": c.ok,
                    "t_start": c.t_start,
                    "t_ack": c.t_ack,
                    "t_sub": c.t_sub,
                    "t_sync": c.t_sync,
                    "sync_users": c.sync_users,
                    "joins_u": c.joins_u,
                    "joins_t": c.joins_t,
                    "resyncs": c.resyncs,
                }
                for c in clients
            ]
        return result

    async def final_positions(self) -> dict[str, Any]:
        """Every client sends one last move; every client must end with everyone else's."""
        self.parse_all = True
        await asyncio.sleep(0.2)  # let what is still in flight arrive before the last moves
        finals: dict[str, tuple[float, float]] = {}
        clock = time.monotonic
        deadline = clock() + self.params["final_timeout"]
        # A client with its answers pending would hold its last move back: wait for the answers.
        while any(c.ok and c.busy for c in self.clients) and clock() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        for c in self.clients:
            if c.ok:
                c.seq += 1
                position = (round(clock() - self.base, 6), float(c.seq))
                try:
                    await c.move(*position)
                    finals[c.user] = position
                except Exception as exc:
                    self.note(f"final move: {type(exc).__name__}: {exc}")
        self.send("finals", finals)
        expected: dict[str, tuple[float, float]] = await self.receive("expected")
        receivers = [c for c in self.clients if c.ok]
        pending = set(range(len(receivers)))
        deadline = clock() + self.params["final_timeout"]
        while pending and clock() < deadline:
            await asyncio.sleep(0.25)
            for index in list(pending):
                c = receivers[index]
                if all(c.view.get(u) == p for u, p in expected.items() if u != c.user):
                    pending.discard(index)
        missing = stale = 0
        for index in pending:
            c = receivers[index]
            for u, p in expected.items():
                if u != c.user:
                    seen = c.view.get(u)
                    missing += seen is None
                    stale += seen is not None and seen != p
        return {
            "checked": len(receivers),
            "complete": len(receivers) - len(pending),
            "missing": missing,
            "stale": stale,
            "senders": len(expected),
        }


def loadgen_main(control: Connection, plan: dict[str, Any], cores: list[int]) -> None:
    run_loadgen(control, cores, lambda: LoadGen(control, plan).run())


def run_loadgen(
    control: Connection, cores: list[int], main: Callable[[], Awaitable[Any]], profile: str | None = None
) -> None:
    """A load generator process: pinned to `cores`, on uvloop when installed; any failure goes to
    the parent as ("error", traceback). `profile`: a path to write the generator's cProfile to."""
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, set(cores))
    try:
        try:
            import uvloop

            loop_factory: Any = uvloop.new_event_loop
        except ImportError:
            loop_factory = None
        profiler = None
        if profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(main())
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(profile)
    except Exception:
        with contextlib.suppress(Exception):
            control.send(("error", traceback.format_exc()))


# ------------------------------------------------------------------------------------------ one case


@dataclass
class Case:
    workload: str
    label: str
    clients: int
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    server: str
    skipped: str | None = None
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    rate: float | None = None
    fraction: float | None = None
    cpu: float | None = None
    us_per: float | None = None
    peak_mib: float | None = None
    loadgen_cpu: float | None = None
    loadgen_util: float | None = None
    notes: list[str] = field(default_factory=list)
    extra: dict[str, float] = field(default_factory=dict)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return values[min(len(values) - 1, int(q * len(values)))]


class Workers:
    """The load generator processes of one case, and the control messages to and from them."""

    def __init__(self, plans: list[dict[str, Any]], cores: list[int]) -> None:
        context = mp.get_context("spawn")
        self.pipes: list[Connection] = []
        self.procs: list[Any] = []
        for plan in plans:
            parent, child = context.Pipe()
            proc = context.Process(target=loadgen_main, args=(child, plan, cores), daemon=True)
            proc.start()
            child.close()
            self.pipes.append(parent)
            self.procs.append(proc)

    def send(self, tag: str, payloads: list[Any] | Any = None) -> None:
        for index, pipe in enumerate(self.pipes):
            payload = payloads[index] if isinstance(payloads, list) else payloads
            pipe.send((tag, payload))

    def expect(self, tag: str, timeout: float) -> list[Any]:
        deadline = time.monotonic() + timeout
        answers: list[Any] = []
        for index, pipe in enumerate(self.pipes):
            remaining = deadline - time.monotonic()
            if not pipe.poll(max(0.0, remaining)):
                raise TimeoutError(f"load generator {index}: no {tag!r} within {timeout:.0f} s")
            got, payload = pipe.recv()
            if got == "error":
                raise RuntimeError(f"load generator {index} failed:\n{payload}")
            if got != tag:
                raise RuntimeError(f"load generator {index}: expected {tag!r}, got {got!r}")
            answers.append(payload)
        return answers

    def cpu(self) -> float:
        total = 0.0
        for proc in self.procs:
            with contextlib.suppress(OSError, ValueError):
                total += proc_cpu_seconds(proc.pid)
        return total

    def finish(self) -> None:
        for proc in self.procs:
            proc.join(10)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)


def split(items: list[dict[str, Any]], parts: int) -> list[list[dict[str, Any]]]:
    return [items[k::parts] for k in range(parts)]


def build_specs(case: Case) -> list[dict[str, Any]]:
    """The clients of a case: user index, room slug, role (credentials are added for SyncForge)."""
    p = case.params
    n = case.clients
    if case.workload == "cursors":
        observers = set(range(0, n, max(1, n // max(1, p["observers"]))))
        return [{"i": i, "room": ROOM_MAIN, "observer": i in observers, "role": "mover"} for i in range(n)]
    if case.workload == "events":
        specs = [{"i": 0, "room": ROOM_MAIN, "role": "publisher"}]
        return specs + [{"i": i, "room": ROOM_MAIN, "role": "subscriber"} for i in range(1, n + 1)]
    if case.workload == "presence":
        rooms = p["rooms"]
        return [
            {"i": i, "room": room_slug(i % rooms) if rooms > 1 else ROOM_MAIN, "at": i / p["join_rate"]}
            for i in range(n)
        ]
    size = p["room_size"]
    return [{"i": i, "room": room_slug(i // size)} for i in range(n)]


def room_slug(index: int) -> str:
    return f"bench-r-{index:03d}"


def run_case(
    case: Case,
    server: ServerProcess,
    specs: list[dict[str, Any]],
    rooms: dict[str, str],
    args: argparse.Namespace,
    subscriptions: list[str],
) -> Outcome:
    outcome = Outcome(server=server.kind)
    cores = sorted(other_cores())
    procs = max(1, min(args.procs or len(cores), len(specs)))
    if case.workload == "events":
        # the publisher stays alone in the first process' share, subscribers are spread
        shares = [specs[:1] + specs[1::procs]] + [specs[1 + k :: procs] for k in range(1, procs)]
        shares = [s for s in shares if s]
    else:
        shares = split(specs, procs)
    plans = [
        {
            "workload": case.workload,
            "server": {
                "kind": server.kind,
                "url": server.ws_url,
                "client_deflate": args.client_deflate,
            },
            "rooms": rooms,
            "params": {**case.params, "subscriptions": subscriptions},
            "clients": share,
        }
        for share in shares
    ]
    sampler = Sampler(server.pid)
    sampler.start()
    workers = Workers(plans, cores)
    try:
        ready = workers.expect("ready", 300)
        connected = sum(r["connected"] for r in ready)
        duration = case.params.get("duration", 0.0)
        # The server may still be working through the connections and subscriptions: start when it is quiet.
        now = time.monotonic()
        sampler.wait_quiet(now + 0.5, now + args.quiesce_timeout * 2)
        t0 = time.monotonic() + 1.0
        base = t0 - 1.0
        t_end = t0 + duration
        loadgen_cpu0 = workers.cpu()
        workers.send("go", {"t0": t0, "t_end": t_end, "base": base})
        active_timeout = duration + case.params.get("active_timeout", 120)
        done = workers.expect("active-done", active_timeout + 60)
        t_active = max([d["t"] for d in done] + [t_end])
        t_stop = sampler.wait_quiet(t_active + args.settle, t_active + args.quiesce_timeout)
        workers.send("stop")
        loadgen_cpu1 = workers.cpu()
        if case.workload == "cursors":
            finals_parts = workers.expect("finals", 60)
            finals: dict[str, Any] = {}
            for part in finals_parts:
                finals.update(part)
            workers.send("expected", finals)
        results = workers.expect("result", args.final_timeout + 120)
        peak = proc_memory_kib(server.pid)["VmHWM"]
        workers.send("close")
    finally:
        sampler.stop()
        workers.finish()
    cpu0, rss0, _ = sampler.at(t0)
    cpu1, rss1, _ = sampler.at(t_stop)
    outcome.cpu = cpu1 - cpu0
    outcome.peak_mib = peak / 1024
    window = t_stop - t0
    outcome.loadgen_cpu = loadgen_cpu1 - loadgen_cpu0
    outcome.loadgen_util = outcome.loadgen_cpu / window / max(1, min(len(cores), len(plans)))
    latencies = sorted(x for r in results for x in r["lat"])
    if case.workload != "presence" and case.workload != "idle":
        outcome.p50, outcome.p95, outcome.p99 = (percentile(latencies, q) for q in (0.5, 0.95, 0.99))
    errors: collections.Counter[str] = collections.Counter()
    closes: collections.Counter[str] = collections.Counter()
    for r in results:
        errors.update(r["errors"])
        closes.update(r["closes"])
    compressed = sum(r["compressed"] for r in results)
    answers_ok = sum(r["answers_ok"] for r in results)
    answers_err = sum(r["answers_err"] for r in results)
    clients_ok = sum(r["clients_ok"] for r in results)
    notes = outcome.notes
    if clients_ok == 0:
        top = errors.most_common(1) or closes.most_common(1)
        outcome.skipped = f"failed: no client usable ({top[0][0] if top else 'no error seen'})"
        return outcome
    if case.workload == "cursors":
        summarize_cursors(case, outcome, results, duration, connected)
    elif case.workload == "events":
        summarize_events(outcome, results, duration)
    else:
        summarize_joins(case, outcome, results, t0, t_active, rss0, rss1)
    if outcome.cpu is not None and outcome.extra.get("deliveries"):
        outcome.us_per = outcome.cpu / outcome.extra["deliveries"] * 1e6
    if server.kind == "syncforge" and (answers_ok or answers_err):
        notes.append(f"mutation answers over the socket: {answers_ok} ok, {answers_err} errors")
    if compressed:
        notes.append(f"permessage-deflate negotiated on {compressed} connections")
    if case.workload in ("cursors", "events") and clients_ok < len(specs):
        notes.append(f"{len(specs) - clients_ok} of {len(specs)} connections not usable at the end")
    for message, count in errors.most_common(4):
        notes.append(f"{count}x {message}")
    for message, count in closes.most_common(3):
        notes.append(f"{count}x {message}")
    if outcome.loadgen_util is not None and outcome.loadgen_util > 0.7:
        notes.append(
            f"load generator busy {outcome.loadgen_util:.0%} of its cores: it may be the bottleneck here"
        )
    return outcome


def summarize_cursors(
    case: Case, o: Outcome, results: list[dict[str, Any]], duration: float, connected: int
) -> None:
    moves = sum(r["moves"] for r in results)
    states = sum(r["states"] for r in results)
    frames = sum(r["frames"] for r in results)
    dups = sum(r["dups"] for r in results)
    skipped = sum(r["skipped_slots"] for r in results)
    held = sum(r["held"] for r in results)
    slots = duration / (TICK_S / MOVE_SLOTS)
    if skipped > 0.01 * slots:
        o.notes.append(
            f"the load generator fell behind its schedule ({skipped} of {slots:.0f} move slots skipped): "
            "it may be the bottleneck here"
        )
    receivers = max(1, connected - 1)
    expected = moves * receivers
    o.rate = states / duration if duration else None
    o.fraction = states / expected if expected else None
    o.extra["deliveries"] = states
    final = {k: sum(r["final"][k] for r in results) for k in ("checked", "complete", "missing", "stale")}
    o.extra["final_ok"] = final["complete"] / final["checked"] if final["checked"] else 0.0
    o.notes.append(
        f"final positions: {final['complete']}/{final['checked']} clients have everyone's latest"
        + (
            f" ({final['missing']} missing, {final['stale']} stale entries)"
            if final["complete"] < final["checked"]
            else ""
        )
    )
    per_client = frames / max(1, connected) / duration if duration else 0
    o.notes.append(
        f"{moves} moves sent, {states} cursor states received, {per_client:.1f} frames/client/s"
        + (f", {dups} re-sent unchanged (observers)" if dups else "")
        + (f", generator skipped {skipped} slots" if skipped else "")
        + (f", {held} moves held back (answers pending)" if held else "")
    )


def summarize_events(o: Outcome, results: list[dict[str, Any]], duration: float) -> None:
    sent = sum(r.get("sent", 0) for r in results)
    held = sum(r.get("held", 0) for r in results)
    received = sum(r["received"] for r in results)
    subscribers = sum(r["subscribers_ok"] for r in results)
    dups = sum(r["dups"] for r in results)
    expected = sent * subscribers
    o.rate = received / duration if duration else None
    o.fraction = received / expected if expected else None
    o.extra["deliveries"] = received
    o.notes.append(
        f"{sent} events sent to {subscribers} subscribers, {received} received"
        + (f", {dups} duplicates" if dups else "")
        + (f", {held} events held back (answers pending)" if held else "")
    )


def summarize_joins(
    case: Case,
    o: Outcome,
    results: list[dict[str, Any]],
    t0: float,
    t_active: float,
    rss0: int,
    rss1: int,
) -> None:
    clients = [c for r in results for c in r["clients"]]
    ok = [c for c in clients if c["ok"]]
    t_sub = {c["i"]: c["t_sub"] for c in ok}
    synced = [c for c in ok if c["t_sync"]]
    connect_lat = sorted(c["t_ack"] - c["t_start"] for c in ok)
    sync_lat = sorted(c["t_sync"] - c["t_sub"] for c in synced)
    o.extra["connections"] = len(ok)
    if o.cpu is not None and ok:
        o.extra["cpu_ms_per_conn"] = o.cpu / len(ok) * 1000
    if case.workload == "idle":
        o.p50, o.p95, o.p99 = (percentile(sync_lat or connect_lat, q) for q in (0.5, 0.95, 0.99))
        o.extra["rss_kib_per_conn"] = (rss1 - rss0) / max(1, len(ok))
        o.notes.append(
            f"{len(ok)}/{len(clients)} connected, {len(synced)} got a presence SYNC; "
            f"RSS {rss0 / 1024:.1f} -> "
            f"{rss1 / 1024:.1f} MiB = {o.extra['rss_kib_per_conn']:.1f} KiB/connection; "
            f"connect+init p95 {fmt_ms(percentile(connect_lat, 0.95))} ms; "
            f"server CPU {o.extra.get('cpu_ms_per_conn', 0):.2f} ms/connection"
        )
        return
    # presence: who should have seen whose join, and when
    by_room: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for c in synced:
        by_room[c["room"]].append(c)
    latencies: list[float] = []
    receipts = expected = delivered = dups = 0
    for members in by_room.values():
        members.sort(key=lambda c: c["t_sub"])
        for position, v in enumerate(members):
            seen = set(v["sync_users"])
            got: set[int] = set()
            for u, t in zip(v["joins_u"], v["joins_t"], strict=True):
                receipts += 1
                if u in got:
                    dups += 1
                    continue
                got.add(u)
                if u in t_sub:
                    latencies.append(t - t_sub[u])
            seen |= got
            later = [u["i"] for u in members[position + 1 :]]
            expected += len(later)
            delivered += sum(u in seen for u in later)
    latencies.sort()
    o.p50, o.p95, o.p99 = (percentile(latencies, q) for q in (0.5, 0.95, 0.99))
    active = max(1e-9, t_active - t0)
    o.rate = receipts / active
    o.fraction = delivered / expected if expected else None
    o.extra["deliveries"] = receipts
    resyncs = sum(c["resyncs"] for c in ok)
    o.notes.append(
        f"{len(synced)}/{len(clients)} joined and got SYNC; join diffs received {receipts}"
        + (f" ({dups} duplicates)" if dups else "")
        + f"; SYNC p95 {fmt_ms(percentile(sync_lat, 0.95))} ms; connect+init p95 "
        f"{fmt_ms(percentile(connect_lat, 0.95))} ms; "
        f"server CPU {o.extra.get('cpu_ms_per_conn', 0):.2f} ms per connection+subscribe"
        + (f"; {resyncs} resyncs" if resyncs else "")
    )


# ----------------------------------------------------------------------------------------- reporting


def fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.1f}"


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


COLUMNS = [
    ("p50 ms", lambda o: o.p50, lambda v: fmt_ms(v)),
    ("p95 ms", lambda o: o.p95, lambda v: fmt_ms(v)),
    ("p99 ms", lambda o: o.p99, lambda v: fmt_ms(v)),
    ("deliv/s", lambda o: o.rate, lambda v: fmt(v, ",.0f")),
    ("recv %", lambda o: o.fraction, lambda v: fmt(None if v is None else v * 100, ".1f")),
    ("CPU s", lambda o: o.cpu, lambda v: fmt(v, ".2f")),
    ("µs/deliv", lambda o: o.us_per, lambda v: fmt(v, ".2f")),
    ("peak RSS MiB", lambda o: o.peak_mib, lambda v: fmt(v, ".1f")),
    ("loadgen CPU s", lambda o: o.loadgen_cpu, lambda v: fmt(v, ".2f")),
]


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.2f}x"


def targets(case: Case, sf: Outcome | None, raw: Outcome | None) -> list[str]:
    """The issue's targets, checked against the SyncForge figures."""
    if sf is None or sf.skipped:
        return []

    def verdict(ok: bool | None) -> str:
        return "n/a" if ok is None else ("met" if ok else "MISSED")

    if case.workload == "cursors":
        p95_ok = None if sf.p95 is None else sf.p95 <= TICK_S + 0.030
        cpu_ok = None if sf.us_per is None else sf.us_per <= 3
        final_ok = sf.extra.get("final_ok") == 1.0
        return [
            f"p95 <= tick + 30 ms = 80 ms: {verdict(p95_ok)}; "
            f"CPU <= 3 µs per cursor state: {verdict(cpu_ok)}; "
            f"everyone ends with everyone's latest position: {verdict(final_ok)}"
        ]
    if case.workload == "events":
        r = None if raw is None or raw.us_per is None or sf.us_per is None else sf.us_per / raw.us_per
        return [f"CPU per delivery <= 2x the raw relay's: {verdict(None if r is None else r <= 2)}"]
    if case.workload == "presence":
        p95_ok = None if sf.p95 is None else sf.p95 < 0.050
        per_conn = sf.extra.get("cpu_ms_per_conn")
        return [
            f"join-diff p95 < 50 ms: {verdict(p95_ok)}; CPU per connection+subscribe <= 1 ms: "
            f"{verdict(None if per_conn is None else per_conn <= 1)}"
        ]
    per_conn = sf.extra.get("rss_kib_per_conn")
    return [f"RSS <= 25 KiB per idle connection: {verdict(None if per_conn is None else per_conn <= 25)}"]


def print_table(results: list[tuple[Case, dict[str, Outcome]]], out: Any = sys.stdout) -> None:
    label_width = max([len(case.label) for case, _ in results] + [8]) + 2
    header = f"{'workload':<{label_width}}{'server':<11}" + "".join(f"{name:>14}" for name, _, _ in COLUMNS)
    print("\n" + header, file=out)
    print("-" * len(header), file=out)
    for case, outcomes in results:
        label = case.label
        for name in ("raw", "syncforge"):
            o = outcomes.get(name)
            if o is None:
                continue
            if o.skipped:
                print(f"{label:<{label_width}}{name:<11}  skipped: {o.skipped}", file=out)
            else:
                cells = "".join(f"{show(get(o)):>14}" for _, get, show in COLUMNS)
                print(f"{label:<{label_width}}{name:<11}{cells}", file=out)
            label = ""
        raw, sf = outcomes.get("raw"), outcomes.get("syncforge")
        if raw and sf and not raw.skipped and not sf.skipped:
            cells = "".join(f"{ratio(get(sf), get(raw)):>14}" for _, get, _ in COLUMNS)
            print(f"{'':<{label_width}}{'sf/raw':<11}{cells}", file=out)
        for name in ("raw", "syncforge"):
            o = outcomes.get(name)
            for note in [] if o is None else o.notes:
                print(f"{'':<{label_width}}  {name}: {note}", file=out)
        for line in targets(case, sf, raw):
            print(f"{'':<{label_width}}  targets (issue 4, SyncForge): {line}", file=out)
        print(file=out)


# ------------------------------------------------------------------------------------------------ main


def build_cases(args: argparse.Namespace) -> list[Case]:
    workloads = ["cursors", "events", "presence", "idle"] if args.workload == "all" else [args.workload]
    cases: list[Case] = []
    base = {
        "settle": args.settle,
        "final_timeout": args.final_timeout,
        "sync_timeout": 30.0,
        "max_inflight": args.max_inflight,
    }
    for workload in workloads:
        if workload == "cursors":
            for n in args.clients:
                cases.append(
                    Case(
                        "cursors",
                        f"cursors N={n}",
                        n,
                        {**base, "duration": args.duration, "observers": args.observers},
                    )
                )
        elif workload == "events":
            cases.append(
                Case(
                    "events",
                    f"events {args.event_subscribers} subs @{args.event_rate:g}/s",
                    args.event_subscribers,
                    {**base, "duration": args.duration, "event_rate": args.event_rate},
                )
            )
        elif workload == "presence":
            n = args.presence_connections
            rooms = max(1, n // 10)
            for room_count in (1, rooms):
                label = (
                    f"presence {n} in 1 room"
                    if room_count == 1
                    else f"presence {rooms} rooms of {n // rooms}"
                )
                cases.append(
                    Case(
                        "presence",
                        label,
                        n,
                        {
                            **base,
                            "rooms": room_count,
                            "join_rate": args.join_rate,
                            "active_timeout": n / args.join_rate + 120,
                        },
                    )
                )
        elif workload == "idle":
            cases.append(
                Case(
                    "idle",
                    f"idle {args.idle_connections} conns",
                    args.idle_connections,
                    {
                        **base,
                        "room_size": args.idle_room_size,
                        "warmup": min(20, args.idle_connections),
                        "active_timeout": 600,
                    },
                )
            )
    return cases


def syncforge_env(workdir: Path, secret_key: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("REDIS_URL", "SYNCFORGE_REDIS_URL", "SYNCFORGE_DATABASE_URL")
    }
    env.update(
        DATABASE_URL=f"sqlite+aiosqlite:///{workdir / 'syncforge-bench.db'}",
        SYNCFORGE_SECRET_KEY=secret_key,
        # The load is the point: no abuse limit may refuse it (keys get rateLimit 1,000,000).
        SYNCFORGE_IP_RATE_LIMIT="1000000/minute",
        SYNCFORGE_WS_MOVES_PER_S="1e6",
        SYNCFORGE_WS_PRESENCE_UPDATES_PER_S="1e6",
        SYNCFORGE_WS_BROADCASTS_PER_S="1e6",
        SYNCFORGE_WS_DOCUMENT_UPDATES_PER_S="1e6",
        SYNCFORGE_WS_AWARENESS_UPDATES_PER_S="1e6",
        SYNCFORGE_LOG_LEVEL="warning",
        SYNCFORGE_PUBLIC_URL=f"http://{HOST}",
    )
    return env


def raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def run_all(args: argparse.Namespace) -> list[tuple[Case, dict[str, Outcome]]]:
    cases = build_cases(args)
    workdir = Path(tempfile.mkdtemp(prefix="syncforge-bench-"))
    secret_key = secrets.token_urlsafe(48)
    account = SyncForgeAccount()
    results: list[tuple[Case, dict[str, Outcome]]] = []
    print(
        f"server core {SERVER_CORE}, load generator cores {sorted(other_cores())}, logs in {workdir}",
        flush=True,
    )
    try:
        for case in cases:
            outcomes: dict[str, Outcome] = {}
            for kind in args.servers:
                started = time.monotonic()
                print(f"[{case.label}] {kind} ...", end=" ", flush=True)
                env = syncforge_env(workdir, secret_key) if kind == "syncforge" else dict(os.environ)
                label = f"{kind}-{case.label.replace(' ', '_').replace('/', '_').replace('@', '')}"
                server = ServerProcess(kind, workdir, env, label, profile=args.profile)
                try:
                    server.start()
                    specs = build_specs(case)
                    rooms = {spec["room"]: spec["room"] for spec in specs}
                    subscriptions = case_subscriptions(case.workload, args)
                    if kind == "syncforge":
                        asyncio.run(account.inspect(server.http_url))
                        missing = [op for op in NEEDS[case.workload] if op not in account.operations]
                        if missing:
                            outcomes[kind] = Outcome(
                                server=kind, skipped=f"not in the schema yet: {', '.join(missing)}"
                            )
                            print("skipped", flush=True)
                            continue
                        if case.workload == "idle":
                            operation = {"presence": "roomPresence", "cursors": "cursors"}
                            subscriptions = [s for s in subscriptions if operation[s] in account.operations]
                        rooms = asyncio.run(account.prepare(server.http_url, specs))
                    outcome = run_case(case, server, specs, rooms, args, subscriptions)
                    if case.workload == "idle" and sorted(subscriptions) != ["cursors", "presence"]:
                        outcome.notes.insert(0, f"subscribed to: {', '.join(subscriptions) or 'nothing'}")
                    if kind == "syncforge" and len(account.orgs) > 1:
                        outcome.notes.append(
                            f"rooms spread over {len(account.orgs)} organizations "
                            f"(a free organization has {account.orgs[0].max_rooms} active rooms)"
                        )
                    outcomes[kind] = outcome
                    print(f"done in {time.monotonic() - started:.0f} s", flush=True)
                except Exception as exc:
                    outcomes[kind] = Outcome(server=kind, skipped=f"failed: {str(exc).splitlines()[0][:150]}")
                    print(f"FAILED: {exc}\n{server.log_tail(10)}", flush=True)
                finally:
                    server.stop()
                    if summary := server.profile_summary():
                        summary_path = workdir / f"{label}.profile.txt"
                        summary_path.write_text(summary)
                        print(f"    profile: {summary_path}", flush=True)
                    count, lines = server.log_problems()
                    if (count or lines) and kind in outcomes:
                        outcomes[kind].notes.append(f"server log: {count} warning/error lines")
                        outcomes[kind].notes.extend(f"server log: {line}" for line in lines)
            results.append((case, outcomes))
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return results


def case_subscriptions(workload: str, args: argparse.Namespace) -> list[str]:
    return {
        "cursors": ["cursors"],
        "events": ["events"],
        "presence": ["presence"],
        "idle": args.idle_subscriptions,
    }[workload]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Realtime fan-out benchmark: SyncForge (GraphQL subscriptions over graphql-transport-ws) "
            "against a raw Starlette WebSocket relay doing the same fan-out, each server pinned to core 0, "
            "load generator in separate processes. Prints latency percentiles, deliveries/s, delivered "
            "fraction, server CPU and CPU per delivery, peak RSS, with SyncForge/raw ratios."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--workload", choices=["cursors", "events", "presence", "idle", "all"], default="all")
    parser.add_argument("--clients", default="100,200,500", help="cursor room sizes, comma-separated")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of moves / events per case")
    parser.add_argument(
        "--quick", action="store_true", help="everything scaled down: about 1.5 minutes in total"
    )
    parser.add_argument("--servers", default="raw,syncforge", help="which servers, comma-separated")
    parser.add_argument("--event-subscribers", type=int, default=200)
    parser.add_argument(
        "--event-rate", type=float, default=100.0, help="events per second from the publisher"
    )
    parser.add_argument("--presence-connections", type=int, default=1000)
    parser.add_argument("--join-rate", type=float, default=25.0, help="presence joins per second")
    parser.add_argument("--idle-connections", type=int, default=2000)
    parser.add_argument("--idle-room-size", type=int, default=100)
    parser.add_argument(
        "--idle-subscriptions",
        default="presence,cursors",
        help="what each idle connection subscribes to: presence, cursors, both, or '' for connections only",
    )
    parser.add_argument(
        "--observers", type=int, default=20, help="cursor clients that parse every frame (latency)"
    )
    parser.add_argument("--settle", type=float, default=2.0, help="seconds counted after the last send")
    parser.add_argument(
        "--quiesce-timeout",
        type=float,
        default=30.0,
        help="after the last send, the window lasts at least --settle and until the server is quiet, "
        "at most this many seconds",
    )
    parser.add_argument(
        "--final-timeout", type=float, default=10.0, help="seconds to wait for the final cursors"
    )
    parser.add_argument(
        "--max-inflight",
        type=int,
        default=10,
        help="a SyncForge client holds a move or event back while this many answers are pending (0: never)",
    )
    parser.add_argument(
        "--procs",
        type=int,
        default=0,
        help="load generator processes; 0: one per core the server does not use",
    )
    parser.add_argument(
        "--client-deflate",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="clients offer permessage-deflate, as browsers do (the server decides)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the work directory (server logs, SQLite file)"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run SyncForge under cProfile (slower) and write its top functions to the work directory; "
        "implies --keep",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.clients = "20"
        args.duration = min(args.duration, 3.0)
        args.event_subscribers = min(args.event_subscribers, 20)
        args.presence_connections = min(args.presence_connections, 100)
        args.join_rate = max(args.join_rate, 50.0)
        args.idle_connections = min(args.idle_connections, 200)
        args.settle = min(args.settle, 1.0)
        args.final_timeout = min(args.final_timeout, 5.0)
    args.keep = args.keep or args.profile
    args.clients = [int(n) for n in str(args.clients).split(",") if n.strip()]
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    args.idle_subscriptions = [s.strip() for s in args.idle_subscriptions.split(",") if s.strip()]
    if any(s not in ("presence", "cursors") for s in args.idle_subscriptions):
        parser.error("--idle-subscriptions: presence and/or cursors")
    for name in args.servers:
        if name not in ("raw", "syncforge"):
            parser.error(f"--servers: unknown server {name!r}")
    if any(n < 2 for n in args.clients) or args.duration <= 0 or args.join_rate <= 0 or args.event_rate <= 0:
        parser.error("need at least 2 cursor clients and positive duration and rates")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_fd_limit()
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, other_cores())
    started = time.monotonic()
    results = run_all(args)
    print_table(results)
    print(f"total {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
