"""App latency: cold start to an interactive page, and a cached rerun of the Ask page.

Run: ``.venv/bin/python bench/app.py`` (no network; chromium optional). Prints a markdown table.

- cold start, browser: spawn ``streamlit run``, load the app in headless chromium; one clock stops
  when the Ask page's question box is visible (the form renders before the Service is built),
  another when the Ask button is (the Service is built). The browser is launched beforehand.
- cold start, AppTest: a fresh Python process that builds ``AppTest`` from the entry point and
  runs it once (imports, Service build and the first script run).
- cached rerun: the Ask page showing an answer (passages, marks, highlighted page), rerun with
  nothing changed; median of 20.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa_core import build  # noqa: E402
from qa_core.settings import Settings  # noqa: E402
from tests.pdfmaker import METHODS_PAPER, make_pdf  # noqa: E402
from tests.streamlit_run import free_port, spawn  # noqa: E402

COLD_TARGET, RERUN_TARGET, RERUNS = 3.0, 0.200, 20
COLD_APPTEST = (
    "import time; t = time.perf_counter()\n"
    "from streamlit.testing.v1 import AppTest\n"
    "at = AppTest.from_file('streamlit_app.py', default_timeout=60).run()\n"
    "assert not at.exception and at.title[0].value == 'Ask'\n"
    "print(time.perf_counter() - t)\n"
)


def cold_browser(env: dict[str, str]) -> tuple[float, float] | tuple[None, None]:
    """Seconds from spawning ``streamlit run`` to the question box and to the Ask button."""
    chromium = shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None, None
    if chromium is None:
        return None, None
    port = free_port()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu", "--no-first-run"]
        )
        start = time.perf_counter()
        proc = spawn(port, env)
        try:
            url = f"http://127.0.0.1:{port}"
            while time.perf_counter() - start < 60:
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1):
                        break
                except OSError:
                    time.sleep(0.05)
            page = browser.new_page()
            page.goto(url)
            page.get_by_role("textbox", name="Question").wait_for(timeout=60_000)
            form = time.perf_counter() - start
            page.get_by_role("button", name="Ask", exact=True).wait_for(timeout=60_000)
            return form, time.perf_counter() - start
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            browser.close()


def cold_apptest(env: dict[str, str]) -> float:
    """Seconds from a fresh interpreter's start to the end of the first AppTest run."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", COLD_APPTEST], cwd=ROOT, env=env, check=True, capture_output=True
    )
    return time.perf_counter() - start


def cached_rerun() -> float:
    """Median seconds of an unchanged rerun of the Ask page showing an answer."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(ROOT / "streamlit_app.py", default_timeout=60).run()
    at.text_area(key="ask_question").set_value("Which hardware was used for training?").run()
    at.button[0].click().run()
    assert not at.exception and at.html, [e.value for e in (*at.exception, *at.error)]
    times = []
    for _ in range(RERUNS):
        start = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - start)
    assert not at.exception
    return statistics.median(times)


def main() -> None:
    load = os.getloadavg()[0]  # other work on the machine inflates every number below
    data = Path(tempfile.mkdtemp(prefix="margin-bench-"))
    try:
        svc = build(Settings(data_dir=data), chat=None)
        svc.ingest(make_pdf(METHODS_PAPER, title="Detecting plant organs"), "organs.pdf")
        svc.close()
        # Embedded store, no LLM: the same for every machine. AppTest runs in this process.
        for key in [k for k in os.environ if k.startswith(("OPENAI_", "QDRANT_", "MARGIN_"))]:
            del os.environ[key]
        os.environ["MARGIN_DATA_DIR"] = str(data)
        env = dict(os.environ)
        form, ready = cold_browser(env)
        rows = [
            ("cold start: `streamlit run` → question box usable (chromium)", form, COLD_TARGET),
            ("cold start: `streamlit run` → Ask button shown (chromium)", ready, COLD_TARGET),
            ("cold start: fresh process → first AppTest run", cold_apptest(env), COLD_TARGET),
            (
                f"cached rerun of the Ask page with an answer (median of {RERUNS})",
                cached_rerun(),
                RERUN_TARGET,
            ),
        ]
    finally:
        shutil.rmtree(data, ignore_errors=True)
    print(f"App latency on {os.cpu_count()} cores (load average {load:.1f} at start)\n")
    print("| measure | result | target | result / target |")
    print("|---|---:|---:|---:|")
    for name, value, target in rows:
        if value is None:
            print(f"| {name} | skipped (no chromium) | ≤ {_fmt(target)} | — |")
        else:
            print(f"| {name} | {_fmt(value)} | ≤ {_fmt(target)} | {value / target:.2f} |")


def _fmt(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


if __name__ == "__main__":
    main()
