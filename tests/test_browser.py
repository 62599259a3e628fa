"""The real app in a real browser: ``streamlit run`` driven by Debian's chromium via Playwright.

Public mode, a loopback LLM that quotes the paper, one upload through the file chooser, one
question; a second browser session must not see the first one's paper. Screenshots go to
``test-artifacts/``; with MARGIN_UPDATE_DOCS=1 the Ask page also goes to ``docs/ask.png``
(the README shows it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.llm_server import LLMServer
from tests.pdfmaker import METHODS_PAPER, make_pdf
from tests.streamlit_run import free_port, spawn

pytestmark = pytest.mark.browser
sync_api = pytest.importorskip("playwright.sync_api")

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium")
QUESTION = "Which frameworks are used to build the deep learning model (e.g., TensorFlow, PyTorch)?"
QUOTE = "We used the Faster R-CNN architecture implemented in PyTorch 1.4"
REPLY = f'The model was built with PyTorch: "{QUOTE}" [1].'
SECOND = 1000.0  # Playwright counts milliseconds


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"streamlit exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"streamlit was not healthy after {limit:.0f} s:\n{log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``streamlit run`` in public mode against a loopback LLM; yields the app's URL."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (make test installs it: apt-get install chromium)")
    ARTIFACTS.mkdir(exist_ok=True)
    port = free_port()
    log = ARTIFACTS / "streamlit.log"
    with LLMServer() as llm, log.open("wb") as out:
        llm.set_default("test-model", REPLY)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "QDRANT_"))}
        env.update(
            MARGIN_DATA_DIR=str(tmp_path_factory.mktemp("browser")),
            MARGIN_PUBLIC="true",
            OPENAI_BASE_URL=llm.base_url,
            MARGIN_CHAT_MODEL="test-model",
        )
        proc = spawn(port, env, out)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_healthy(url, proc, log, limit=60)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def browser(server: str) -> Iterator[object]:
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield chromium
        chromium.close()


def test_a_deep_link_first_after_start_gets_the_apps_own_menu(server: str, browser: Any) -> None:
    # Must run first against the fresh server: until a session has run the router, Streamlit
    # serves pages/ by itself; ui.routed() sends such a session through the router.
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{server}/library?ws=deeplinkworkspace0001")
    page.get_by_role("heading", name="Library").wait_for(timeout=60 * SECOND)
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_text("Matrix").wait_for(timeout=30 * SECOND)
    assert "streamlit app" not in sidebar.inner_text().lower()
    assert parse_qs(urlsplit(page.url).query)["ws"] == ["deeplinkworkspace0001"]
    assert urlsplit(page.url).path.endswith("/library")
    context.close()


def test_upload_ask_and_see_the_highlighted_evidence(
    server: str, browser: object, tmp_path: Path
) -> None:
    pdf = tmp_path / "organs.pdf"
    pdf.write_bytes(make_pdf(METHODS_PAPER, title="Detecting plant organs in herbarium scans"))
    context = browser.new_context(viewport={"width": 1440, "height": 1000})  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(60 * SECOND)
    expect = sync_api.expect
    expect.set_options(timeout=60 * SECOND)  # a loaded 2-core machine is slow on first runs

    page.goto(server)  # the Ask page: the router runs first (see streamlit_app.py)
    expect(page.get_by_role("heading", name="Ask")).to_be_visible()
    page.get_by_role("link", name="Library").click()
    expect(page.get_by_text("No papers yet")).to_be_visible()
    with page.expect_file_chooser() as chooser:
        page.get_by_test_id("stFileUploaderDropzone").get_by_test_id(
            "stBaseButton-secondary"
        ).click()
    chooser.value.set_files(pdf)
    expect(page.get_by_text("organs.pdf", exact=True)).to_be_visible()
    page.get_by_role("button", name="Add to library").click()
    expect(page.get_by_text("organs.pdf: indexed")).to_be_visible(timeout=120 * SECOND)
    expect(page.get_by_test_id("stImage").locator("img")).to_be_visible()
    page.screenshot(path=ARTIFACTS / "library.png")
    token = parse_qs(urlsplit(page.url).query)["ws"][0]

    page.get_by_role("link", name="Ask").click()
    expect(page.get_by_role("heading", name="Ask")).to_be_visible()
    # The Library page has a selectbox too: pick the Ask page's own, once it is drawn.
    page.get_by_test_id("stSelectbox").filter(has_text="Preset questions").click()
    page.keyboard.type("Which frameworks")  # the option list is virtualised: filter it
    page.get_by_role("option", name=QUESTION).click()
    expect(page.get_by_role("textbox", name="Question")).to_have_value(QUESTION)
    page.get_by_role("button", name="Ask", exact=True).click()
    expect(page.get_by_text("The model was built with PyTorch")).to_be_visible()
    expect(page.locator("mark").first).to_have_text(QUOTE)
    expect(page.get_by_text(f"✓ “{QUOTE}” [1], p. 1")).to_be_visible()
    expect(page.get_by_test_id("stImage").locator("img")).to_be_visible()
    assert parse_qs(urlsplit(page.url).query)["ws"] == [token]
    page.wait_for_timeout(500)  # let the page image finish painting
    page.screenshot(path=ARTIFACTS / "ask.png")
    if os.environ.get("MARGIN_UPDATE_DOCS"):  # refresh the README's screenshot on request only
        shutil.copyfile(ARTIFACTS / "ask.png", ROOT / "docs" / "ask.png")

    for name, shown in (
        ("Templates", "Valid template"),
        ("Settings", "private to this browser session"),
    ):
        page.get_by_role("link", name=name).click()
        expect(page.get_by_text(shown)).to_be_visible()
        page.screenshot(path=ARTIFACTS / f"{name.lower()}.png", full_page=True)
        assert page.get_by_test_id("stException").count() == 0
    expect(page.get_by_text("Model test-model")).to_be_visible()

    other = browser.new_context().new_page()  # type: ignore[attr-defined]
    other.set_default_timeout(60 * SECOND)
    other.goto(f"{server}/library")
    expect(other.get_by_text("No papers yet")).to_be_visible()
    assert "organs.pdf" not in other.content()
    other.screenshot(path=ARTIFACTS / "library-other-session.png")
    other.goto(f"{server}/library?ws={token}")  # the bookmarked URL returns to the workspace
    expect(other.get_by_role("heading", name="Papers (1)")).to_be_visible()
    context.close()
