"""The demo in a real browser (Debian's Chromium through Playwright, nothing but 127.0.0.1
reachable): two visitors open /demo, each sees the other's avatar and moving cursor, text typed
in one appears in the other, a reaction crosses over, and an idle cursor fades."""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from app.demo.routes import DEMO_MARKER
from tests.test_graphiql import CHROMIUM, CHROMIUM_ARGS, require_browser

IDLE_S = 2.0
AVATARS = "document.querySelectorAll('.sf-avatar[data-user-id]').length === 2"
CURSOR_MOVED = (
    "(before) => [...document.querySelectorAll('.sf-cursor')]"
    ".some(e => e.style.transform !== before && e.textContent.includes('Alice'))"
)
EDITOR_HAS = "(text) => document.querySelector('.cm-content').innerText.includes(text)"
STYLE_OF = "(e, property) => getComputedStyle(e)[property]"
SCREENSHOT = Path(os.environ.get("SYNCFORGE_DEMO_SCREENSHOT", Path(tempfile.gettempdir()) / "demo.png"))


async def _visitor(browser: Any, url: str, name: str, color_index: int, problems: list[str]) -> Any:
    context = await browser.new_context(viewport={"width": 1200, "height": 800})
    context.set_default_timeout(20_000)
    page = await context.new_page()
    origin = urlsplit(url).hostname

    async def offline(route: Any) -> None:
        if urlsplit(route.request.url).hostname == origin:
            await route.continue_()
        else:
            problems.append(f"{name}: external request {route.request.url}")
            await route.abort("internetdisconnected")

    await page.route("**/*", offline)
    page.on("pageerror", lambda error: problems.append(f"{name}: page error {error}"))
    page.on("console", lambda m: m.type == "error" and problems.append(f"{name}: console {m.text}"))
    await page.goto(f"{url}/demo", wait_until="load")
    await page.fill("#demo-name", name)
    await page.locator(".demo-colors button").nth(color_index).click()
    await page.click("text=Join the room")
    await page.wait_for_selector('[data-testid=status][data-status="connected"]')
    return page


async def _cursor_of(page: Any, name: str) -> Any:
    cursor = page.locator(".sf-cursor", has=page.locator(".sf-cursor-label", has_text=name))
    await cursor.wait_for(state="visible")
    return cursor


@pytest.mark.timeout(180)
async def test_two_visitors_see_each_other_and_edit_together(live_server_with) -> None:  # type: ignore[no-untyped-def]
    if not DEMO_MARKER.exists():
        pytest.fail(f"the demo is not built ({DEMO_MARKER} is missing): run `npm ci && npm run build`")
    if not os.access(CHROMIUM, os.X_OK):
        require_browser(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        require_browser("the playwright package is not installed")
    server = await live_server_with(demo_enabled=True, cursor_idle_s=IDLE_S)
    problems: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            alice = await _visitor(browser, server.url, "Alice", 0, problems)
            bob = await _visitor(browser, server.url, "Bob", 4, problems)

            # Avatars: each sees both, the other by name.
            for page, other in ((alice, "Bob"), (bob, "Alice")):
                await page.wait_for_function(AVATARS)
                assert await page.locator(f'.sf-avatar[title^="{other}"]').count() == 1

            # Cursors: Alice moves over the stage, Bob sees her labelled cursor follow.
            stage = await alice.locator("[data-testid=stage]").bounding_box()
            await alice.mouse.move(stage["x"] + 100, stage["y"] + 300)
            cursor = await _cursor_of(bob, "Alice")
            first = await cursor.evaluate("e => e.style.transform")
            for step in range(1, 6):
                await alice.mouse.move(stage["x"] + 100 + step * 60, stage["y"] + 300 + step * 10)
                await asyncio.sleep(0.06)
            await bob.wait_for_function(CURSOR_MOVED, arg=first)
            moved = await cursor.evaluate("e => e.style.transform")
            assert re.match(r"translate\(\d+(\.\d+)?px, \d+(\.\d+)?px\)", moved), moved
            assert moved != first
            label_color = await cursor.locator(".sf-cursor-label").evaluate(STYLE_OF, "backgroundColor")
            assert label_color == "rgb(225, 29, 72)", label_color  # Alice's color (#e11d48)

            # Text: typed by one, seen by the other, both ways.
            await alice.locator(".cm-content").click()
            await alice.keyboard.type("Hello from Alice. ")
            await bob.wait_for_function(EDITOR_HAS, arg="Hello from Alice.")
            await bob.locator(".cm-content").click()
            await bob.keyboard.press("End")
            await bob.keyboard.type("Bob was here.")
            await alice.wait_for_function(EDITOR_HAS, arg="Bob was here.")
            await alice.wait_for_selector('[data-testid=sync][data-sync="synchronized"]')

            # A reaction broadcast by Bob floats up on Alice's screen.
            await bob.click("text=🎉")
            await alice.wait_for_selector("[data-testid=reaction]:has-text('🎉')", timeout=5000)

            # Alice stops moving: after the idle delay Bob's view of her cursor fades.
            await alice.mouse.move(stage["x"] + 500, stage["y"] + 200)
            cursor = await _cursor_of(bob, "Alice")
            assert await cursor.get_attribute("data-idle") == "false"
            await bob.wait_for_selector('.sf-cursor[data-idle="true"]', timeout=(IDLE_S + 8) * 1000)
            await asyncio.sleep(0.8)  # the fade's transition
            faded = bob.locator('.sf-cursor[data-idle="true"]')
            opacity = float(await faded.evaluate(STYLE_OF, "opacity"))
            assert opacity < 0.5, opacity
            await bob.screenshot(path=str(SCREENSHOT))
        finally:
            await browser.close()
    assert problems == []
