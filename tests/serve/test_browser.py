"""The web page in a real headless Chromium (Debian's ``chromium`` package, driven by Playwright).

No browser is downloaded: Playwright gets ``executable_path`` of the system binary, and the test
skips with the reason when there is none (``apt-get install -y chromium``; .ci/run does it).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def chromium_binary() -> str | None:
    candidates = [os.environ.get("KMED_CHROMIUM"), "/usr/lib/chromium/chromium", shutil.which("chromium"),
                  shutil.which("chromium-browser"), shutil.which("google-chrome")]
    return next((c for c in candidates if c and Path(c).is_file() and os.access(c, os.X_OK)), None)


@pytest.fixture
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the dev extra)")
    binary = chromium_binary()
    if binary is None:
        pytest.skip("no chromium binary found: apt-get install -y chromium (or set KMED_CHROMIUM=/path/to/chrome)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=binary, headless=True, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


def _send(page, text: str) -> None:
    page.click("#input")
    page.keyboard.type(text)  # real key events, one per character
    page.keyboard.press("Enter")


def _bot_replies(page) -> int:
    return page.locator(".msg.bot:not(.intro) .meta").count()


def test_chat_page_end_to_end(browser, make_app, live_server, tmp_path):
    server = live_server(make_app(rate_limit_per_min=0))
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="ko-KR")
    page.goto(server.url + "/")
    assert page.locator(".disclaimer").is_visible()

    # Korean IME: Enter while a syllable is being composed must not send it.
    page.click("#input")
    cdp = page.context.new_cdp_session(page)
    cdp.send("Input.imeSetComposition", {"text": "머", "selectionStart": 1, "selectionEnd": 1})
    page.keyboard.press("Enter")
    cdp.send("Input.dispatchKeyEvent", {"type": "keyDown", "key": "Enter", "code": "Enter",
                                        "windowsVirtualKeyCode": 229, "nativeVirtualKeyCode": 229})
    cdp.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": "Enter", "code": "Enter",
                                        "windowsVirtualKeyCode": 229, "nativeVirtualKeyCode": 229})
    cdp.send("Input.insertText", {"text": "머"})  # the IME commits the syllable
    page.wait_for_timeout(300)
    assert page.locator(".msg.user").count() == 0 and page.input_value("#input").strip() == "머"
    page.fill("#input", "")

    # A question typed key by key, streamed, answered with citations.
    _send(page, "당뇨병 진단 기준이 뭐예요?")
    page.wait_for_selector(".msg.bot .sources", timeout=15000)
    assert page.locator(".msg.user").first.inner_text() == "당뇨병 진단 기준이 뭐예요?"
    timings = page.evaluate("window.kmedTimings")
    assert timings[0]["ttft_ms"] is not None and timings[0]["ttft_ms"] <= timings[0]["total_ms"]
    assert timings[0]["total_ms"] < 3000  # the brief: an answer within 3 seconds
    answer = page.locator(".msg.bot:not(.intro)").last
    assert "[1]" in answer.inner_text()

    # [n] opens the cited passage and its source.
    answer.locator("button.cite").first.click()
    dialog = page.locator("#source")
    dialog.wait_for(state="visible")
    page.wait_for_function("document.querySelector('#source-list a') !== null", timeout=5000)
    assert page.locator("#source-title").inner_text() and len(page.locator("#source-text").inner_text()) > 10
    page.screenshot(path=str(tmp_path / "citation.png"))
    page.click("#source-close")
    dialog.wait_for(state="hidden")

    # An emergency: the red banner with tap-to-call links, above everything.
    _send(page, "가슴이 쥐어짜듯 아프고 식은땀이 나요")
    page.wait_for_selector("#emergency:not([hidden])", timeout=15000)
    page.wait_for_function("document.querySelectorAll('.msg.bot:not(.intro) .meta').length >= 2")
    banner = page.locator("#emergency")
    hrefs = banner.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert hrefs == ["tel:119", "tel:109", "tel:1577-0199"]
    assert banner.bounding_box()["y"] == 0
    assert page.locator(".disclaimer").is_visible()
    page.screenshot(path=str(tmp_path / "desktop.png"))

    # On a phone: no sideways scrolling, banner and disclaimer still in view.
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(200)
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    assert banner.is_visible() and page.locator(".disclaimer").is_visible()
    page.screenshot(path=str(tmp_path / "phone.png"))

    # A reload continues the stored consultation; "새 상담" starts over.
    page.reload()
    page.wait_for_selector(".msg.user")
    assert page.locator(".msg.user").count() == 2
    page.click("#new")
    assert page.locator(".msg.user").count() == 0 and page.locator("#emergency").is_hidden()
    _send(page, "안녕하세요")
    page.wait_for_function("document.querySelectorAll('.msg.bot:not(.intro) .meta').length >= 1")
    assert "kmed" in page.locator(".msg.bot:not(.intro)").last.inner_text()

    (tmp_path / "timings.json").write_text(json.dumps(timings + page.evaluate("window.kmedTimings")), encoding="utf-8")
    print(f"\nscreenshots and timings in {tmp_path}: first answer {timings[0]}")
