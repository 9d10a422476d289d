"""Reconnection with state recovery through @syncforge/client (NFR-1.5: under 2 s).

Each round starts a `syncforge serve` process, lets two SDK clients (Node) edit one text, kills the
server with SIGKILL, keeps editing offline for --down seconds, restarts the server on the same port
and measures the time from the server answering /healthz to both clients being connected again with
every edit acknowledged (recovery). The baseline, in the same round: a new client's connect + sync of
the same document at that moment. Also printed: edits made offline, and that none was lost or doubled.

    .venv/bin/python bench/sdk_reconnect.py --rounds 5            # embedded default (SQLite)
    .venv/bin/python bench/sdk_reconnect.py --rounds 5 --postgres # PostgreSQL + Redis on 127.0.0.1
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.db.migrate import upgrade
from tests.backends import fresh_database
from tests.conftest import make_settings
from tests.sdk_node import require_built_sdk
from tests.sdk_outage import outage_round

REDIS = "redis://127.0.0.1:6379/0"
TARGET_MS = 2000


async def main(rounds: int, down_s: float, postgres: bool) -> None:
    require_built_sdk()
    backend = "postgres" if postgres else "sqlite"
    with tempfile.TemporaryDirectory() as tmp:
        async with fresh_database(Path(tmp), backend) as url:
            settings = make_settings(
                url, redis_url=REDIS if postgres else None, redis_namespace=f"bench-{uuid.uuid4().hex[:8]}"
            )
            await asyncio.to_thread(upgrade, settings)
            results = []
            for number in range(1, rounds + 1):
                result = await outage_round(settings, REDIS if postgres else None, Path(tmp), down_s=down_s)
                lost, doubled = len(result["missing"]), len(result["duplicated"])
                per_client = result["recoveryPerClientMs"]
                print(
                    f"round {number}: recovery {result['recoveryMs']} ms (per client {per_client}),"
                    f" fresh client {result['freshClientMs']} ms, outage {result['outageMs']} ms,"
                    f" offline edits {result['offlineEdits']}, lost {lost}, doubled {doubled},"
                    f" converged {result['converged']}, stored {result['serverMatches']}",
                    flush=True,
                )
                results.append(result)
    recovery = [r["recoveryMs"] for r in results]
    fresh = [r["freshClientMs"] for r in results]
    recovery_p50, fresh_p50 = statistics.median(recovery), statistics.median(fresh)
    lost = sum(len(r["missing"]) for r in results)
    doubled = sum(len(r["duplicated"]) for r in results)
    print(f"\n{backend}, {rounds} rounds, {down_s} s down:")
    print(f"  recovery once the server is back: p50 {recovery_p50:.0f} ms, max {max(recovery)} ms")
    print(f"    (target < {TARGET_MS} ms)")
    print(f"  baseline, a new client's connect + sync: p50 {fresh_p50:.0f} ms, max {max(fresh)} ms")
    print(f"  ratio recovery / baseline (p50): {recovery_p50 / max(1, fresh_p50):.1f}")
    print(f"  edits lost: {lost}, applied twice: {doubled}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--down", type=float, default=1.0, help="seconds the server stays down")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL + Redis instead of SQLite")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.rounds, arguments.down, arguments.postgres))
