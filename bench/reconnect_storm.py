"""Reconnect storm (issue 12, point 6; NFR-1.5): every client of a room drops at once and comes back
within a second, as after a server restart or a network blip.

    .venv/bin/python bench/reconnect_storm.py --quick        # 50 in one room, 10 rooms of 10
    .venv/bin/python bench/reconnect_storm.py                # 500 in one room, 100 rooms of 10

For each case and server, a fresh server is pinned to core 0 (`syncforge serve`, embedded default; the
raw relay bench/raw_relay.py as the baseline), and one load generator process (multiprocessing, spawn)
on the other core(s) holds the clients, `websockets` asyncio clients, one asyncio task each:

  phase 1  every client connects (SyncForge: graphql-transport-ws, connection_init with the room
           organization's publishable key and the client's end-user token; raw: hello), subscribes to
           presence, and the script waits until every client's view (SYNC, then the diffs applied)
           holds every member of its room: steady.
  phase 2  at t_drop every client's TCP transport is aborted (no close frame, no `complete`, no
           leaveRoom); each then reconnects after a delay drawn uniformly from [0, --spread], with the
           same end-user token (the same user id), re-inits and re-subscribes.

Measured, per client: "back" = t_drop -> the first moment after its reconnect that its view holds
every member of its room (for SyncForge that is its SYNC, since the others' entries are held for the
grace period; for the raw relay, which has no grace period, the view fills up as the others' joins
arrive). All back = the last client's. Server CPU (utime+stime of its pid, sampled every 50 ms) from
t_drop to all back, and per reconnect; the load generator's CPU over the same window. Clients keep
listening until t_drop + grace + --observe-after, and every leave they see is counted; a flap is an
(observer, user) pair where the observer saw a leave of a user who had reconnected within the grace
period (with a later join of that user: a leave -> join flap, the flicker the grace period exists to
prevent). Targets: all back within 2 s, and no flaps.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import multiprocessing as mp
import os
import random
import re
import resource
import secrets
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import realtime as bench

PRESENCE_SUB = bench.PRESENCE_SUB
TARGET_BACK_S = 2.0
ROOM_ONE = "bench-storm-one"
SYNC_USER = re.compile(r'"userId":"([^"\\]*)","connections":\[\{"connectionId":"([^"\\]*)"\}\]')


def room_slug(index: int) -> str:
    return f"bench-storm-r-{index:03d}"


def default_grace() -> float:
    try:
        return float(os.environ.get("SYNCFORGE_PRESENCE_GRACE_S", "5"))
    except ValueError:
        return 5.0


# -------------------------------------------------------------------------------------- load generator


class StormClient:
    """One end-user: a connection in phase 1, dropped, then a new connection with the same token."""

    def __init__(self, gen: StormGen, spec: dict[str, Any]) -> None:
        self.gen = gen
        self.spec = spec
        self.i: int = spec["i"]
        self.user = bench.user_id(self.i)
        self.room: str = gen.rooms[spec["room"]]
        self.size: int = spec["size"]
        self.ws: Any = None
        self.reader: asyncio.Task[None] | None = None
        self.aborted = False
        self.phase = 1
        self.view: dict[str, set[str]] = {}
        self.full = asyncio.Event()
        self.t_full = 0.0
        self.t_start = 0.0  # this phase's connect attempt (the last one)
        self.t_ack = 0.0
        self.t_sub = 0.0
        self.t_sync = 0.0
        self.sync_missing = -1  # members absent from this phase's first SYNC
        self.sync_doubled = 0  # users with more than one connection in it
        self.syncs = 0
        self.retries = 0
        self.updates = 0
        # phase 2: (t, user) of what this client saw after it reconnected
        self.leaves: list[tuple[float, str]] = []
        self.joins: list[tuple[float, str]] = []
        self.before: dict[str, set[str]] = {}  # the view when dropped
        self.ids_changed = -1  # users whose connection ids differ in the reconnect SYNC

    def reset(self) -> None:
        self.phase = 2
        self.before = self.view
        self.view = {}
        self.full = asyncio.Event()
        self.t_full = self.t_start = self.t_ack = self.t_sub = self.t_sync = 0.0
        self.sync_missing, self.sync_doubled, self.syncs = -1, 0, 0

    async def open(self, deadline: float) -> bool:
        """Connect, init, subscribe; retried (a real client would) until `deadline`."""
        from websockets.asyncio.client import connect

        gen = self.gen
        while True:
            self.t_start = time.monotonic()
            try:
                self.ws = await connect(
                    gen.url,
                    subprotocols=[bench.PROTOCOL] if gen.gql else None,  # type: ignore[list-item]
                    compression=None,
                    max_size=2**24,
                    ping_interval=None,
                    proxy=None,
                    open_timeout=30,
                    close_timeout=2,
                )
                if gen.gql:
                    init = {
                        "type": "connection_init",
                        "payload": {"apiKey": self.spec["api_key"], "token": self.spec["token"]},
                    }
                    await self.ws.send(json.dumps(init))
                    ack = json.loads(await asyncio.wait_for(self.ws.recv(), 30))
                    if ack.get("type") != "connection_ack":
                        raise RuntimeError(f"connection_init answered {str(ack)[:120]}")
                    self.t_ack = time.monotonic()
                    message = {
                        "id": "p",
                        "type": "subscribe",
                        "payload": {
                            "query": PRESENCE_SUB,
                            "variables": {"room": self.room, "presence": {"bench": True}},
                        },
                    }
                    self.reader = asyncio.create_task(self.read_loop(self.ws))
                    self.t_sub = time.monotonic()
                    await self.ws.send(json.dumps(message))
                else:
                    await self.ws.send(json.dumps({"t": "hello", "room": self.room, "id": self.user}))
                    self.t_ack = time.monotonic()
                    self.reader = asyncio.create_task(self.read_loop(self.ws))
                    self.t_sub = time.monotonic()
                    await self.ws.send(json.dumps({"t": "sub", "what": "presence"}))
                return True
            except Exception as exc:
                gen.note(f"phase {self.phase} connect/init/subscribe: {type(exc).__name__}: {exc}")
                if self.ws is not None:
                    with contextlib.suppress(Exception):
                        self.ws.transport.abort()
                if time.monotonic() + 0.2 > deadline:
                    return False
                self.retries += 1
                await asyncio.sleep(0.2)

    async def read_loop(self, ws: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        handle = self.gen.handle
        clock = time.monotonic
        try:
            while True:
                frame = await ws.recv(decode=False)
                handle(self, frame, clock())
        except ConnectionClosed as exc:
            if ws is self.ws and not (self.aborted or self.gen.closing):
                received = exc.rcvd
                reason = f"{received.code} {received.reason}" if received else "no close frame"
                self.gen.closes[f"phase {self.phase}: closed by server: {reason}"[:160]] += 1
        except Exception as exc:
            self.gen.note(f"reader: {exc!r}")

    def abort(self) -> None:
        """Drop the TCP connection: no close frame, no graphql `complete`, no leaveRoom."""
        self.aborted = True
        if self.ws is not None:
            self.ws.transport.abort()

    def on_presence(self, state: Any, now: float) -> None:
        """The view: user id -> its connection ids. A SYNC replaces it, a DIFF's joins and leaves edit it."""
        if not isinstance(state, dict):
            return
        kind = str(state.get("kind", "")).upper()
        if kind == "SYNC":
            self.on_sync(
                {
                    user["userId"]: {c["connectionId"] for c in user.get("connections") or ()}
                    for user in state.get("users") or ()
                },
                now,
            )
            return
        view = self.view
        storm = self.phase == 2
        for user in state.get("joins") or ():
            u = user["userId"]
            view.setdefault(u, set()).update(c["connectionId"] for c in user.get("connections") or ())
            if storm and u != self.user:
                self.joins.append((now, u))
        for user in state.get("leaves") or ():
            u = user["userId"]
            conns = view.get(u)
            if conns is not None:
                conns.difference_update(c["connectionId"] for c in user.get("connections") or ())
                if not conns:
                    del view[u]
            if storm:
                self.leaves.append((now, u))
        self.updates += len(state.get("updates") or ())
        if not self.t_full and len(view) >= self.size:
            self.t_full = now
            self.full.set()

    def on_sync(self, view: dict[str, set[str]], now: float) -> None:
        self.view = view
        self.syncs += 1
        if self.syncs == 1:
            self.t_sync = now
            self.sync_missing = max(0, self.size - len(view))
            self.sync_doubled = sum(len(conns) > 1 for conns in view.values())
            if self.phase == 2:
                before = self.before
                self.ids_changed = (
                    0 if view == before else sum(before.get(u) != conns for u, conns in view.items())
                )
        if not self.t_full and len(view) >= self.size:
            self.t_full = now
            self.full.set()


class StormGen(bench.Controlled):
    def __init__(self, control: Connection, plan: dict[str, Any]) -> None:
        self.control = control
        self.plan = plan
        self.gql = plan["kind"] == "syncforge"
        self.url: str = plan["url"]
        self.rooms: dict[str, str] = plan["rooms"]
        self.closing = False
        self.errors: collections.Counter[str] = collections.Counter()
        self.closes: collections.Counter[str] = collections.Counter()
        self.pending: set[asyncio.Future[None]] = set()
        self.clients = [StormClient(self, spec) for spec in plan["clients"]]

    def handle(self, c: StormClient, frame: bytes, now: float) -> None:
        if b'"kind":"SYNC"' in frame and b'"errors"' not in frame:
            # A SYNC of a big room is ~90 bytes per user: json.loads and the view built from it cost the
            # generator ~4 ms per 1,000 users, a regex a fifth of that. Used only when it finds every user
            # (one connection each, the fields in the order the query asks for); json.loads otherwise.
            text = frame.decode()
            pairs = SYNC_USER.findall(text)
            if len(pairs) == text.count('"userId"'):
                c.on_sync({u: {conn} for u, conn in pairs}, now)
                return
        message = json.loads(frame)
        if not self.gql:
            if message.get("t") == "presence":
                c.on_presence(message, now)
            return
        kind = message.get("type")
        if kind == "next":
            payload = message.get("payload") or {}
            if payload.get("errors"):
                self.note(f"phase {c.phase} roomPresence: {bench.LoadGen._error(payload['errors'])}")
                return
            c.on_presence((payload.get("data") or {}).get("roomPresence"), now)
        elif kind == "ping":
            task = asyncio.ensure_future(self._pong(c.ws))
            self.pending.add(task)
            task.add_done_callback(self.pending.discard)
        elif kind == "error":
            self.note(f"phase {c.phase} error: {bench.LoadGen._error(message.get('payload'))}")
        elif kind == "complete" and not self.closing:
            self.note(f"phase {c.phase}: roomPresence completed by the server")

    @staticmethod
    async def _pong(ws: Any) -> None:
        with contextlib.suppress(Exception):
            await ws.send('{"type":"pong"}')

    @staticmethod
    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    async def wait_full(self, limit_s: float) -> None:
        waits = [asyncio.ensure_future(c.full.wait()) for c in self.clients]
        _done, pending = await asyncio.wait(waits, timeout=limit_s)
        for task in pending:
            task.cancel()

    async def run(self) -> None:
        p = self.plan["params"]
        # phase 1: everyone joins; steady once every view holds its whole room
        t1 = time.monotonic()
        semaphore = asyncio.Semaphore(p["concurrency"])
        deadline = t1 + p["steady_timeout"]

        async def join(c: StormClient) -> None:
            async with semaphore:
                await c.open(deadline)

        await asyncio.gather(*(join(c) for c in self.clients))
        await self.wait_full(max(1.0, deadline - time.monotonic()))
        steady = {
            "full": sum(c.full.is_set() for c in self.clients),
            "seconds": time.monotonic() - t1,
            "sync_p95": bench.percentile(sorted(c.t_sync - c.t_sub for c in self.clients if c.t_sync), 0.95),
            "errors": dict(self.errors),
        }
        self.send("steady", steady)
        await self.receive("drop")
        # phase 2: the storm
        rng = random.Random(p["seed"])
        delays = [rng.uniform(0.0, p["spread"]) for _ in self.clients]
        cpu0 = self.cpu()
        t_drop = time.monotonic()
        for c in self.clients:
            c.abort()
        for c in self.clients:
            c.reset()
        t_aborted = time.monotonic()
        storm_deadline = t_drop + p["spread"] + p["storm_timeout"]

        async def come_back(c: StormClient, delay: float) -> None:
            await asyncio.sleep(max(0.0, t_drop + delay - time.monotonic()))
            c.aborted = False
            await c.open(storm_deadline)

        reconnects = [
            asyncio.ensure_future(come_back(c, d)) for c, d in zip(self.clients, delays, strict=True)
        ]
        await self.wait_full(max(1.0, storm_deadline - time.monotonic()))
        cpu1 = self.cpu()
        t_back = time.monotonic()
        everyone = all(c.full.is_set() for c in self.clients)
        t_all_back = max(c.t_full for c in self.clients) if everyone else None
        # keep listening past the grace period: leaves of entries not taken over would come then
        await asyncio.sleep(max(0.0, t_drop + p["grace"] + p["observe_after"] - time.monotonic()))
        cpu2 = self.cpu()
        t_end = time.monotonic()
        for task in reconnects:
            task.cancel()
        self.send(
            "result",
            {
                "t_drop": t_drop,
                "abort_ms": (t_aborted - t_drop) * 1000,
                "t_all_back": t_all_back,
                "t_back_seen": t_back,
                "t_end": t_end,
                "cpu_storm": cpu1 - cpu0,
                "cpu_window": t_back - t_drop,
                "cpu_total": cpu2 - cpu0,
                "errors": dict(self.errors),
                "closes": dict(self.closes),
                "clients": [
                    {
                        "i": c.i,
                        "room": c.spec["room"],
                        "size": c.size,
                        "delay": d,
                        "t_start": c.t_start,
                        "t_ack": c.t_ack,
                        "t_sub": c.t_sub,
                        "t_sync": c.t_sync,
                        "t_full": c.t_full,
                        "sync_missing": c.sync_missing,
                        "sync_doubled": c.sync_doubled,
                        "ids_changed": c.ids_changed,
                        "syncs": c.syncs,
                        "retries": c.retries,
                        "updates": c.updates,
                        "leaves": c.leaves,
                        "joins": c.joins,
                    }
                    for c, d in zip(self.clients, delays, strict=True)
                ],
            },
        )
        await self.receive("close")
        self.closing = True
        semaphore = asyncio.Semaphore(128)

        async def close(c: StormClient) -> None:
            async with semaphore:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(c.ws.close(), 3)

        await asyncio.gather(*(close(c) for c in self.clients if c.ws is not None))


def loadgen_main(control: Connection, plan: dict[str, Any], cores: list[int]) -> None:
    bench.raise_fd_limit()
    bench.run_loadgen(control, cores, lambda: StormGen(control, plan).run(), plan.get("profile"))


# ------------------------------------------------------------------------------------------ the parent


@dataclass
class Case:
    name: str
    label: str
    rooms: int
    size: int

    @property
    def clients(self) -> int:
        return self.rooms * self.size

    def specs(self) -> list[dict[str, Any]]:
        if self.rooms == 1:
            return [{"i": i, "room": ROOM_ONE, "size": self.size} for i in range(self.size)]
        return [{"i": i, "room": room_slug(i // self.size), "size": self.size} for i in range(self.clients)]


@dataclass
class Outcome:
    server: str
    skipped: str | None = None
    back: list[float] = field(default_factory=list)  # per client, s from the drop (back clients only)
    all_back: float | None = None
    reconnect_p95: float | None = None  # own connect attempt -> full view
    not_back: int = 0
    sync_complete: int = 0
    sync_doubled: int = 0
    cpu: float | None = None
    cpu_total: float | None = None
    busy: float | None = None
    loadgen_cpu: float | None = None
    loadgen_busy: float | None = None
    leaves: int = 0
    leaves_in_grace: int = 0
    flaps: int = 0
    leave_join: int = 0
    flapped_users: int = 0
    notes: list[str] = field(default_factory=list)


class Child:
    """The load generator process and its control pipe."""

    def __init__(self, plan: dict[str, Any], cores: list[int]) -> None:
        context = mp.get_context("spawn")
        self.pipe, child = context.Pipe()
        self.proc = context.Process(target=loadgen_main, args=(child, plan, cores), daemon=True)
        self.proc.start()
        child.close()

    def send(self, tag: str, payload: Any = None) -> None:
        self.pipe.send((tag, payload))

    def expect(self, tag: str, timeout: float) -> Any:
        if not self.pipe.poll(timeout):
            raise TimeoutError(f"load generator: no {tag!r} within {timeout:.0f} s")
        got, payload = self.pipe.recv()
        if got == "error":
            raise RuntimeError(f"load generator failed:\n{payload}")
        if got != tag:
            raise RuntimeError(f"load generator: expected {tag!r}, got {got!r}")
        return payload

    def finish(self) -> None:
        self.proc.join(15)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(5)


def run_one(
    case: Case,
    kind: str,
    args: argparse.Namespace,
    workdir: Path,
    secret_key: str,
    account: bench.SyncForgeAccount,
) -> Outcome:
    outcome = Outcome(server=kind)
    env = bench.syncforge_env(workdir, secret_key) if kind == "syncforge" else dict(os.environ)
    env["SYNCFORGE_PRESENCE_GRACE_S"] = f"{args.grace:g}"
    label = f"storm-{kind}-{case.name}"
    server = bench.ServerProcess(kind, workdir, env, label)
    sampler: bench.Sampler | None = None
    child: Child | None = None
    try:
        server.start()
        specs = case.specs()
        if kind == "syncforge":
            asyncio.run(account.inspect(server.http_url))
            if "roomPresence" not in account.operations:
                outcome.skipped = "roomPresence not in the schema"
                return outcome
            bench.MAX_PARTICIPANTS = args.max_participants or case.size
            rooms = asyncio.run(account.prepare(server.http_url, specs))
        else:
            rooms = {spec["room"]: spec["room"] for spec in specs}
        plan = {
            "profile": str(workdir / f"{label}.loadgen.prof") if args.profile_loadgen else None,
            "kind": kind,
            "url": server.ws_url,
            "rooms": rooms,
            "clients": specs,
            "params": {
                "concurrency": args.concurrency,
                "steady_timeout": args.steady_timeout,
                "spread": args.spread,
                "storm_timeout": args.storm_timeout,
                "grace": args.grace,
                "observe_after": args.observe_after,
                "seed": args.seed,
            },
        }
        sampler = bench.Sampler(server.pid)
        sampler.start()
        child = Child(plan, sorted(bench.other_cores()))
        steady = child.expect("steady", args.steady_timeout + 60)
        if steady["full"] < case.clients:
            outcome.notes.append(
                f"phase 1: only {steady['full']}/{case.clients} clients saw their whole room "
                f"within {args.steady_timeout:.0f} s"
            )
        # Drop once the server has gone quiet after the joins.
        now = time.monotonic()
        t_quiet = sampler.wait_quiet(now + 1.0, now + 20.0, busy=0.05)
        idle_rate = sampler.at(t_quiet)[0] - sampler.at(t_quiet - 1.0)[0]  # over the last second
        child.send("drop")
        result = child.expect(
            "result", args.spread + args.storm_timeout + args.grace + args.observe_after + 60
        )
        child.send("close")
    except Exception as exc:
        outcome.skipped = f"failed: {str(exc).splitlines()[0][:150]}"
        print(f"FAILED: {exc}\n{server.log_tail(10)}", flush=True)
        return outcome
    finally:
        if sampler is not None:
            sampler.stop()
        if child is not None:
            child.finish()
        server.stop()
        count, lines = server.log_problems()
        if count or lines:
            outcome.notes.append(f"server log: {count} warning/error lines")
            outcome.notes.extend(f"server log: {line}" for line in lines)
    summarize(case, outcome, result, sampler, steady, idle_rate, args)
    return outcome


def summarize(
    case: Case,
    o: Outcome,
    r: dict[str, Any],
    sampler: bench.Sampler,
    steady: dict[str, Any],
    idle_rate: float,
    args: argparse.Namespace,
) -> None:
    clients = r["clients"]
    t_drop = r["t_drop"]
    back = [c for c in clients if c["t_full"]]
    o.back = sorted(c["t_full"] - t_drop for c in back)
    o.not_back = len(clients) - len(back)
    o.all_back = None if r["t_all_back"] is None else r["t_all_back"] - t_drop
    o.reconnect_p95 = bench.percentile(sorted(c["t_full"] - c["t_start"] for c in back), 0.95)
    o.sync_complete = sum(c["sync_missing"] == 0 for c in clients)
    o.sync_doubled = sum(c["sync_doubled"] > 0 for c in clients)
    ids_kept = sum(c["ids_changed"] == 0 for c in clients)
    t_stop = r["t_all_back"] if r["t_all_back"] is not None else r["t_back_seen"]
    o.cpu = sampler.at(t_stop)[0] - sampler.at(t_drop)[0]
    o.cpu_total = sampler.at(r["t_end"])[0] - sampler.at(t_drop)[0]
    o.busy = o.cpu / max(1e-9, t_stop - t_drop)
    o.loadgen_cpu = r["cpu_storm"]
    o.loadgen_busy = r["cpu_storm"] / max(1e-9, r["cpu_window"])
    # Flaps: an observer saw a leave of a user who came back within the grace period.
    came_back = {bench.user_id(c["i"]) for c in clients if c["t_sub"] and c["t_sub"] - t_drop <= args.grace}
    flapped: set[str] = set()
    for c in clients:
        o.leaves += len(c["leaves"])
        o.leaves_in_grace += sum(t - t_drop <= args.grace for t, _ in c["leaves"])
        left: dict[str, float] = {}
        for t, u in c["leaves"]:
            left.setdefault(u, t)
        for u, t_left in left.items():
            if u in came_back:
                o.flaps += 1
                flapped.add(u)
            if any(u == j and t >= t_left for t, j in c["joins"]):
                o.leave_join += 1  # the flicker, whether or not the user was back within grace
    o.flapped_users = len(flapped)
    ack = sorted(c["t_ack"] - c["t_start"] for c in clients if c["t_ack"])
    sync = sorted(c["t_sync"] - c["t_sub"] for c in clients if c["t_sync"])
    retries = sum(c["retries"] for c in clients)
    updates = sum(c["updates"] for c in clients)
    notes = o.notes
    notes.insert(
        0,
        f"phase 1: {steady['full']}/{len(clients)} saw their whole room after {steady['seconds']:.1f} s "
        f"(SYNC p95 {bench.fmt_ms(steady['sync_p95'])} ms); server idle before the drop "
        f"{idle_rate * 1000:.0f} ms/s; {r['abort_ms']:.0f} ms to abort every socket",
    )
    notes.append(
        f"storm: connect+init p95 {bench.fmt_ms(bench.percentile(ack, 0.95))} ms, subscribe -> SYNC "
        f"p95 {bench.fmt_ms(bench.percentile(sync, 0.95))} ms, "
        f"max {bench.fmt_ms(sync[-1] if sync else None)} ms; "
        f"reconnect -> whole room p95 {bench.fmt_ms(o.reconnect_p95)} ms; "
        f"{o.sync_complete}/{len(clients)} SYNCs already held the whole room, "
        f"{ids_kept}/{len(clients)} with every connection id as before the drop"
        + (f"; {o.sync_doubled} SYNCs showed a user twice (old + new connection)" if o.sync_doubled else "")
        + (f"; {retries} connect retries" if retries else "")
        + (f"; {updates} presence updates seen" if updates else "")
    )
    notes.append(
        f"server CPU {o.cpu_total:.2f} s from the drop to grace + {args.observe_after:g} s "
        f"(idle rate {idle_rate * (r['t_end'] - t_drop):.2f} s of it)"
    )
    if o.leaves:
        notes.append(
            f"{o.leaves} leaves seen after reconnecting ({o.leaves_in_grace} within the grace period), "
            f"{o.flapped_users} users who were back within grace among them, {o.leave_join} (observer, "
            "user) pairs saw a leave then a join"
        )
    for message, count in collections.Counter(r["errors"]).most_common(4):
        notes.append(f"{count}x {message}")
    for message, count in collections.Counter(r["closes"]).most_common(3):
        notes.append(f"{count}x {message}")
    if o.loadgen_busy is not None and o.loadgen_busy > 0.7:
        notes.append(f"load generator busy {o.loadgen_busy:.0%} of its core: it may be the bottleneck here")


# ----------------------------------------------------------------------------------------- reporting


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f}"


COLUMNS: list[tuple[str, Any]] = [
    ("back p50 ms", lambda o: ms(bench.percentile(o.back, 0.5))),
    ("p95 ms", lambda o: ms(bench.percentile(o.back, 0.95))),
    ("all back ms", lambda o: ms(o.all_back) if o.all_back is not None else f"{o.not_back} out"),
    ("full SYNC", lambda o: f"{o.sync_complete}"),
    ("CPU s", lambda o: f"{o.cpu:.2f}"),
    ("ms/reconn", lambda o: f"{o.cpu / max(1, len(o.back) + o.not_back) * 1000:.2f}"),
    ("core busy", lambda o: f"{o.busy:.0%}"),
    ("loadgen s", lambda o: f"{o.loadgen_cpu:.2f} ({o.loadgen_busy:.0%})"),
    ("leaves", lambda o: f"{o.leaves}"),
    ("flaps", lambda o: f"{o.flaps}"),
]


def ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None or b == 0 else f"{a / b:.2f}x"


def print_results(results: list[tuple[Case, dict[str, Outcome]]], args: argparse.Namespace) -> None:
    width = max(len(case.label) for case, _ in results) + 2
    header = f"{'case':<{width}}{'server':<11}" + "".join(f"{name:>15}" for name, _ in COLUMNS)
    print("\n" + header)
    print("-" * len(header))
    for case, outcomes in results:
        label = case.label
        for kind in ("raw", "syncforge"):
            o = outcomes.get(kind)
            if o is None:
                continue
            if o.skipped:
                print(f"{label:<{width}}{kind:<11}  skipped: {o.skipped}")
            else:
                print(f"{label:<{width}}{kind:<11}" + "".join(f"{get(o):>15}" for _, get in COLUMNS))
            label = ""
        raw, sf = outcomes.get("raw"), outcomes.get("syncforge")
        if raw and sf and not raw.skipped and not sf.skipped:
            print(
                f"{'':<{width}}sf/raw: all back {ratio(sf.all_back, raw.all_back)}, "
                f"server CPU {ratio(sf.cpu, raw.cpu)}"
            )
        for kind in ("raw", "syncforge"):
            o = outcomes.get(kind)
            for note in [] if o is None else o.notes:
                print(f"{'':<{width}}  {kind}: {note}")
        if sf and not sf.skipped:
            back_ok = sf.all_back is not None and sf.all_back <= TARGET_BACK_S
            print(
                f"{'':<{width}}  targets (NFR-1.5, SyncForge): all back within {TARGET_BACK_S:g} s: "
                f"{'met' if back_ok else 'MISSED'} ({ms(sf.all_back)} ms, reconnects spread over "
                f"{args.spread:g} s); flaps == 0: {'met' if sf.flaps == 0 else 'MISSED'} ({sf.flaps})"
            )
        print()
    legend = [
        "back = drop -> the client's view holds its whole room again (SYNC + diffs)",
        "full SYNC = clients whose reconnect SYNC already held the whole room",
        "CPU s = server utime+stime from the drop to all back; core busy = that / the wall time",
        "loadgen s = the load generator's CPU over the same window (its share of one core)",
        f"leaves = leave entries seen by reconnected clients until grace + {args.observe_after:g} s",
        "flaps = (observer, user) pairs with a leave of a user who reconnected within the grace period",
        "the raw relay has no grace period: its leaves go out at once, the clients that come back see the "
        "others absent, then their joins (not a target, and no flaps counted: nobody is there to see them)",
    ]
    print("\n".join(legend))


# ------------------------------------------------------------------------------------------------ main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Reconnect storm: every client drops at once and reconnects within --spread seconds; "
        "time until everyone has the full presence state again, server CPU, flaps.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--clients-one-room", type=int, default=500, help="clients of case one-room")
    parser.add_argument("--rooms", type=int, default=100, help="rooms of case many-rooms")
    parser.add_argument("--room-size", type=int, default=10, help="clients per room of case many-rooms")
    parser.add_argument("--spread", type=float, default=1.0, help="reconnects spread uniformly over this")
    parser.add_argument("--cases", default="one-room,many-rooms")
    parser.add_argument("--servers", default="raw,syncforge")
    parser.add_argument("--quick", action="store_true", help="50 in one room, 10 rooms of 10")
    parser.add_argument(
        "--grace",
        type=float,
        default=default_grace(),
        help="SYNCFORGE_PRESENCE_GRACE_S given to the server (the server's default is 5)",
    )
    parser.add_argument(
        "--max-participants",
        type=int,
        default=bench.MAX_PARTICIPANTS,
        help="the rooms' maxParticipants; 0: exactly the room's size (a full room)",
    )
    parser.add_argument("--observe-after", type=float, default=1.5, help="seconds listened after the grace")
    parser.add_argument("--concurrency", type=int, default=32, help="phase-1 joins in flight")
    parser.add_argument("--steady-timeout", type=float, default=120.0)
    parser.add_argument("--storm-timeout", type=float, default=30.0, help="after the spread")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the work directory (server logs)")
    parser.add_argument(
        "--profile-loadgen",
        action="store_true",
        help="run the load generator under cProfile (slower), stats in the work directory; implies --keep",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.clients_one_room = min(args.clients_one_room, 50)
        args.rooms = min(args.rooms, 10)
    args.keep = args.keep or args.profile_loadgen
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    if any(c not in ("one-room", "many-rooms") for c in args.cases):
        parser.error("--cases: one-room and/or many-rooms")
    if any(s not in ("raw", "syncforge") for s in args.servers):
        parser.error("--servers: raw and/or syncforge")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bench.raise_fd_limit()
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, bench.other_cores())
    cases = []
    if "one-room" in args.cases:
        cases.append(Case("one-room", f"{args.clients_one_room} in 1 room", 1, args.clients_one_room))
    if "many-rooms" in args.cases:
        cases.append(
            Case("many-rooms", f"{args.rooms} rooms of {args.room_size}", args.rooms, args.room_size)
        )
    workdir = Path(tempfile.mkdtemp(prefix="syncforge-storm-"))
    secret_key = secrets.token_urlsafe(48)
    account = bench.SyncForgeAccount()
    print(
        f"server core {bench.SERVER_CORE}, load generator cores {sorted(bench.other_cores())}, "
        f"grace {args.grace:g} s, spread {args.spread:g} s, logs in {workdir}",
        flush=True,
    )
    started = time.monotonic()
    results: list[tuple[Case, dict[str, Outcome]]] = []
    try:
        for case in cases:
            outcomes: dict[str, Outcome] = {}
            for kind in args.servers:
                t0 = time.monotonic()
                print(f"[{case.label}] {kind} ...", end=" ", flush=True)
                outcomes[kind] = run_one(case, kind, args, workdir, secret_key, account)
                print(f"done in {time.monotonic() - t0:.0f} s", flush=True)
            results.append((case, outcomes))
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print_results(results, args)
    print(f"total {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
