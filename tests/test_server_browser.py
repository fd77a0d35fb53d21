"""The chat page in a real browser: Debian's chromium driven by Playwright, headless, nothing downloaded."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from openai_wire import ANSWER_PIECES, OpenAIWire, serve
from server_support import load_samples, running_server, server_settings

pytestmark = pytest.mark.integration

from browser_support import chromium, sync_api  # skips the module without chromium

# records every state of the streaming answer, so the test can tell a streamed answer from one that appears whole
WATCH_ANSWER = """() => {
  window.answerStates = [];
  new MutationObserver(() => {
    const answers = document.querySelectorAll('.msg.assistant .answer');
    if (answers.length) window.answerStates.push(answers[answers.length - 1].textContent);
  }).observe(document.querySelector('#messages'), {childList: true, subtree: true, characterData: true});
}"""


@pytest.fixture(scope="module")
def page_url(tmp_path_factory):
    """A --dev server (no key, like `sieve serve --dev`) whose answers come from a streaming loopback model."""
    wire = OpenAIWire()
    with serve(wire.app) as wire_url:
        settings = server_settings(tmp_path_factory.mktemp("browser-home"), auth_disabled=True,
                                   llm_base_url=f"{wire_url}/v1", llm_model="served-model")
        with running_server(settings) as url:
            with httpx.Client(base_url=url, timeout=60) as client:
                load_samples(client, "demo")
            yield url, wire


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


def ask(page, question: str):
    page.evaluate(WATCH_ANSWER)
    page.fill("#question", question)
    page.click("#send")
    answer = page.locator(".msg.assistant").last
    sync_api.expect(answer).to_have_attribute("data-state", "done", timeout=60_000)
    return answer


def test_the_chat_page_streams_an_answer_with_clickable_citations(page_url, browser, tmp_path):
    url, wire = page_url
    wire.mode = "ok"
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(url)
    sync_api.expect(page.locator("#kb option")).to_have_text(["demo (8)"])

    answer = ask(page, "What does Apple Inc. do?")
    final = "".join(ANSWER_PIECES)
    sync_api.expect(answer.locator(".answer")).to_have_text(final)
    states = page.evaluate("window.answerStates")
    partial = [s for s in states if s and s != final and final.startswith(s)]
    assert partial, f"the answer appeared whole: {states}"  # tokens arrived one after another
    sync_api.expect(answer.locator(".badge.route")).to_have_text("route: kb")

    answer.locator("a.cite[data-n='1']").click()
    panel = page.locator("#citation-panel")
    sync_api.expect(panel).to_be_visible()
    sync_api.expect(panel.locator(".source")).to_have_text("[1] apple-inc.md")
    sync_api.expect(panel.locator(".quote")).to_contain_text("Apple")
    screenshot = tmp_path / "chat-page.png"
    page.screenshot(path=str(screenshot), full_page=True)
    print(f"screenshot: {screenshot}")

    # a degraded run says so: the model fails, the deterministic answer still cites
    wire.mode = "error"
    page.click("#new-thread")
    degraded = ask(page, "What does Apple Inc. do?")
    sync_api.expect(degraded.locator(".badge.degraded")).to_have_text("degraded: llm_error")
    sync_api.expect(degraded.locator(".answer")).to_contain_text("Cupertino")
    wire.mode = "ok"

    # both conversations are in the history and reopen after a reload
    page.reload()
    threads = page.locator("#thread-list li")
    sync_api.expect(threads).to_have_count(2)
    threads.last.click()
    sync_api.expect(page.locator(".msg.assistant .answer")).to_have_text([final])
    page.close()


def test_a_citation_of_a_scan_shows_the_page_region_it_was_read_from(page_url, browser, tmp_path):
    from test_ocr import encoded
    from test_ocr import page as scan_page

    url, wire = page_url
    wire.mode = "ok"
    with httpx.Client(base_url=url, timeout=60) as client:
        client.post("/v1/knowledge-bases", json={"name": "scans"}).raise_for_status()
        scan = scan_page(["The spare keys hang in the red cabinet."], title="Key Storage", size=(700, 300))
        files = {"file": ("keys.png", encoded(scan))}
        job = client.post("/v1/knowledge-bases/scans/documents", files=files).json()
        deadline = time.monotonic() + 120
        while client.get(f"/v1/jobs/{job['id']}").json()["status"] not in ("succeeded", "failed"):
            assert time.monotonic() < deadline, "the upload job did not finish"
            time.sleep(0.2)
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(url)
    page.select_option("#kb", "scans")
    answer = ask(page, "Where are the spare keys?")
    answer.locator("a.cite[data-n='1']").click()
    panel = page.locator("#citation-panel")
    sync_api.expect(panel.locator(".source")).to_have_text("[1] keys.png · page 1")
    image = panel.locator(".page img")
    sync_api.expect(image).to_be_visible()
    assert image.evaluate("img => img.naturalWidth") > 100  # the region's pixels arrived
    page.close()


# every element of the page that reaches past the right edge of the window (what makes a page scroll sideways)
LAYOUT = """() => ({
  scrollWidth: document.documentElement.scrollWidth,
  overflowing: [...document.querySelectorAll('body *')].filter((e) => {
    const box = e.getBoundingClientRect();
    return box.width && box.right > innerWidth + 0.5;
  }).map((e) => e.id || e.className || e.tagName),
  column: document.querySelector('#messages').getBoundingClientRect().width,
  background: getComputedStyle(document.body).backgroundColor,
  text: getComputedStyle(document.body).color,
})"""


def luminance(css_rgb: str) -> float:
    red, green, blue = (int(v) for v in css_rgb.removeprefix("rgb(").rstrip(")").split(",")[:3])
    return (0.2126 * red + 0.7152 * green + 0.0722 * blue) / 255


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_chat_page_fits_a_phone_and_a_desktop_and_a_reload_restores_the_conversation(
    page_url, browser, tmp_path, scheme
):
    url, wire = page_url
    wire.mode = "ok"
    final = "".join(ANSWER_PIECES)
    thread = None
    for width in (390, 1280):
        # a fresh context: nothing in localStorage, the address alone brings the conversation back
        context = browser.new_context(viewport={"width": width, "height": 760}, color_scheme=scheme)
        page = context.new_page()
        page.goto(url)
        if thread is None:
            ask(page, "华为公司是做什么的？")
            thread = parse_qs(urlparse(page.url).query)["thread"][0]
            page.reload()
        else:
            page.goto(f"{url}/?thread={thread}")
        sync_api.expect(page.locator(".msg.user")).to_have_text(["华为公司是做什么的？"])
        answer = page.locator(".msg.assistant")
        sync_api.expect(answer.locator(".answer")).to_have_text([final])
        sync_api.expect(page.locator("#thread-list button[aria-current='true']")).to_have_count(1)

        view = page.evaluate(LAYOUT)
        assert view["scrollWidth"] <= width and not view["overflowing"], view
        background, text = luminance(view["background"]), luminance(view["text"])
        assert (background < text) == (scheme == "dark"), view  # light text on a dark page, or the reverse
        threads = page.locator("#threads")
        if width < 700:  # the conversation takes the phone's width; the list is a drawer the menu opens
            assert view["column"] >= 0.9 * width, view
            sync_api.expect(threads).to_be_hidden()
            page.screenshot(path=str(tmp_path / f"chat-{width}-{scheme}-plain.png"))
            page.click("#menu")
            sync_api.expect(threads).to_be_visible()
            page.screenshot(path=str(tmp_path / f"chat-{width}-{scheme}-drawer.png"))
            for _ in range(6):  # the drawer holds the keyboard: Tab never reaches the page behind it
                page.keyboard.press("Tab")
                assert page.evaluate("document.activeElement.closest('#threads') !== null")
            page.keyboard.press("Escape")
            sync_api.expect(threads).to_be_hidden()
            assert page.evaluate("document.activeElement.id") == "menu"
        else:  # beside the conversation, and the menu folds it away
            sync_api.expect(threads).to_be_visible()
            page.click("#menu")
            sync_api.expect(threads).to_be_hidden()
            page.click("#menu")
            sync_api.expect(threads).to_be_visible()

        # a citation is a signed link; from the keyboard it opens over (phone) or beside (desktop) the answer
        cite = answer.locator("a.cite[data-n='1']")
        assert "sig=" in cite.get_attribute("href")
        cite.focus()
        page.keyboard.press("Enter")
        panel = page.locator("#citation-panel")
        sync_api.expect(panel).to_be_visible()
        sync_api.expect(panel.locator(".source")).to_contain_text("[1] ")
        assert panel.locator("a.open").get_attribute("href") == cite.get_attribute("href")
        opened = page.evaluate(LAYOUT)
        assert opened["scrollWidth"] <= width and not opened["overflowing"], opened
        box = panel.bounding_box()
        if width < 700:
            assert opened["column"] >= 0.9 * width and box["width"] <= width
        else:
            assert box["x"] >= page.locator("#messages").bounding_box()["x"] + opened["column"] - 1
        screenshot = tmp_path / f"chat-{width}-{scheme}.png"
        page.screenshot(path=str(screenshot))
        print(f"screenshot: {screenshot}")
        page.keyboard.press("Escape")
        sync_api.expect(panel).to_be_hidden()
        assert page.evaluate("document.activeElement.dataset.n") == "1"  # focus went back to the citation
        context.close()
