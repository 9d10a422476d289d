"""Reconnection with state recovery (NFR-1.5, NFR-4.7): the server process is killed while two
SDK clients edit, and restarted; both end with the same text, holding every edit (those made
during the outage too) exactly once, and the server stores that text."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import Settings
from tests.backends import IS_POSTGRES, REDIS_URL
from tests.sdk_node import require_built_sdk
from tests.sdk_outage import outage_round


@pytest.mark.timeout(240)
async def test_server_restart_loses_no_edit_and_applies_none_twice(
    settings: Settings, tmp_path: Path
) -> None:
    require_built_sdk()
    result = await outage_round(settings, REDIS_URL if IS_POSTGRES else None, tmp_path)
    print(result)
    assert result["sawOffline"] == [True, True], "the clients never noticed the outage"
    assert all(count > 0 for count in result["offlineEdits"]), "no edit was made during the outage"
    assert result["missing"] == []
    assert result["duplicated"] == []
    assert result["unexpected"] == []
    assert result["converged"] is True
    assert result["serverMatches"] is True
