"""The CLI contract, run as a real subprocess: JSON shapes, exit codes, one-line errors."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_runner import margin
from tests.pdfmaker import METHODS_PAPER, make_pdf

ROOT = Path(__file__).resolve().parents[1]
PAPER = make_pdf(METHODS_PAPER, title="Plant organs")
HARD = ROOT.parent / "shared" / "corpus" / "pdfs" / "hard"


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("papers")
    (folder / "sub").mkdir()
    (folder / "sub" / "organs.pdf").write_bytes(PAPER)
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7 this is not really a pdf")
    data = tmp_path_factory.mktemp("data")
    proc = margin(data, "ingest", str(folder), "--json")
    assert proc.returncode == 1, proc.stderr  # one file failed
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    by_name = {Path(r["file"]).name: r for r in lines}
    assert (
        by_name["broken.pdf"]["status"] == "failed" and "\n" not in by_name["broken.pdf"]["error"]
    )
    ok = by_name["organs.pdf"]
    assert ok["status"] == "indexed" and ok["pages"] == 2 and ok["chunks"] > 0
    assert set(ok) >= {
        "file",
        "paper_id",
        "title",
        "pages",
        "chunks",
        "status",
        "error",
        "warnings",
    }
    return data, ok["paper_id"]


def test_reingest_is_duplicate_and_exit_zero(library: tuple[Path, str], tmp_path: Path) -> None:
    data, _ = library
    pdf = tmp_path / "again.pdf"
    pdf.write_bytes(PAPER)
    proc = margin(data, "ingest", str(pdf), "--json")
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["status"] == "duplicate"


def test_papers_json(library: tuple[Path, str]) -> None:
    data, pid = library
    [paper] = json.loads(margin(data, "papers", "--json").stdout)
    assert paper["paper_id"] == pid and paper["title"] == "Plant organs"
    assert set(paper) >= {"paper_id", "title", "file", "pages", "chunks", "added"}


def test_search_json_and_batch(library: tuple[Path, str], tmp_path: Path) -> None:
    data, pid = library
    hits = json.loads(margin(data, "search", "learning rate", "-k", "2", "--json").stdout)
    assert len(hits) == 2 and hits[0]["paper_id"] == pid
    keys = {"paper_id", "title", "chunk_id", "text", "page_start", "page_end", "section", "score"}
    assert set(hits[0]) == keys
    queries = tmp_path / "q.jsonl"
    queries.write_text(
        json.dumps({"id": "a", "query": "code repository"})
        + "\n"
        + json.dumps({"id": "b", "query": "GPU", "papers": [pid]})
        + "\n"
    )
    out = [
        json.loads(x)
        for x in margin(data, "search", "--queries", str(queries), "-k", "1").stdout.splitlines()
    ]
    assert [o["id"] for o in out] == ["a", "b"] and all(len(o["hits"]) == 1 for o in out)


def test_ask_json_without_llm_is_extractive(library: tuple[Path, str]) -> None:
    data, _ = library
    proc = margin(data, "ask", "Which framework was used?", "--json")
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    assert answer["status"] == "extractive"
    assert answer["quotes"] and all(q["status"] == "verified" for q in answer["quotes"])
    assert set(answer) >= {
        "question",
        "answer",
        "status",
        "model",
        "template",
        "prompt",
        "usage",
        "timings",
        "contexts",
        "quotes",
    }


def test_ask_against_an_unreachable_endpoint_is_one_line(library: tuple[Path, str]) -> None:
    data, _ = library
    env = {
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "MARGIN_CHAT_MODEL": "m",
        "MARGIN_MAX_RETRIES": "0",
    }
    proc = margin(data, "ask", "Which framework?", env=env)
    assert proc.returncode != 0
    assert (
        proc.stderr.count("\n") == 1
        and "127.0.0.1:9" in proc.stderr
        and "Traceback" not in proc.stderr
    )


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["delete", "nope"], "No paper with id 'nope'"),
        (["search"], "Give a query"),
    ],
)
def test_errors_are_one_line(library: tuple[Path, str], args: list[str], fragment: str) -> None:
    proc = margin(library[0], *args)
    assert proc.returncode == 2 and fragment in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


@pytest.mark.skipif(not HARD.exists(), reason="../shared is absent")
def test_every_hard_pdf_gets_a_specific_outcome(tmp_path: Path) -> None:
    proc = margin(tmp_path, "ingest", str(HARD), "--json")
    rows = {Path(r["file"]).name: r for r in map(json.loads, proc.stdout.splitlines())}
    assert "password" in rows["us_password.pdf"]["error"]
    for name in ("dl_ocr_test.pdf", "us_loremipsum-flat.pdf"):
        assert "image-only PDF" in rows[name]["error"]
    for name in (
        "dl_right_to_left_01.pdf",
        "us_korean-text-with-tables.pdf",
        "us_multi-column-2p.pdf",
        "us_copy-protected.pdf",
    ):
        assert rows[name]["status"] == "indexed", rows[name]
    assert rows["dl_invisible_text_layer.pdf"]["warnings"]
    assert rows["kg_8_first_64KiB_only.pdf"]["status"] in {"indexed", "failed"}
    truncated = rows["kg_8_first_64KiB_only.pdf"]
    assert truncated["warnings"] or truncated["error"]
    assert "Traceback" not in proc.stderr


def test_ingest_shows_progress_on_a_terminal_only(tmp_path: Path) -> None:
    pdf = tmp_path / "organs.pdf"
    pdf.write_bytes(PAPER)
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "MARGIN_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "qa_core", "--data-dir", str(tmp_path / "d"), "ingest", str(pdf)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=follower, env=env, timeout=300, check=False,
    )  # fmt: skip
    os.close(follower)
    shown = b""
    with contextlib.suppress(OSError):  # the terminal reports EIO once drained
        while chunk := os.read(leader, 65536):
            shown += chunk
    os.close(leader)
    assert proc.returncode == 0 and b"indexed" in proc.stdout
    assert b"[1/1] organs.pdf: embed" in shown and b"index 100%" in shown
