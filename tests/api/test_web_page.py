"""The web page in a real Chromium: key handling, upload, live status, poster and playback."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Locator, Page, expect, sync_playwright
from pydantic import SecretStr

from transcoder.api import create_app
from transcoder.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
API_KEY = "browser-test-key"
# Headless, and nothing that phones home: the browser talks only to the test's server.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ENCODE_SECONDS = 180
# An upload name that a page building HTML from data would turn into markup.
HOSTILE_NAME = "bunny <b>bold & <img src=x onerror=alert(1)>.mp4"
# A link the farm must refuse before connecting anywhere (and a reserved address at that).
REFUSED_URL = "ftp://192.0.2.1/clip.mp4"
READ_IMAGE_SIZE = "img => img.decode().then(() => [img.naturalWidth, img.naturalHeight])"
# Resolves with what the <video> knows once its metadata is in, rejects on a media error.
READ_METADATA = """
video => new Promise((resolve, reject) => {
  const report = () => resolve({
    duration: video.duration, width: video.videoWidth, height: video.videoHeight,
    src: video.currentSrc,
  });
  const fail = () => reject(new Error(`media error ${video.error && video.error.code}`));
  if (video.error) return fail();
  if (video.readyState >= HTMLMediaElement.HAVE_METADATA) return report();
  video.addEventListener("loadedmetadata", report, {once: true});
  video.addEventListener("error", fail, {once: true});
  setTimeout(() => reject(new Error("no loadedmetadata within 30 s")), 30000);
})
"""

pytestmark = [
    pytest.mark.slow,
    pytest.mark.services,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def serve_api(farm_settings: Settings) -> Iterator[Callable[..., str]]:
    """Serve the API with uvicorn on a free local port, from a background thread.

    serve_api(**settings_updates) returns the base URL; servers stop after the test.
    """
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def serve(**updates: object) -> str:
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        settings = farm_settings.model_copy(
            update={"api_keys": SecretStr(API_KEY), "public_url": base, **updates}
        )
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=port, log_level="warning"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
        thread.start()
        servers.append((server, thread))
        deadline = time.monotonic() + 20
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                pytest.fail(f"uvicorn did not start on {base}")
            time.sleep(0.05)
        return base

    yield serve
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    """A page in headless Debian Chromium with a fresh profile (Playwright downloads nothing)."""
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path / "chromium-profile",
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1200, "height": 900},
        )
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def test_page_uploads_a_video_and_plays_its_renditions(
    serve_api: Callable[..., str],
    page: Page,
    start_worker: Callable[..., object],
    sample: Callable[[str], Path],
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    api_url = serve_api()
    start_worker()
    thrown: list[str] = []
    page.on("pageerror", lambda exc: thrown.append(str(exc)))
    page.goto(f"{api_url}/")

    _check_keys(page, api_url)
    card = _upload(page, tmp_path, sample("bigbuckbunny.mp4"))
    shown = _wait_for_outcome(page, card, ENCODE_SECONDS)
    error = card.locator("[data-role=error]").text_content()
    assert shown[-1].startswith("succeeded"), f"the video failed: {error}; the page showed {shown}"
    print(f"\nstatus lines the page showed: {shown}")

    _check_poster(card)
    for name in ("360p-h264", "360p-vp8"):
        _check_playback(card, name)

    failed = _import_refused_link(page)
    page.screenshot(path=tmp_path / "web-page.png", full_page=True)
    _delete(page, failed)
    print(f"screenshot: {tmp_path / 'web-page.png'}; {time.monotonic() - started:.0f} s in all")
    assert not thrown, f"the page threw: {thrown}"


def test_page_reports_an_upload_over_the_size_limit(
    serve_api: Callable[..., str], page: Page, sample: Callable[[str], Path]
) -> None:
    page.goto(serve_api(max_upload_bytes=100_000))
    _use_key(page, API_KEY)
    expect(page.locator("#videos-empty")).to_be_visible()
    page.set_input_files("#file-input", sample("bigbuckbunny.mp4"))
    page.click("#upload-button")
    expect(page.locator("#message")).to_contain_text("413 too_large")
    expect(page.locator("#upload-state")).to_have_text("failed")
    expect(page.locator("#upload-button")).to_be_enabled()
    expect(page.locator("article[data-video-id]")).to_have_count(0)


def _check_keys(page: Page, api_url: str) -> None:
    """A wrong key is reported as the API's 403; the right one shows the (empty) list."""
    expect(page).to_have_url(f"{api_url}/ui/")
    _use_key(page, "not-the-key")
    expect(page.locator("#message")).to_contain_text("403 forbidden: the API key is not valid")
    page.click("#key-forget")
    _use_key(page, API_KEY)
    expect(page.locator("#message")).to_be_hidden()
    expect(page.locator("#videos-empty")).to_be_visible()


def _upload(page: Page, tmp_path: Path, clip: Path) -> Locator:
    """Upload the clip under a name full of markup; its card shows that name as plain text."""
    upload = tmp_path / HOSTILE_NAME
    shutil.copyfile(clip, upload)
    page.set_input_files("#file-input", upload)
    page.click("#upload-button")
    card = page.locator("article[data-video-id]")
    expect(card).to_have_count(1, timeout=30_000)
    expect(card.locator("[data-role=name]")).to_have_text(HOSTILE_NAME)
    assert card.locator("[data-role=name] *").count() == 0, "the file name became markup"
    return card


def _check_poster(card: Locator) -> None:
    poster = card.locator("img[data-role=poster]")
    expect(poster).to_be_visible()
    natural = poster.evaluate(READ_IMAGE_SIZE)
    declared = [int(poster.get_attribute(side) or 0) for side in ("width", "height")]
    assert natural[0] > 0 and natural == declared, f"poster {natural}, the API said {declared}"
    print(f"poster: {natural[0]}x{natural[1]}")


def _check_playback(card: Locator, name: str) -> None:
    """Picking a rendition loads it into the card's <video> through its signed link."""
    card.locator(f"button[data-play='{name}']").click()
    meta = card.locator(f"video[data-rendition='{name}']").evaluate(READ_METADATA)
    print(f"{name}: {meta['duration']:.3f} s, {meta['width']}x{meta['height']}")
    assert f"/{name}." in meta["src"] and "sig=" in meta["src"]
    assert meta["duration"] == pytest.approx(5.3, abs=0.15)
    assert (meta["width"], meta["height"]) == (640, 360)


def _import_refused_link(page: Page) -> Locator:
    """An ftp link is refused by the import job (no connection is made): the card says why."""
    page.fill("#url-input", REFUSED_URL)
    page.click("#url-button")
    card = page.locator("article[data-video-id]").filter(has_text="clip.mp4")
    expect(card).to_have_count(1)
    shown = _wait_for_outcome(page, card, 60)
    assert shown[-1].startswith("error"), f"the page showed {shown}"
    expect(card.locator("[data-role=error]")).to_contain_text("not an http or https URL")
    expect(card.locator("[data-action=retry]")).to_be_visible()
    return card


def _delete(page: Page, card: Locator) -> None:
    page.once("dialog", lambda dialog: dialog.accept())
    card.locator("[data-action=delete]").click()
    expect(card).to_have_count(0)
    expect(page.locator("article[data-video-id]")).to_have_count(1)


def _use_key(page: Page, key: str) -> None:
    page.fill("#key-input", key)
    page.click("#key-save")


def _wait_for_outcome(page: Page, card: Locator, timeout: float) -> list[str]:
    """Follow the card until it succeeds or fails; return each status line it showed."""
    shown: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = card.get_attribute("data-status")
        line = f"{status} {card.locator('[data-role=progress-text]').text_content()}"
        if not shown or shown[-1] != line:
            shown.append(line)
        if status in ("succeeded", "error"):
            return shown
        page.wait_for_timeout(250)
    pytest.fail(f"the video was still {status} after {timeout} s; the page showed {shown}")
