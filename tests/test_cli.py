"""The `syncforge` command as a user runs it: help, one-line configuration errors, a fresh serve."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from app.cli import DEV_KEYS_VARIABLES
from app.main import create_app
from app.settings import Settings
from tests.conftest import free_port
from tests.gql import GQL, end_user_token

SYNCFORGE = [sys.executable, "-m", "app.cli"]


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    return subprocess.run(
        [*SYNCFORGE, *args],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_help_explains_every_subcommand(tmp_path: Path) -> None:
    result = run(["--help"], tmp_path)
    assert result.returncode == 0
    for command in ("serve", "worker", "migrate", "export-schema", "mailbox", "dev-keys"):
        assert command in result.stdout
    serve_help = run(["serve", "--help"], tmp_path).stdout
    assert "--host" in serve_help and "--port" in serve_help


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "syncforge"
    assert script.exists(), "pip install -e . should install the syncforge entry point"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DATABASE_URL": "mysql://x@localhost/db"}, "DATABASE_URL: unsupported database"),
        (
            {"DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:1/nope"},
            "DATABASE_URL: cannot connect",
        ),
        ({"REDIS_URL": "redis://127.0.0.1:1/0"}, "REDIS_URL: cannot connect"),
        ({"REDIS_URL": "http://nope"}, "REDIS_URL: must start with redis://"),
    ],
)
def test_serve_stops_with_one_line_naming_the_setting(
    tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    result = run(["serve", "--port", str(free_port())], tmp_path, env)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"syncforge: error: {expected}"), lines[0]
    assert "Traceback" not in result.stderr


def test_worker_needs_redis(tmp_path: Path) -> None:
    result = run(["worker"], tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("syncforge: error: REDIS_URL: required")


def test_serve_on_a_fresh_directory_migrates_and_answers(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [*SYNCFORGE, "serve", "--port", str(port)],
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        answer = httpx.post(
            f"http://127.0.0.1:{port}/graphql", json={"query": "{ health { ok mode } }"}, timeout=5
        ).json()
        assert answer == {"data": {"health": {"ok": True, "mode": "embedded"}}}
        assert (tmp_path / "syncforge.db").exists()
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_export_schema_matches_the_committed_file(tmp_path: Path, repo_root: Path) -> None:
    result = run(["export-schema"], tmp_path)
    assert result.returncode == 0
    assert result.stdout == (repo_root / "schema.graphql").read_text(), (
        "schema.graphql is stale: run `make schema`"
    )


VIEWER = "{ viewer { kind organizationId } }"


def _dev_keys(cwd: Path, env: dict[str, str] | None = None, *args: str) -> subprocess.CompletedProcess[str]:
    result = run(["dev-keys", *args], cwd, env)
    assert result.returncode == 0, result.stderr
    return result


def _variables(stdout: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in stdout.splitlines() if line and not line.startswith("#"))


async def test_dev_keys_prints_keys_that_work(
    tmp_path: Path, settings: Settings, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    env = {"DATABASE_URL": settings.database_url, "SYNCFORGE_SECRET_KEY": settings.secret_key or ""}
    first = _dev_keys(tmp_path, env)
    printed = _variables(first.stdout)
    assert set(printed) == set(DEV_KEYS_VARIABLES)
    # None of them is a setting of the server (SYNCFORGE_SECRET_KEY above all): pasting them into
    # the server's environment changes nothing.
    settings_names = {f"SYNCFORGE_{name.upper()}" for name in Settings.model_fields} | {"SYNCFORGE_DEMO"}
    assert not set(printed) & settings_names
    assert printed["SYNCFORGE_GRAPHQL_URL"] == "http://127.0.0.1:8000/graphql"
    public, secret = printed["SYNCFORGE_PUBLIC_API_KEY"], printed["SYNCFORGE_SECRET_API_KEY"]
    assert public.startswith("pk_live_") and secret.startswith("sk_live_")
    created = re.search(r"developer account (\S+) with the password (\S+)", first.stdout)
    assert created is not None, first.stdout
    assert public not in first.stderr and secret not in first.stderr and created[2] not in first.stderr

    gql = GQL(client)
    viewer = (await gql.bearer(secret).data(VIEWER))["viewer"]
    assert viewer["kind"] == "secret_key" and viewer["organizationId"]
    token = await end_user_token(gql.bearer(secret), "ada", [{"room": "team:*", "access": ["read"]}])
    as_end_user = (await gql.bearer(token, **{"x-api-key": public}).data(VIEWER))["viewer"]
    assert as_end_user == {"kind": "end_user", "organizationId": viewer["organizationId"]}
    # The account it created can log in, and owns the organization.
    login = await gql.data(
        "mutation($i: LogInInput!) { logIn(input: $i) { accessToken } }",
        i={"email": created[1], "password": created[2]},
    )
    developer = gql.bearer(login["logIn"]["accessToken"])
    orgs = await developer.data("{ organizations { edges { node { id slug } } } }")
    assert [e["node"] for e in orgs["organizations"]["edges"]] == [
        {"id": viewer["organizationId"], "slug": "dev"}
    ]

    # Again: the same keys, and no new account (so no password).
    again = _dev_keys(tmp_path, env)
    assert _variables(again.stdout) == printed
    assert created[2] not in again.stdout and f"Owned by {created[1]}" in again.stdout
    as_json = json.loads(_dev_keys(tmp_path, env, "--json").stdout)
    assert as_json["publicApiKey"] == public and as_json["secretApiKey"] == secret
    assert as_json["organization"]["id"] == viewer["organizationId"]
    assert as_json["organization"]["slug"] == "dev"
    assert as_json["graphqlUrl"] == printed["SYNCFORGE_GRAPHQL_URL"]
    assert as_json["owners"] == [created[1]] and as_json["createdAccount"] is None

    # Revoked, the key is followed by a new one on the next run.
    keys = await developer.data(
        "query($o: UUID!) { organization(id: $o) { apiKeys { id kind status } } }", o=viewer["organizationId"]
    )
    (secret_id,) = [k["id"] for k in keys["organization"]["apiKeys"] if k["kind"] == "SECRET"]
    await developer.data("mutation($id: UUID!) { revokeApiKey(id: $id) { id } }", id=secret_id)
    replaced = _variables(_dev_keys(tmp_path, env).stdout)
    assert replaced["SYNCFORGE_PUBLIC_API_KEY"] == public
    assert replaced["SYNCFORGE_SECRET_API_KEY"] != secret
    viewer = (await gql.bearer(replaced["SYNCFORGE_SECRET_API_KEY"]).data(VIEWER))["viewer"]
    assert viewer["kind"] == "secret_key"


async def test_dev_keys_on_a_fresh_directory(tmp_path: Path) -> None:
    # The embedded default, before any `serve`: it migrates ./syncforge.db itself.
    result = _dev_keys(tmp_path, None, "--json", "--org", "my-app")
    printed = json.loads(result.stdout)
    assert printed["organization"]["slug"] == "my-app" and printed["createdAccount"]["password"]
    local = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'syncforge.db'}",
        secret_key=(tmp_path / "syncforge.secret").read_text().strip(),
    )
    application = create_app(local)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            viewer = (await GQL(http).bearer(printed["secretApiKey"]).data(VIEWER))["viewer"]
    assert viewer == {"kind": "secret_key", "organizationId": printed["organization"]["id"]}


def test_dev_keys_refuses_a_bad_slug(tmp_path: Path) -> None:
    result = run(["dev-keys", "--org", "Not A Slug"], tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("syncforge: error: --org: slug must be")
