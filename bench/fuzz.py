"""The larger fuzz run of the GraphQL API (issue 10): tests/fuzzing.py against a fresh `syncforge serve`.

    .venv/bin/python bench/fuzz.py                          # 20 examples per field and kind: ~9 min
    .venv/bin/python bench/fuzz.py --examples 100 --seed 7  # more, from another seed
    .venv/bin/python bench/fuzz.py --fields Mutation.moveCursor,Subscription.cursors
    .venv/bin/python bench/fuzz.py --url http://127.0.0.1:8000   # a server you started yourself
    make fuzz FUZZ_ARGS="--examples 50"

The server is `syncforge serve` on the embedded default (a temporary SQLite file, in-memory pub/sub, the
per-address rate limit lifted), pinned to core 0 as in the other benches. The same phases as
tests/test_fuzz.py run with more examples and a seed (printed; the test is derandomized): generated
operations for every root field with every credential over HTTP and WebSocket, the destructive fields
against throwaway objects, hand-written malformed HTTP requests and WebSocket messages, then /healthz.

Printed: operations and messages sent per transport, answers by code, socket closes by code, every
distinct failure with the shortest request that showed it (and the exception the server logged for an
INTERNAL_ERROR). Exit status 1 if anything failed.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import realtime as bench  # noqa: E402  (ServerProcess, syncforge_env)

from tests.fuzzing import Fuzzer  # noqa: E402

RECORD_START = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d|(DEBUG|INFO|WARNING|ERROR|CRITICAL):)")


class LogFile:
    """What the server logged for a request id: the last line of the traceback that follows it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def explain(self, request_id: str) -> str | None:
        try:
            text = self.path.read_text(errors="replace")
        except OSError:
            return None
        record: list[str] = []
        for line in [*text.splitlines(), "0000-00-00 00:00:00 end"]:
            if RECORD_START.match(line):
                if record and f"(request {request_id})" in record[0] and len(record) > 1:
                    return record[-1].strip()[:160]
                record = []
            if line.strip():
                record.append(line)
        return None


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=20, help="per root field and kind of operation")
    parser.add_argument("--seed", type=int, default=None, help="hypothesis seed (default: a random one)")
    parser.add_argument("--fields", default="", help="comma-separated Type.field names (default: all)")
    parser.add_argument("--url", default=None, help="fuzz this server instead of starting one")
    parser.add_argument("--keep", action="store_true", help="keep the server's log and SQLite file")
    parser.add_argument(
        "--phases",
        default="operations,destructive,http,ws",
        help="any of operations, destructive, http, ws (comma-separated)",
    )
    return parser.parse_args()


async def fuzz(args: argparse.Namespace, url: str, ws_url: str, log: LogFile | None) -> Fuzzer:
    phases = set(args.phases.split(","))
    wanted = {name for name in args.fields.split(",") if name}
    fuzzer = Fuzzer(
        url,
        ws_url,
        examples=args.examples,
        seed=args.seed,
        explain=log.explain if log else None,
        progress=lambda line: print(f"  {line}", flush=True),
    )
    async with fuzzer:
        started = time.monotonic()
        if "operations" in phases:
            target = await fuzzer.create_target()
            fields = [(k, n) for k, n in fuzzer.fields(destructive=False) if not wanted or n in wanted]
            await fuzzer.fuzz_fields(target, fields)
        if "destructive" in phases:
            for kind, name in fuzzer.fields(destructive=True):
                if not wanted or name in wanted:
                    await fuzzer.fuzz_fields(await fuzzer.create_target(), [(kind, name)])
        if "http" in phases:
            print("  malformed HTTP requests", flush=True)
            await fuzzer.malformed_http(await fuzzer.create_target())
        if "ws" in phases:
            print("  malformed WebSocket messages", flush=True)
            await fuzzer.malformed_ws(await fuzzer.create_target())
        await fuzzer.check_health()
        print(f"done in {time.monotonic() - started:.0f} s", flush=True)
    return fuzzer


def main() -> None:
    args = parse_args()
    if args.seed is None:
        args.seed = random.randrange(2**32)
    print(f"fuzz: {args.examples} examples per field and kind, seed {args.seed}", flush=True)
    if args.url:
        url = args.url.rstrip("/")
        fuzzer = asyncio.run(fuzz(args, url, url.replace("http", "ws", 1) + "/graphql", None))
    else:
        workdir = Path(tempfile.mkdtemp(prefix="syncforge-fuzz-"))
        env = bench.syncforge_env(workdir, secrets.token_urlsafe(48))
        server = bench.ServerProcess("syncforge", workdir, env, "syncforge-fuzz")
        try:
            server.start()
            fuzzer = asyncio.run(fuzz(args, server.http_url, server.ws_url, LogFile(server.log_path)))
        finally:
            server.stop()
            if args.keep:
                print(f"server log and database kept in {workdir}")
            else:
                shutil.rmtree(workdir, ignore_errors=True)
    print(fuzzer.summary())
    every_field = not args.fields and {"operations", "destructive"} <= set(args.phases.split(","))
    missing = fuzzer.missing_coverage() if every_field else []
    if missing:
        print("root fields never sent: " + ", ".join(missing))
    print(fuzzer.failures.report() if fuzzer.failures else "no failures")
    sys.exit(1 if fuzzer.failures or missing else 0)


if __name__ == "__main__":
    main()
