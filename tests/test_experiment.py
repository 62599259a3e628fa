"""QASPER runs of the real pipeline: `margin eval retrieval|answers|templates` and Answer-F1."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from qa_core.cli import main
from qa_core.evaluation.experiment import answer_f1
from tests.llm_server import LLMServer
from tests.test_evaluate import _write_dataset


@pytest.mark.parametrize(
    ("prediction", "reference", "expected"),
    [
        ("1,000", "1,000", 1.0),
        ("1,000 [1]", "1,000", 1.0),
        ("The answer is a thousand.", "a thousand", 2 * (1 / 3) * 1 / (1 / 3 + 1)),
        ("Unanswerable", "unanswerable", 1.0),
        ("yes", "No", 0.0),
        ("", "", 1.0),
        ("something", "", 0.0),
        ("the a an", "an the", 1.0),  # articles only: both empty after normalisation
    ],
)
def test_answer_f1(prediction: str, reference: str, expected: float) -> None:
    assert answer_f1(prediction, reference) == pytest.approx(expected)


def run(tmp_path: Path, *args: str) -> str:
    out = io.StringIO()
    assert main(["--data-dir", str(tmp_path / "data"), "eval", *args], out=out) == 0
    return out.getvalue()


def test_eval_retrieval_prints_the_table(tmp_path: Path) -> None:
    _write_dataset(tmp_path)
    table = run(tmp_path, "retrieval", "--qasper", str(tmp_path))
    assert "1 papers, 1 questions scored (1 skipped" in table
    assert "| hybrid 2:1, 300/0 |" in table


def test_eval_answers_and_templates_score_against_the_annotators(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_dataset(tmp_path)
    with LLMServer(("m",)) as server:
        # q1 answered with the gold span; q2 (one annotator: unanswerable) abstains
        server.script(
            "m",
            *("1,000 [1]", "NOT REPORTED"),  # answers
            *("1,000 [1]", "Yes."),  # templates: evidence-first
            *("Answer:::\nAnswer: 1,000\n\nAnswer:::", "I don't know."),  # templates: seed
        )
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("MARGIN_CHAT_MODEL", "m")
        answers = run(tmp_path, "answers", "--qasper", str(tmp_path))
        assert "| Evidence-first | 2 | 100.0 | 0/0 (0%) |" in answers
        seed = "Seed pipeline (Kommineni et al. 2024)"
        both = run(tmp_path, "templates", "Evidence-first", seed, "--qasper", str(tmp_path))
    assert "| Evidence-first | 2 | 100.0 |" in both and f"| {seed} | 2 | 100.0 |" in both
    assert server.count(path="/v1/chat/completions") == 6


def test_eval_answers_without_llm_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "MARGIN_CHAT_MODEL"):
        monkeypatch.delenv(var, raising=False)
    _write_dataset(tmp_path)
    code = main(["--data-dir", str(tmp_path / "d"), "eval", "answers", "--qasper", str(tmp_path)])
    assert code == 2 and "needs an LLM" in capsys.readouterr().err
