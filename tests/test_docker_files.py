"""Static checks of the container files: docker/Dockerfile, docker/compose.yaml, .dockerignore.

No Docker engine is needed: the files are parsed and checked for the properties the deployment
relies on. Each `*_problems(path)` function returns a list of human-readable problems (empty
when the file is fine), so the same checks can be run on a deliberately broken copy; the last
tests do exactly that, to prove the checks can fail.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker" / "compose.yaml"
DOCKERFILE = REPO / "docker" / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"

# Build-context paths the Dockerfile copies that other parts of the project create: the GraphiQL
# asset build (package.json, package-lock.json, scripts/build-graphiql.mjs) and the project README
# (pyproject.toml's `readme`). They are required like every other COPY source; this only explains
# a failure while that work has not landed yet.
EXPECTED_FROM_OTHER_WORK = {
    "package.json": "GraphiQL asset build (npm)",
    "package-lock.json": "GraphiQL asset build (npm ci needs the lockfile)",
    "scripts": "GraphiQL asset build script (scripts/build-graphiql.mjs)",
    "README.md": "pyproject.toml `readme`",
}

ROOT_USERS = {"root", "0"}


# --- compose ------------------------------------------------------------------------------------


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # ["KEY=value", ...]
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):  # short syntax means service_started
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def _published_container_ports(service: dict[str, Any]) -> set[int]:
    ports: set[int] = set()
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):  # long syntax
            if entry.get("published") is not None:
                ports.add(int(entry["target"]))
            continue
        spec = str(entry).split("/", 1)[0]  # drop "/tcp"
        parts = spec.rsplit(":", 2)
        if len(parts) >= 2:  # "HOST:CONTAINER" or "IP:HOST:CONTAINER"
            ports.add(int(parts[-1]))
    return ports


def _healthcheck_test(service: dict[str, Any]) -> Any:
    check = service.get("healthcheck") or {}
    if check.get("disable"):
        return None
    test = check.get("test")
    if not test or test == ["NONE"]:
        return None
    return test


def compose_problems(path: Path) -> list[str]:
    problems: list[str] = []
    data = yaml.safe_load(path.read_text())
    services: dict[str, dict[str, Any]] = (data or {}).get("services") or {}

    for name in ("api", "worker", "postgres", "redis", "migrate"):
        if name not in services:
            problems.append(f"service {name!r} is missing")
    if problems:
        return problems

    for name in ("api", "worker", "migrate"):
        build = services[name].get("build")
        if not isinstance(build, dict):
            problems.append(f"{name}: `build` must be a mapping with context and dockerfile")
            continue
        context = (path.parent / build.get("context", ".")).resolve()
        dockerfile = context / build.get("dockerfile", "Dockerfile")
        if context != REPO:
            problems.append(f"{name}: build context {context} is not the repository root")
        if not dockerfile.is_file():
            problems.append(f"{name}: dockerfile {dockerfile} does not exist")

    for name in ("postgres", "redis"):
        if not services[name].get("image"):
            problems.append(f"{name}: no image")

    for name, service in services.items():
        if name == "migrate":
            continue
        if _healthcheck_test(service) is None:
            problems.append(f"{name}: no healthcheck with a `test`")
    if services["migrate"].get("restart", "no") != "no":
        problems.append("migrate: a one-shot job must have restart: 'no'")

    for name in ("api", "worker", "migrate"):
        env = _environment(services[name])
        database_url = env.get("DATABASE_URL", "")
        if not database_url.startswith("postgresql+asyncpg://"):
            problems.append(f"{name}: DATABASE_URL {database_url!r} is not postgresql+asyncpg://")
        elif urlsplit(database_url).hostname != "postgres":
            problems.append(f"{name}: DATABASE_URL host is not the `postgres` service")
        if name == "migrate":
            continue
        redis_url = env.get("REDIS_URL", "")
        if not redis_url.startswith("redis://"):
            problems.append(f"{name}: REDIS_URL {redis_url!r} is not redis://")
        elif urlsplit(redis_url).hostname != "redis":
            problems.append(f"{name}: REDIS_URL host is not the `redis` service")

    wanted = {
        "api": {
            "postgres": "service_healthy",
            "redis": "service_healthy",
            "migrate": "service_completed_successfully",
        },
        "worker": {
            "postgres": "service_healthy",
            "redis": "service_healthy",
            "migrate": "service_completed_successfully",
        },
        "migrate": {"postgres": "service_healthy"},
    }
    for name, conditions in wanted.items():
        deps = _depends_on(services[name])
        for dep, condition in conditions.items():
            if deps.get(dep) != condition:
                problems.append(
                    f"{name}: depends_on {dep} must have condition {condition} (has {deps.get(dep)!r})"
                )
    for name, service in services.items():
        for dep in _depends_on(service):
            if dep not in services:
                problems.append(f"{name}: depends_on unknown service {dep!r}")

    api_check = _healthcheck_test(services["api"])
    if api_check is not None and "/readyz" not in json.dumps(api_check):
        problems.append("api: the healthcheck must probe /readyz (database and Redis reachable)")
    if 8000 not in _published_container_ports(services["api"]):
        problems.append("api: container port 8000 is not published")
    if services["migrate"].get("command") != ["migrate"]:
        problems.append("migrate: command must be ['migrate']")
    if services["worker"].get("command") != ["worker"]:
        problems.append("worker: command must be ['worker']")
    api_command = services["api"].get("command") or []
    if api_command[:1] != ["serve"] or "0.0.0.0" not in api_command:
        problems.append("api: command must be `serve` bound to 0.0.0.0")
    return problems


# --- Dockerfile ---------------------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int

    def json_args(self) -> list[str] | None:
        """The exec (JSON array) form's items, or None for the shell form."""
        text = self.args.strip()
        if not text.startswith("["):
            return None
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return None
        return value if isinstance(value, list) else None

    def words(self) -> list[str]:
        return self.json_args() or shlex.split(self.args, comments=False)


@dataclass
class Stage:
    index: int
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def find(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def parse_dockerfile(text: str) -> tuple[list[Instruction], list[Stage]]:
    """Split into instructions (joining `\\` continuations, dropping comments) and stages."""
    escape = "\\"
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending:
            directive = re.match(r"#\s*escape\s*=\s*(\S)", stripped)
            if directive and not instructions:
                escape = directive.group(1)
            if not stripped or stripped.startswith("#"):
                continue
            start = number
        elif not stripped or stripped.startswith("#"):  # dropped inside a continuation
            continue
        if raw.rstrip().endswith(escape):
            pending.append(raw.rstrip()[: -len(escape)])
            continue
        pending.append(raw)
        joined = " ".join(part.strip() for part in pending if part.strip())
        pending = []
        keyword, _, args = joined.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
    if pending:
        raise ValueError("Dockerfile ends inside a line continuation")

    stages: list[Stage] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            words = [w for w in instruction.args.split() if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(len(stages), words[0], name and name.lower()))
        elif stages:
            stages[-1].instructions.append(instruction)
    return instructions, stages


def _copy_parts(instruction: Instruction) -> tuple[dict[str, str], list[str], str]:
    """(flags, sources, destination) of a COPY/ADD."""
    rest = instruction.args.strip()
    flags: dict[str, str] = {}
    while match := re.match(r"--([\w-]+)(?:=(\S*))?\s+", rest):
        flags[match.group(1)] = match.group(2) or ""
        rest = rest[match.end() :]
    words = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
    return flags, words[:-1], words[-1]


def _is_root(user: str) -> bool:
    name = user.split(":", 1)[0].strip()
    return name in ROOT_USERS


def _runs_syncforge(stage: Stage) -> bool:
    for keyword in ("ENTRYPOINT", "CMD"):
        found = stage.find(keyword)
        if found and found[-1].words():
            program = found[-1].words()[0]
            if Path(program).name == "syncforge":
                return True
    return False


def dockerfile_problems(path: Path, context: Path = REPO) -> list[str]:
    problems: list[str] = []
    _, stages = parse_dockerfile(path.read_text())
    if len(stages) < 2:
        return [f"not multi-stage: {len(stages)} FROM"]
    final = stages[-1]

    users = final.find("USER")
    if not users:
        problems.append("final stage has no USER (it would run as root)")
    elif _is_root(users[-1].args):
        problems.append(f"final stage runs as root (USER {users[-1].args})")
    exposed = {w.split("/", 1)[0] for e in final.find("EXPOSE") for w in e.args.split()}
    if "8000" not in exposed:
        problems.append("final stage does not EXPOSE 8000")
    healthchecks = final.find("HEALTHCHECK")
    if not healthchecks or healthchecks[-1].args.upper().startswith("NONE"):
        problems.append("final stage has no HEALTHCHECK")
    if not _runs_syncforge(final):
        problems.append("final stage's ENTRYPOINT/CMD does not run `syncforge`")

    names: dict[str, int] = {s.name: s.index for s in stages if s.name}
    for stage in stages:
        if stage.base.lower() in names and names[stage.base.lower()] >= stage.index:
            problems.append(f"FROM {stage.base}: not an earlier stage")
        for instruction in stage.find("COPY") + stage.find("ADD"):
            flags, sources, _ = _copy_parts(instruction)
            source_stage = flags.get("from")
            if source_stage is not None:
                earlier = (
                    int(source_stage) < stage.index
                    if source_stage.isdigit()
                    else names.get(source_stage.lower(), stage.index) < stage.index
                )
                if not earlier:
                    problems.append(
                        f"line {instruction.line}: COPY --from={source_stage} does not name an earlier stage"
                    )
                continue
            for source in sources:
                problems.extend(_local_source_problems(instruction, source, context))

    problems.extend(_graphiql_before_install_problems(stages))
    return problems


def _local_source_problems(instruction: Instruction, source: str, context: Path) -> list[str]:
    relative = source.strip("/") or "."
    if relative.startswith("..") or re.match(r"^[a-z]+://", source):
        return [f"line {instruction.line}: COPY source {source!r} is outside the build context"]
    wildcard = any(c in relative for c in "*?[")
    if not ((context / relative).exists() or (wildcard and any(context.glob(relative)))):
        first = relative.split("/", 1)[0]
        note = EXPECTED_FROM_OTHER_WORK.get(first)
        hint = f" (expected from: {note})" if note else ""
        return [f"line {instruction.line}: COPY source {source!r} does not exist{hint}"]
    ignore = context / ".dockerignore"
    if ignore.is_file() and dockerignore_excludes(ignore.read_text(), relative):
        return [f"line {instruction.line}: COPY source {source!r} is excluded by .dockerignore"]
    return []


def _graphiql_before_install_problems(stages: list[Stage]) -> list[str]:
    """The built GraphiQL assets must be copied in before `pip install .`, non-editable."""
    for stage in stages:
        for position, instruction in enumerate(stage.instructions):
            if instruction.keyword != "RUN" or "pip install" not in instruction.args:
                continue
            if not re.search(r"pip install\b[^&;|]*\s\.(\s|$)", instruction.args):
                continue
            if re.search(r"pip install\b[^&;|]*\s(-e|--editable)\s", instruction.args):
                return [f"line {instruction.line}: the project install must not be editable"]
            for earlier in stage.instructions[:position]:
                if earlier.keyword != "COPY":
                    continue
                flags, _, destination = _copy_parts(earlier)
                if "from" in flags and "graphql/static/graphiql" in destination:
                    return []
            return [
                f"line {instruction.line}: `pip install .` runs before the GraphiQL assets "
                "are copied in from the node stage"
            ]
    return ["no stage installs the project with `pip install .`"]


# --- .dockerignore ------------------------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")


def dockerignore_excludes(text: str, relative_path: str) -> bool:
    """Whether .dockerignore (patterns anchored at the root, last match wins) drops a path."""
    parts = relative_path.strip("/").split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]  # a/, a/b, a/b/c
    excluded = False
    for line in text.splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip().strip("/")
        if pattern.startswith("./"):
            pattern = pattern[2:]
        regex = _pattern_regex(pattern)
        if any(regex.match(candidate) for candidate in candidates):
            excluded = not negate
    return excluded


def dockerignore_problems(path: Path) -> list[str]:
    text = path.read_text()
    must_exclude = [
        ".venv",
        "node_modules",
        ".git",
        "app/__pycache__",
        "app/graphql/__pycache__",
        "syncforge.db",
        ".pytest_cache",
        ".ruff_cache",
        "app/graphql/static/graphiql/index.html",
    ]
    must_keep = ["pyproject.toml", "app/main.py", "workers", "migrations", "docker/Dockerfile"]
    problems = [f"{p} is not excluded" for p in must_exclude if not dockerignore_excludes(text, p)]
    problems += [f"{p} is excluded" for p in must_keep if dockerignore_excludes(text, p)]
    return problems


# --- tests --------------------------------------------------------------------------------------


def test_compose_file() -> None:
    assert compose_problems(COMPOSE) == []


def test_dockerfile() -> None:
    assert dockerfile_problems(DOCKERFILE) == []


def test_dockerfile_stages() -> None:
    _, stages = parse_dockerfile(DOCKERFILE.read_text())
    assert [s.base for s in stages] == ["node:20-slim", "python:3.11-slim", "python:3.11-slim"]
    assert stages[-1].find("ENTRYPOINT")[-1].json_args() == ["syncforge"]
    assert stages[-1].find("CMD")[-1].json_args() == [
        "serve",
        "--host",
        "0.0.0.0",
        "--port",
        "8000",
    ]
    assert "/healthz" in stages[-1].find("HEALTHCHECK")[-1].args


def test_dockerignore() -> None:
    assert dockerignore_problems(DOCKERIGNORE) == []


def test_dockerfile_parser_handles_continuations_and_stages() -> None:
    text = (
        "# syntax=docker/dockerfile:1\n"
        "ARG BASE=python:3.11-slim\n"
        "FROM --platform=linux/amd64 node:20-slim AS Assets\n"
        "RUN echo a \\\n"
        "    # a comment inside the continuation\n"
        "    && echo b\n"
        "FROM python:3.11-slim\n"
        'COPY --from=assets ["/out", "/in"]\n'
    )
    instructions, stages = parse_dockerfile(text)
    assert [i.keyword for i in instructions] == ["ARG", "FROM", "RUN", "FROM", "COPY"]
    assert instructions[2].args == "echo a && echo b"
    assert instructions[2].line == 4
    assert [(s.base, s.name) for s in stages] == [
        ("node:20-slim", "assets"),
        ("python:3.11-slim", None),
    ]
    assert _copy_parts(stages[1].instructions[0]) == ({"from": "assets"}, ["/out"], "/in")


def test_checks_catch_a_broken_compose_file(tmp_path: Path) -> None:
    def broken(mutate: Any) -> list[str]:
        # Through JSON: the YAML anchors would otherwise share one mapping between services.
        data = json.loads(json.dumps(yaml.safe_load(COMPOSE.read_text())))
        mutate(data["services"])
        copy = tmp_path / "docker" / "compose.yaml"
        copy.parent.mkdir(exist_ok=True)
        # A copy outside the repo: point the build back at the real context and Dockerfile.
        for service in data["services"].values():
            if isinstance(service.get("build"), dict):
                service["build"]["context"] = str(REPO)
        copy.write_text(yaml.safe_dump(data))
        return compose_problems(copy)

    assert broken(lambda s: None) == []
    assert broken(lambda s: s["api"].pop("healthcheck")) == ["api: no healthcheck with a `test`"]
    assert broken(lambda s: s["worker"].update(healthcheck={"disable": True})) == [
        "worker: no healthcheck with a `test`"
    ]
    assert broken(lambda s: s["api"]["environment"].update(DATABASE_URL="postgresql+asyncpg://u:p@db/x")) == [
        "api: DATABASE_URL host is not the `postgres` service"
    ]
    assert broken(lambda s: s["worker"]["environment"].update(REDIS_URL="redis://localhost")) == [
        "worker: REDIS_URL host is not the `redis` service"
    ]
    assert broken(lambda s: s["api"]["depends_on"].pop("migrate")) == [
        "api: depends_on migrate must have condition service_completed_successfully (has None)"
    ]
    assert broken(lambda s: s["api"].pop("ports")) == ["api: container port 8000 is not published"]
    assert broken(lambda s: s["api"]["build"].update(dockerfile="docker/Nope")) == [
        f"api: dockerfile {REPO / 'docker' / 'Nope'} does not exist"
    ]
    assert broken(lambda s: s.pop("redis"))[0] == "service 'redis' is missing"


def test_checks_catch_a_broken_dockerfile(tmp_path: Path) -> None:
    good = DOCKERFILE.read_text()

    def problems_of(text: str) -> list[str]:
        copy = tmp_path / "Dockerfile"
        copy.write_text(text)
        return dockerfile_problems(copy)

    assert problems_of(good) == dockerfile_problems(DOCKERFILE)
    assert "final stage has no USER (it would run as root)" in problems_of(re.sub(r"(?m)^USER .*$", "", good))
    assert "final stage runs as root (USER root)" in problems_of(re.sub(r"(?m)^USER .*$", "USER root", good))
    assert "final stage does not EXPOSE 8000" in problems_of(good.replace("EXPOSE 8000", ""))
    assert any(
        "does not name an earlier stage" in p
        for p in problems_of(good.replace("--from=builder", "--from=nowhere"))
    )
    assert any("nothing-here" in p for p in problems_of(good.replace("COPY app/", "COPY nothing-here/")))
    moved = good.replace(
        "COPY --from=graphiql /build/app/graphql/static/graphiql/ app/graphql/static/graphiql/\n",
        "",
    )
    assert any("before the GraphiQL assets" in p for p in problems_of(moved))
    assert problems_of("FROM python:3.11-slim\nUSER 10001\n") == ["not multi-stage: 1 FROM"]


def test_checks_catch_a_broken_dockerignore(tmp_path: Path) -> None:
    copy = tmp_path / ".dockerignore"
    copy.write_text(DOCKERIGNORE.read_text().replace("node_modules", "#node_modules"))
    assert dockerignore_problems(copy) == ["node_modules is not excluded"]
    copy.write_text(DOCKERIGNORE.read_text() + "\napp\n")
    assert dockerignore_problems(copy) == ["app/main.py is excluded"]
    assert dockerignore_excludes("**/__pycache__\n", "app/graphql/__pycache__/x.pyc")
    assert not dockerignore_excludes("__pycache__\n", "app/__pycache__")  # anchored at the root
    assert not dockerignore_excludes("node_modules\n!node_modules\n", "node_modules")
