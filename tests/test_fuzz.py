"""Property-based fuzzing of the whole GraphQL API over HTTP and graphql-transport-ws (tests/fuzzing.py).

Bounded here: SYNCFORGE_FUZZ_EXAMPLES (default 2) examples per root field for each kind of operation
(valid, invalid, in variables), each sent with every credential over both transports; derandomized, so a
run is reproducible. `make fuzz` (bench/fuzz.py) is the larger run.

A failure lists everything found, deduplicated: the field, the transport, the credentials, the problem and
the shortest request that showed it.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

import pytest

from tests.conftest import LiveServer
from tests.fuzzing import Fuzzer, Operation, ServerErrors, dump_json, result_problems, strict_json

EXAMPLES = int(os.environ.get("SYNCFORGE_FUZZ_EXAMPLES", "2"))

StartServer = Callable[..., Awaitable[LiveServer]]


async def _fuzzer(live_server_with: StartServer, errors: ServerErrors) -> Fuzzer:
    # Thousands of requests from one address and one key: the rate limits would answer most of them.
    server = await live_server_with(ip_rate_limit="1000000/minute")
    return Fuzzer(server.url, server.ws_url, examples=EXAMPLES, explain=errors.explain)


def _verdict(fuzzer: Fuzzer, missing: list[str] | None = None) -> str:
    lines = [fuzzer.summary()]
    print(lines[0])  # shown with -s, or with the failure
    if missing:
        lines.append("root fields never sent: " + ", ".join(missing))
    return "\n".join([*lines, fuzzer.failures.report()])


async def test_every_root_field_survives_generated_operations(live_server_with: StartServer) -> None:
    with ServerErrors().installed() as errors:
        async with await _fuzzer(live_server_with, errors) as fuzzer:
            target = await fuzzer.create_target()
            await fuzzer.fuzz_fields(target, fuzzer.fields(destructive=False))
            await fuzzer.fuzz_destructive()
            await fuzzer.check_health()
    missing = fuzzer.missing_coverage()
    verdict = _verdict(fuzzer, missing)
    assert not missing and not fuzzer.failures, verdict


async def test_malformed_http_requests_get_coded_json_errors(live_server_with: StartServer) -> None:
    with ServerErrors().installed() as errors:
        async with await _fuzzer(live_server_with, errors) as fuzzer:
            await fuzzer.malformed_http(await fuzzer.create_target())
            await fuzzer.check_health()
    verdict = _verdict(fuzzer)
    assert not fuzzer.failures, verdict


async def test_malformed_websocket_messages_get_protocol_answers(live_server_with: StartServer) -> None:
    with ServerErrors().installed() as errors:
        async with await _fuzzer(live_server_with, errors) as fuzzer:
            await fuzzer.malformed_ws(await fuzzer.create_target())
            await fuzzer.check_health()
    verdict = _verdict(fuzzer)
    assert not fuzzer.failures, verdict


def test_the_oracle_flags_uncoded_and_internal_errors_and_non_json() -> None:
    assert result_problems({"data": {"health": {"ok": True}}}) == []
    assert (
        result_problems({"data": None, "errors": [{"message": "no", "extensions": {"code": "NOT_FOUND"}}]})
        == []
    )
    problems = result_problems(
        {
            "errors": [
                {"message": "maximum recursion depth exceeded"},
                {
                    "message": "Internal server error",
                    "extensions": {"code": "INTERNAL_ERROR", "requestId": "r1"},
                },
            ]
        }
    )
    assert problems == [
        ("error without extensions.code: maximum recursion depth exceeded", None),
        ("INTERNAL_ERROR: Internal server error", "r1"),
    ]
    assert result_problems({"detail": "Not Found"}) and result_problems([1]) and result_problems("x")
    for text in ('{"data": {"x": NaN}}', '{"data": {"x": Infinity}}', "Internal Server Error"):
        with pytest.raises(ValueError):
            strict_json(text)
    # What json.dumps refuses or rewrites reaches the server as written.
    operation = Operation(
        "Query.health", "query", "variables", "{ health { ok } }", dump_json({"x": float("nan")})
    )
    assert operation.payload() == '{"query": "{ health { ok } }", "variables": {"x": NaN}}'
    assert dump_json("\ud800") == '"\\ud800"'
