"""Regenerate syncforge_client/generated/ with ariadne-codegen, or check that it is up to date.

    .venv/bin/python generate.py           # make generate: rewrite syncforge_client/generated/
    .venv/bin/python generate.py --check   # make check: exit 1 if it differs from a fresh generation

Both run ariadne-codegen (the pinned one of this directory's .venv) with the [tool.ariadne-codegen] settings
of pyproject.toml, from this directory, into a scratch directory; `generate` then replaces the package, so a
removed operation leaves no stale module behind.
"""

from __future__ import annotations

import argparse
import difflib
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
REGENERATE = "make -C codegen/python generate"


def settings() -> dict[str, object]:
    """The [tool.ariadne-codegen] table of pyproject.toml."""
    with (HERE / "pyproject.toml").open("rb") as file:
        return dict(tomllib.load(file)["tool"]["ariadne-codegen"])


def toml_value(value: object) -> str:
    """A TOML literal for the simple values the settings hold (strings, booleans, lists, numbers)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, int | float):
        return repr(value)
    raise TypeError(f"unsupported setting value {value!r}")


def config_text(values: dict[str, object]) -> str:
    """A pyproject.toml holding only [tool.ariadne-codegen] (with its sub-tables, e.g. scalars)."""
    lines = ["[tool.ariadne-codegen]"]
    tables: list[tuple[str, dict[str, object]]] = []
    for key, value in values.items():
        if isinstance(value, dict):
            tables.extend((f"{key}.{name}", table) for name, table in value.items())
        else:
            lines.append(f"{key} = {toml_value(value)}")
    for name, table in tables:
        lines.append(f"\n[tool.ariadne-codegen.{name}]")
        lines.extend(f"{key} = {toml_value(value)}" for key, value in table.items())
    return "\n".join(lines) + "\n"


def generate_into(scratch: Path) -> Path:
    """Run ariadne-codegen with this directory's settings into `scratch`; the generated package's path."""
    values = settings()
    name = str(values["target_package_name"])
    values["target_package_path"] = str(scratch)
    config = scratch / "pyproject.toml"
    config.write_text(config_text(values), encoding="utf-8")
    # From this directory, so that the schema and queries paths (and the "# Source:" comments naming
    # them) are those of pyproject.toml.
    result = subprocess.run(
        [sys.executable, "-m", "ariadne_codegen", "--config", str(config), "client"],
        cwd=HERE,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"ariadne-codegen failed (exit {result.returncode})")
    return scratch / name


def files(package: Path) -> dict[str, str]:
    """The package's files (relative path -> text), without caches."""
    return {
        path.relative_to(package).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(package.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def committed_package() -> Path:
    """Where the generated package lives in this directory."""
    values = settings()
    return HERE / str(values["target_package_path"]) / str(values["target_package_name"])


def check() -> int:
    """0 if the committed package equals a fresh generation; else print what differs and answer 1."""
    target = committed_package()
    with tempfile.TemporaryDirectory(prefix="syncforge-codegen-") as scratch:
        fresh = files(generate_into(Path(scratch)))
    current = files(target) if target.is_dir() else {}
    if fresh == current:
        print(f"{target.relative_to(HERE)} is up to date")
        return 0
    report: list[str] = []
    for name in sorted(fresh.keys() | current.keys()):
        if name not in current:
            report.append(f"missing: {name}\n")
        elif name not in fresh:
            report.append(f"no longer generated: {name}\n")
        elif fresh[name] != current[name]:
            report.extend(
                difflib.unified_diff(
                    current[name].splitlines(keepends=True),
                    fresh[name].splitlines(keepends=True),
                    f"committed/{name}",
                    f"generated/{name}",
                )
            )
    shown = "".join(report[:200])
    print(
        f"{target.relative_to(HERE)} is stale relative to schema.graphql and queries.graphql: "
        f"run `{REGENERATE}` and commit the result.\n{shown}"
    )
    return 1


def generate() -> int:
    """Replace the committed package with a fresh generation."""
    target = committed_package()
    with tempfile.TemporaryDirectory(prefix="syncforge-codegen-") as scratch:
        fresh = generate_into(Path(scratch))
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(fresh, target, ignore=shutil.ignore_patterns("__pycache__"))
    print(f"generated {target.relative_to(HERE)} ({len(files(target))} files)")
    return 0


def main() -> int:
    """Command line: generate, or --check."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="only check that the generated code is current")
    return check() if parser.parse_args().check else generate()


if __name__ == "__main__":
    raise SystemExit(main())
