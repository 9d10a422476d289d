"""The `syncforge` command: serve, worker, migrate, export-schema, mailbox, dev-keys."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from app.settings import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from app.accounts.credentials_models import EmailMessage
    from app.demo.dev_keys import DevKeys

log = logging.getLogger("syncforge")


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    from app.db.migrate import upgrade
    from app.main import create_app
    from app.preflight import check_dependencies

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = load_settings(**overrides)
    _configure_logging(settings)
    asyncio.run(check_dependencies(settings))
    if settings.should_auto_migrate:
        upgrade(settings)
    log.info("GraphiQL at http://%s:%s/graphql", settings.host, settings.port)
    # Fewer, larger young-generation collections: a realtime server allocates constantly, and
    # the default (every 700 net allocations) spent ~3x longer collecting in the cursor benchmark.
    gc.set_threshold(20_000, 20, 20)
    uvicorn.run(
        create_app(settings, freeze_gc=True),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        ws="websockets-sansio",
        ws_max_size=settings.max_request_bytes,
        # Per-message deflate costs ~5x fan-out capacity and ~37 KiB per idle connection.
        ws_per_message_deflate=False,
        # Keepalive is graphql-transport-ws pings from one loop (app/graphql/ws/keepalive.py),
        # not a protocol-level timer per connection.
        ws_ping_interval=None,
    )


def cmd_worker(args: argparse.Namespace) -> None:
    from app.preflight import check_dependencies
    from workers.broker import JobQueue

    settings = load_settings()
    if not settings.redis_url:
        raise ConfigError(
            "REDIS_URL: required by `syncforge worker` (in the embedded default, "
            "`syncforge serve` runs jobs itself)"
        )
    _configure_logging(settings)
    asyncio.run(check_dependencies(settings))
    jobs = JobQueue(settings)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    worker = jobs.start_worker(args.threads)
    log.info("worker consuming %s", ", ".join(sorted(jobs.broker.get_declared_queues())))
    stop.wait()
    log.info("worker stopping")
    worker.stop()
    jobs.close()


def cmd_scheduler(args: argparse.Namespace) -> None:
    from app.preflight import check_dependencies
    from workers.broker import JobQueue
    from workers.scheduler import build_scheduler

    settings = load_settings()
    if not settings.redis_url:
        raise ConfigError(
            "REDIS_URL: required by `syncforge scheduler` (in the embedded default, "
            "`syncforge serve` schedules jobs itself)"
        )
    _configure_logging(settings)
    asyncio.run(check_dependencies(settings))

    async def run() -> None:
        jobs = JobQueue(settings)
        scheduler = build_scheduler(jobs, settings)
        scheduler.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        log.info("scheduler running: %s", ", ".join(job.id for job in scheduler.get_jobs()))
        await stop.wait()
        scheduler.shutdown(wait=False)
        jobs.close()

    asyncio.run(run())


def cmd_migrate(args: argparse.Namespace) -> None:
    from app.db.migrate import downgrade, upgrade
    from app.preflight import check_database

    settings = load_settings()
    _configure_logging(settings)
    asyncio.run(check_database(settings))
    if args.downgrade:
        downgrade(settings, args.downgrade)
    else:
        upgrade(settings, args.revision)


def cmd_export_schema(args: argparse.Namespace) -> None:
    from app.graphql.schema import export_sdl

    sdl = export_sdl()
    if args.output:
        Path(args.output).write_text(sdl)
    else:
        sys.stdout.write(sdl)


async def _read_mailbox(settings: Settings, limit: int, to: str | None) -> list[EmailMessage]:
    from sqlalchemy import func, select
    from sqlalchemy.exc import DBAPIError

    from app.accounts.credentials_models import EmailMessage
    from app.db import create_engine, create_session_factory
    from app.preflight import check_database

    await check_database(settings)
    query = select(EmailMessage).order_by(EmailMessage.created_at.desc()).limit(limit)  # type: ignore[attr-defined]
    if to is not None:
        query = query.where(func.lower(EmailMessage.to_address) == to.strip().lower())
    engine = create_engine(settings)
    try:
        async with create_session_factory(engine)() as session:
            return list((await session.execute(query)).scalars())
    except DBAPIError as exc:
        raise ConfigError(
            f"DATABASE_URL: cannot read the mailbox ({_reason(exc)}); run `syncforge migrate`?"
        ) from None
    finally:
        await engine.dispose()


def _reason(exc: Exception) -> str:
    """A database error's first line (the driver's message), for a one-line CLI error."""
    orig = getattr(exc, "orig", None)
    return str(orig).strip().splitlines()[0] if orig is not None else type(exc).__name__


def cmd_mailbox(args: argparse.Namespace) -> None:
    if args.limit < 1:
        raise ConfigError("--limit: must be at least 1")
    settings = load_settings()
    messages = asyncio.run(_read_mailbox(settings, args.limit, args.to))
    if not messages:
        print("The mailbox is empty." if args.to is None else f"No email to {args.to}.")
    for message in messages:
        sys.stdout.write(
            f"{'=' * 72}\n"
            f"To:      {message.to_address}\n"
            f"Subject: {message.subject}\n"
            f"Date:    {message.created_at.isoformat(timespec='seconds')}\n"
            f"Status:  {message.status}{f' ({message.error})' if message.error else ''}\n\n"
            f"{message.body_text}\n\n"
        )


# What `dev-keys` prints, as .env / shell lines. Not SYNCFORGE_SECRET_KEY: that is the
# deployment's own secret (settings), which an sk_live_ key must never be mistaken for.
DEV_KEYS_VARIABLES = ("SYNCFORGE_GRAPHQL_URL", "SYNCFORGE_PUBLIC_API_KEY", "SYNCFORGE_SECRET_API_KEY")


async def _dev_keys(settings: Settings, slug: str) -> DevKeys:
    from sqlalchemy.exc import DBAPIError

    from app.db import create_engine, create_session_factory
    from app.demo.dev_keys import ensure_dev_keys
    from app.errors import DomainError
    from app.security.keys import load_keys

    engine = create_engine(settings)
    try:
        return await ensure_dev_keys(create_session_factory(engine), load_keys(settings), settings, slug=slug)
    except DomainError as exc:
        raise ConfigError(f"--org: {exc.message}") from None
    except DBAPIError as exc:
        raise ConfigError(
            f"DATABASE_URL: cannot write the keys ({_reason(exc)}); run `syncforge migrate`?"
        ) from None
    finally:
        await engine.dispose()


def cmd_dev_keys(args: argparse.Namespace) -> None:
    from app.db.migrate import upgrade
    from app.preflight import check_database

    settings = load_settings()
    _configure_logging(settings)
    asyncio.run(check_database(settings))
    if settings.should_auto_migrate:  # the embedded default: as `serve` would, on a fresh directory
        upgrade(settings)
    if not settings.is_sqlite:
        print(
            "syncforge: note: dev-keys is meant for development; DATABASE_URL is not the embedded default",
            file=sys.stderr,
        )
    result = asyncio.run(_dev_keys(settings, args.org))
    graphql_url = f"{settings.public_url.rstrip('/')}/graphql"
    account = result.created_account
    if args.json:
        document = {
            "graphqlUrl": graphql_url,
            "publicApiKey": result.public_api_key,
            "secretApiKey": result.secret_api_key,
            "organization": {
                "id": str(result.organization_id),
                "slug": result.organization_slug,
                "name": result.organization_name,
            },
            "owners": result.owners,
            "createdAccount": {"email": account.email, "password": account.password} if account else None,
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return
    lines = [
        f"# SyncForge development keys of organization {result.organization_name!r}"
        f" (slug {result.organization_slug}, id {result.organization_id}).",
        "# The same keys are printed on every run (derived from this deployment's secret key);",
        "# revoke one in GraphiQL (revokeApiKey) and the next run prints a new one.",
    ]
    if account is not None:
        lines += [
            f"# Created the developer account {account.email} with the password {account.password}",
            "# (shown only now): log in to GraphiQL with it (the logIn mutation).",
        ]
    elif result.owners:
        lines.append(
            f"# Owned by {', '.join(result.owners)}: log in with that account (lost the password?"
            " requestPasswordReset, then `syncforge mailbox`)."
        )
    url_name, public_name, secret_name = DEV_KEYS_VARIABLES
    lines += [
        f"{url_name}={graphql_url}",
        f"{public_name}={result.public_api_key}",
        f"{secret_name}={result.secret_api_key}",
    ]
    sys.stdout.write("\n".join(lines) + "\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="syncforge",
        description=(
            "SyncForge real-time collaboration backend. With no configuration it runs embedded "
            "(SQLite file ./syncforge.db, in-memory pub/sub, jobs in-process); set DATABASE_URL "
            "(postgresql+asyncpg://...) and REDIS_URL (redis://...) for production."
        ),
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser(
        "serve",
        help="run the API (GraphQL over HTTP and WebSocket, GraphiQL at /graphql)",
        description="Run the API. On SQLite the database is migrated to head first.",
    )
    serve.add_argument("--host", help="interface to bind (default 127.0.0.1, SYNCFORGE_HOST)")
    serve.add_argument("--port", type=int, help="port to bind (default 8000, SYNCFORGE_PORT)")
    serve.set_defaults(handler=cmd_serve)

    worker = sub.add_parser(
        "worker",
        help="run background jobs from the Redis queue (production mode)",
        description="Consume Dramatiq jobs from Redis (REDIS_URL). Run as many as you need.",
    )
    worker.add_argument("--threads", type=int, help="worker threads (default SYNCFORGE_WORKER_THREADS)")
    worker.set_defaults(handler=cmd_worker)

    scheduler = sub.add_parser(
        "scheduler",
        help="enqueue periodic jobs (production mode; run exactly one)",
        description="Enqueue periodic jobs (room archiving, retention) on the Redis queue.",
    )
    scheduler.set_defaults(handler=cmd_scheduler)

    migrate = sub.add_parser(
        "migrate",
        help="apply database migrations (to head by default)",
        description="Upgrade the database (DATABASE_URL) to a revision, or downgrade it.",
    )
    migrate.add_argument("revision", nargs="?", default="head", help="target revision (default head)")
    migrate.add_argument("--downgrade", metavar="REVISION", help="downgrade to REVISION (e.g. base)")
    migrate.set_defaults(handler=cmd_migrate)

    export = sub.add_parser(
        "export-schema",
        help="print the GraphQL schema (SDL), as committed in schema.graphql",
        description="Print the GraphQL SDL exported from the code.",
    )
    export.add_argument("--output", "-o", help="write to this file instead of stdout")
    export.set_defaults(handler=cmd_export_schema)

    mailbox = sub.add_parser(
        "mailbox",
        help="print the latest emails the service sent (verification and reset links)",
        description=(
            "Print the latest emails from the database (DATABASE_URL), newest first. Without SMTP "
            "settings this is where they go: read verification and password reset links here."
        ),
    )
    mailbox.add_argument("--limit", type=int, default=10, help="how many messages (default 10)")
    mailbox.add_argument("--to", metavar="EMAIL", help="only messages to this address")
    mailbox.set_defaults(handler=cmd_mailbox)

    dev_keys = sub.add_parser(
        "dev-keys",
        help="print (creating them if needed) a development organization's publishable and secret keys",
        description=(
            "Find or create a development organization (and a developer account owning it) in the "
            "database (DATABASE_URL; the embedded default is migrated first) and print its "
            "publishable and secret keys and the GraphQL URL, as lines for an .env file. The same "
            "keys every run. Meant for development."
        ),
    )
    dev_keys.add_argument("--org", default="dev", metavar="SLUG", help="its slug (default dev)")
    dev_keys.add_argument("--json", action="store_true", help="print one JSON object (for scripts)")
    dev_keys.set_defaults(handler=cmd_dev_keys)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], None] = args.handler
    try:
        handler(args)
    except ConfigError as exc:
        print(f"syncforge: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
