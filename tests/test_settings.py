from __future__ import annotations

import pytest

from app.settings import ConfigError, Mode, Settings, load_settings


def test_no_configuration_is_the_embedded_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "REDIS_URL", "SYNCFORGE_DATABASE_URL", "SYNCFORGE_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.mode is Mode.EMBEDDED
    assert settings.database_url == "sqlite+aiosqlite:///./syncforge.db"
    assert settings.should_auto_migrate
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)


def test_database_and_redis_urls_select_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:pw@db:5432/sync")
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/0")
    settings = load_settings()
    assert settings.mode is Mode.PRODUCTION
    assert settings.database_url == "postgresql+asyncpg://app:pw@db:5432/sync"
    assert not settings.is_sqlite
    assert not settings.should_auto_migrate


@pytest.mark.parametrize(
    ("env", "value", "fragment"),
    [
        ("DATABASE_URL", "not a url", "DATABASE_URL: is not a database URL"),
        ("DATABASE_URL", "mysql://root@localhost/x", "DATABASE_URL: unsupported database 'mysql'"),
        ("DATABASE_URL", "postgresql+asyncpg://u@h:5432", "DATABASE_URL: names no database"),
        ("REDIS_URL", "http://localhost:6379", "REDIS_URL: must start with redis://"),
        ("SYNCFORGE_PORT", "eighty", "SYNCFORGE_PORT:"),
    ],
)
def test_a_wrong_setting_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(fragment), message
    assert "\n" not in message


def test_settings_are_plain_objects_for_tests() -> None:
    settings = Settings(database_url="sqlite:///tmp/x.db", redis_url="")
    assert settings.database_url == "sqlite+aiosqlite:///tmp/x.db"
    assert settings.redis_url is None
