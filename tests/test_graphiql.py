"""GraphiQL is self-hosted: the page loads only /graphiql-assets/ files and works with no internet.

The assets are build output (`npm ci && npm run build`, see scripts/build-graphiql.mjs); these tests
fail, with that command in the message, when they are missing.

The browser test drives Debian's headless Chromium (/usr/bin/chromium, or $SYNCFORGE_CHROMIUM)
through the `playwright` package, never a browser that Playwright downloads. Without either it is
skipped, unless SYNCFORGE_REQUIRE_BROWSER=1 (CI), which turns the skip into a failure.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from app.graphql import view
from app.graphql.view import GRAPHIQL_ASSETS, GRAPHIQL_ASSETS_URL, GRAPHIQL_MARKER
from tests.conftest import LiveServer

CHROMIUM = os.environ.get("SYNCFORGE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REQUIRE_BROWSER = os.environ.get("SYNCFORGE_REQUIRE_BROWSER") == "1"
SCREENSHOT = Path(
    os.environ.get("SYNCFORGE_GRAPHIQL_SCREENSHOT", Path(tempfile.gettempdir()) / "graphiql.png")
)

DEFAULT_QUERY = "{ health { ok version mode } }"
SUBSCRIPTION = "subscription { health(intervalMs: 200) { ok } }"

QUERY_EDITOR = "document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror"
RESULT_TEXT = (
    "(() => { const e = document.querySelector('.result-window .CodeMirror');"
    " return e ? e.CodeMirror.getValue() : ''; })()"
)


def require_assets() -> None:
    if not GRAPHIQL_MARKER.exists():
        pytest.fail(
            f"GraphiQL assets are not built ({GRAPHIQL_MARKER} is missing): "
            "run `npm ci && npm run build` in the repository root"
        )


def require_browser(reason: str) -> NoReturn:
    """Skip for want of a browser, or fail when CI said one must be there."""
    if REQUIRE_BROWSER:
        pytest.fail(f"{reason}, and SYNCFORGE_REQUIRE_BROWSER=1 requires the browser test to run")
    pytest.skip(reason)


class _UrlCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value is not None:
                self.urls.append((tag, name, value))


async def test_graphiql_page_references_only_its_own_assets(live_server: LiveServer) -> None:
    require_assets()
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        page = await http.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 200, page.text[:500]
        assert page.headers["content-type"].startswith("text/html")
        html = page.text
        assert "<title>SyncForge GraphiQL</title>" in html
        assert "{{ASSETS}}" not in html
        assert DEFAULT_QUERY in html
        # Not only in src/href: no absolute URL anywhere (inline script, CSS, comments).
        absolute = re.findall(r"(?i)(?:[a-z][a-z0-9+.-]*:)?//[a-z0-9-]+(?:\.[a-z0-9-]+)+", html)
        assert absolute == [], f"absolute URLs in the page: {absolute}"

        collector = _UrlCollector()
        collector.feed(html)
        urls = [value for _, _, value in collector.urls]
        assert urls, "the page references no assets at all"
        for tag, attr, value in collector.urls:
            parts = urlsplit(value)
            assert not parts.scheme and not parts.netloc, f"<{tag} {attr}={value!r}> is external"
            assert parts.path.startswith(f"{GRAPHIQL_ASSETS_URL}/"), (
                f"<{tag} {attr}={value!r}> is not under {GRAPHIQL_ASSETS_URL}/"
            )
        assert f"{GRAPHIQL_ASSETS_URL}/graphiql.min.js" in urls
        assert f"{GRAPHIQL_ASSETS_URL}/graphiql.min.css" in urls

        for value in urls:
            asset = await http.get(urljoin(str(page.url), value))
            assert asset.status_code == 200, f"{value}: HTTP {asset.status_code}"
            assert asset.content, f"{value}: empty body"
            kind = asset.headers["content-type"]
            if value.endswith(".js"):
                assert "javascript" in kind, f"{value}: served as {kind}"
            elif value.endswith(".css"):
                assert kind.startswith("text/css"), f"{value}: served as {kind}"
            # The file served is the one the build copied (and nothing else is in that URL space).
            assert (GRAPHIQL_ASSETS / Path(value).name).read_bytes() == asset.content


async def test_graphiql_page_explains_missing_assets(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(view, "GRAPHIQL_MARKER", tmp_path / "graphiql.min.js")
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        page = await http.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 503
        assert "npm ci &amp;&amp; npm run build" in page.text
        # The endpoint itself still answers.
        query = await http.post("/graphql", json={"query": "{ health { ok } }"})
        assert query.json() == {"data": {"health": {"ok": True}}}


@pytest.mark.browser
async def test_graphiql_runs_a_query_and_a_subscription_offline(live_server: LiveServer) -> None:
    require_assets()
    if not os.access(CHROMIUM, os.X_OK):
        require_browser(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.async_api import Route, WebSocket, async_playwright
    except ImportError:
        require_browser("the playwright package is not installed (pip install playwright)")

    origin = urlsplit(live_server.url)
    external: list[str] = []  # requests for anything but the local server, all aborted
    page_errors: list[str] = []
    console_errors: list[str] = []
    failed: list[str] = []  # same-origin requests that failed or answered >= 400
    sockets: list[str] = []
    ws_sent: list[dict[str, Any]] = []
    ws_received: list[dict[str, Any]] = []

    async def offline(route: Route) -> None:
        host = urlsplit(route.request.url).hostname
        if host == origin.hostname:
            await route.continue_()
        else:
            external.append(route.request.url)
            await route.abort("internetdisconnected")

    def on_websocket(ws: WebSocket) -> None:
        sockets.append(ws.url)
        ws.on("framesent", lambda payload: ws_sent.append(json.loads(payload)))
        ws.on("framereceived", lambda payload: ws_received.append(json.loads(payload)))

    def on_response(response: Any) -> None:
        if response.status >= 400 and urlsplit(response.url).netloc == origin.netloc:
            failed.append(f"{response.url}: HTTP {response.status}")

    def on_request_failed(request: Any) -> None:
        if urlsplit(request.url).netloc == origin.netloc:
            failed.append(f"{request.url}: {request.failure}")

    def on_console(message: Any) -> None:
        if message.type == "error":
            console_errors.append(message.text)

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport={"width": 1400, "height": 850})
            context.set_default_timeout(20_000)
            page = await context.new_page()
            await page.route("**/*", offline)
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            page.on("console", on_console)
            page.on("websocket", on_websocket)
            page.on("response", on_response)
            page.on("requestfailed", on_request_failed)

            try:
                await page.goto(f"{live_server.url}/graphql", wait_until="load")
                await page.wait_for_selector(".graphiql-query-editor .CodeMirror")
                assert await page.title() == "SyncForge GraphiQL"
                assert await page.evaluate(f"{QUERY_EDITOR}.getValue()") == DEFAULT_QUERY
                # The explorer plugin and the headers editor are there.
                await page.get_by_role("button", name="Show GraphiQL Explorer").wait_for()
                await page.get_by_text("Headers", exact=True).wait_for()

                # The default query, over HTTP.
                execute = page.locator(".graphiql-execute-button")
                await execute.click()
                await page.wait_for_function(f"{RESULT_TEXT}.includes('\"ok\": true')")
                result = json.loads(await page.evaluate(RESULT_TEXT))
                health = result["data"]["health"]
                assert health["ok"] is True and health["version"] and health["mode"]
                assert sockets == [], "a query must go over HTTP, not the WebSocket"

                # A subscription, over WebSocket (graphql-transport-ws).
                await page.evaluate(f"{QUERY_EDITOR}.setValue({json.dumps(SUBSCRIPTION)})")
                # GraphiQL re-parses the editor after a debounce; executing before that would
                # send the previous document (a query) over HTTP.
                await page.wait_for_function(
                    f"{QUERY_EDITOR}.documentAST?.definitions[0]?.operation === 'subscription'"
                )
                await execute.click()
                # Only the subscription's result is exactly {"health": {"ok": true}}.
                await page.wait_for_function(
                    f"(() => {{ try {{ return JSON.stringify(JSON.parse({RESULT_TEXT}))"
                    ' === \'{"data":{"health":{"ok":true}}}\'; } catch { return false; } })()'
                )
                await page.wait_for_function(
                    "document.querySelector('.graphiql-execute-button')"
                    ".getAttribute('aria-label').startsWith('Stop')"
                )
                # It streams: wait for a few more events (200 ms apart).
                for _ in range(50):
                    if sum(m.get("type") == "next" for m in ws_received) >= 3:
                        break
                    await page.wait_for_timeout(100)
                await page.screenshot(path=str(SCREENSHOT))
                await execute.click()  # stop
                await page.wait_for_function(
                    "document.querySelector('.graphiql-execute-button')"
                    ".getAttribute('aria-label').startsWith('Execute')"
                )
            except Exception:
                await page.screenshot(path=str(SCREENSHOT))
                raise
        finally:
            await browser.close()

    assert external == [], f"the page tried to reach the internet: {external}"
    assert page_errors == [], page_errors
    assert console_errors == [], console_errors
    assert failed == [], failed

    assert sockets == [f"ws://{origin.netloc}/graphql"]
    sent_types = [m["type"] for m in ws_sent]
    assert sent_types[0] == "connection_init"
    assert "subscribe" in sent_types  # graphql-transport-ws (the legacy protocol says "start")
    subscribe = next(m for m in ws_sent if m["type"] == "subscribe")
    assert subscribe["payload"]["query"] == SUBSCRIPTION
    assert ws_received[0]["type"] == "connection_ack"
    events = [m["payload"] for m in ws_received if m["type"] == "next"]
    assert len(events) >= 3, ws_received
    assert all(event == {"data": {"health": {"ok": True}}} for event in events), events
    # Stopping the subscription in GraphiQL completes it on the server's socket.
    assert {"id": subscribe["id"], "type": "complete"} in ws_sent
