"""Retrieval evaluation: coverage, recall, MRR and budget on hand-made cases; QASPER loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa_core.evaluation.qasper import (
    ConfigScores,
    DatasetError,
    QuestionScore,
    RetrievalReport,
    aggregate,
    coverage,
    document_from_text,
    first_hit_rank,
    gold_sets,
    load_qasper,
    locate,
    recall,
    score_question,
    within_budget,
)
from qa_core.ingest import chunking
from qa_core.models import Span

SHARED = Path(__file__).resolve().parents[2] / "shared"
QASPER = SHARED / "data" / "qasper-dev"


def s(start: int, end: int, page: int = 1) -> Span:
    return Span(page, start, end)


# --- scoring ---------------------------------------------------------------------------

GOLD = s(100, 200)


@pytest.mark.parametrize(
    ("retrieved", "expected"),
    [
        ([], 0.0),
        ([s(0, 150)], 0.5),
        ([s(150, 250)], 0.5),
        ([s(0, 300)], 1.0),
        ([s(120, 140), s(130, 160)], 0.4),  # overlapping spans count once
        ([s(100, 130), s(170, 200)], 0.6),
        ([s(130, 160), s(120, 140), s(150, 155)], 0.4),  # order does not matter
        ([s(0, 100), s(200, 300)], 0.0),  # touching is not covering
        ([s(100, 200, page=2)], 0.0),  # another page
    ],
)
def test_coverage_is_the_union_share_of_gold_characters(
    retrieved: list[Span], expected: float
) -> None:
    assert coverage(GOLD, retrieved) == pytest.approx(expected)


A, B, C = s(0, 100), s(1000, 1100), s(2000, 2100)
TWO_ANNOTATORS = ((A, B), (C,))


@pytest.mark.parametrize(
    ("retrieved", "expected"),
    [
        ([], 0.0),
        ([s(0, 50)], 0.5),  # exactly half of A counts; first annotator gets 1 of 2
        ([s(0, 49)], 0.0),  # just under half does not
        ([A, B], 1.0),
        ([s(2000, 2060)], 1.0),  # the second annotator's only paragraph: best annotator wins
        ([s(0, 25), s(50, 75)], 0.5),  # two chunks holding a quarter each retrieve A together
    ],
)
def test_recall_takes_the_best_annotator(retrieved: list[Span], expected: float) -> None:
    assert recall(TWO_ANNOTATORS, retrieved) == pytest.approx(expected)


def test_recall_without_gold_is_zero() -> None:
    assert recall((), [A]) == 0.0


@pytest.mark.parametrize(
    ("ranking", "expected"),
    [
        ([[s(500, 600)], [C], [A]], 2),
        ([[s(0, 30)], [s(500, 600)], [s(30, 60)]], 3),  # A is covered once ranks 1 and 3 join
        ([[s(500, 600)], [s(3000, 3100)]], None),
        ([], None),
    ],
)
def test_first_hit_rank(ranking: list[list[Span]], expected: int | None) -> None:
    assert first_hit_rank(TWO_ANNOTATORS, ranking) == expected


@pytest.mark.parametrize(
    ("ranking", "chars", "expected"),
    [
        ([[s(0, 3000)], [s(5000, 8000)]], 5000, [s(0, 3000), s(5000, 7000)]),
        ([[s(0, 3000)], [s(5000, 7000)], [s(9000, 9100)]], 5000, [s(0, 3000), s(5000, 7000)]),
        ([[s(0, 100)]], 5000, [s(0, 100)]),
        # a two-span chunk (crossing a page) costs one more character for its joining newline
        ([[s(0, 60), s(0, 60, page=2)]], 100, [s(0, 60), s(0, 39, page=2)]),
        ([[s(0, 100)]], 0, []),
    ],
)
def test_within_budget_cuts_in_rank_order(
    ranking: list[list[Span]], chars: int, expected: list[Span]
) -> None:
    assert within_budget(ranking, chars) == expected


RANKING = [[s(500, 600)], [A], [C], [s(3000, 3100)], [s(4000, 4100)], [B]]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        # B at rank 6 is outside the top 5 but inside a 5,000-character budget
        ({}, QuestionScore(0.0, 1.0, 0.5, 1.0, 1.0)),
        # 150 characters: the miss (100) and half of A (50) -> first annotator 1 of 2
        ({"budget_chars": 150}, QuestionScore(0.0, 1.0, 0.5, 0.5, 0.5)),
        ({"k": 2}, QuestionScore(0.0, 0.5, 0.5, 0.5, 1.0)),
        ({"k": 2, "budget_chars": 200}, QuestionScore(0.0, 0.5, 0.5, 0.5, 0.5)),
    ],
)
def test_score_question(kwargs: dict[str, int], expected: QuestionScore) -> None:
    assert score_question(TWO_ANNOTATORS, RANKING, **kwargs) == expected


def test_score_question_fill_reaches_past_k() -> None:
    ranking = [[s(500, 600)], [s(600, 700)], [A], [B]]
    assert score_question(TWO_ANNOTATORS, ranking, k=2) == QuestionScore(0.0, 0.0, 1 / 3, 0.0, 1.0)
    assert score_question(TWO_ANNOTATORS, [[C], [A]]) == QuestionScore(1.0, 1.0, 1.0, 1.0, 1.0)
    assert score_question(TWO_ANNOTATORS, []) == QuestionScore(0.0, 0.0, 0.0, 0.0, 0.0)


def test_aggregate_and_table() -> None:
    scores = [QuestionScore(1.0, 1.0, 1.0, 1.0, 1.0), QuestionScore(0.0, 0.5, 0.25, 0.0, 0.5)]
    row = aggregate("mine", scores, 812.4)
    assert row == ConfigScores("mine", 2, 0.5, 0.75, 0.625, 0.5, 0.75, 812.4)
    assert aggregate("none", [], 0.0).recall_at_k == 0.0
    table = RetrievalReport(papers=3, questions=2, skipped=1, rows=[row]).table()
    assert "3 papers, 2 questions scored (1 skipped" in table
    assert "| config | recall@1 | recall@5 | MRR@20 | recall@5 within 5,000 chars |" in table
    assert table.endswith("| mine | 50.0 | 75.0 | 0.625 | 50.0 | 75.0 | 812 |")


# --- documents and data ----------------------------------------------------------------

PAPER = """# A Study of Things

**Paper ID:** 2001.00001

## Abstract

We study things. Things are studied.

## Method ::: Data

We collected 1,000 things from the web.

## Experiments ::: Acknowledgements

We thank the things.

## Acknowledgments

Funded by a grant.

## Appendix

More things.
"""


def test_document_from_text_sections_start_at_their_headings() -> None:
    doc = document_from_text(PAPER)
    assert doc.title == "A Study of Things"
    (page,) = doc.pages
    assert page.text == PAPER
    assert [(x.title, x.back_matter) for x in doc.sections] == [
        ("Abstract", False),
        ("Method ::: Data", False),
        ("Experiments ::: Acknowledgements", True),
        ("Acknowledgments", True),
        ("Appendix", False),
    ]
    assert all(PAPER[x.start :].startswith(f"## {x.title}\n") for x in doc.sections)
    assert [PAPER[w.start : w.end] for w in page.words][:4] == ["#", "A", "Study", "of"]


def test_chunking_a_qasper_document_keeps_sections_and_offsets() -> None:
    doc = document_from_text(PAPER)
    chunks = chunking.split(doc, "p", size=200, overlap=40)
    assert [c.section for c in chunks] == [
        "",
        "Abstract",
        "Method ::: Data",
        "Experiments ::: Acknowledgements",
        "Acknowledgments",
        "Appendix",
    ]
    assert [c.back_matter for c in chunks] == [False, False, False, True, True, False]
    for c in chunks:
        ((span),) = c.spans
        assert PAPER[span.start : span.end] == c.text
    assert chunks[2].text == "## Method ::: Data\n\nWe collected 1,000 things from the web."


ABSTRACT = "We study things. Things are studied."
AT = PAPER.index(ABSTRACT)


def test_locate() -> None:
    assert locate(PAPER, f"  {ABSTRACT}\n") == s(AT, AT + len(ABSTRACT))
    assert locate(PAPER, "Not in the paper.") is None
    assert locate(PAPER, "   ") is None


def _write_dataset(root: Path) -> Path:
    def answer(evidence: list[str], **extra: object) -> dict[str, object]:
        base: dict[str, object] = {
            "unanswerable": False,
            "yes_no": None,
            "free_form_answer": "",
            "extractive_spans": [],
            "evidence": evidence,
        }
        return base | extra

    rows = [
        {
            "paper_id": "2001.00001",
            "paper_title": "A Study of Things",
            "question_id": "q1",
            "question": "How many things?",
            "answers": [
                answer(["We collected 1,000 things from the web."], extractive_spans=["1,000"]),
                answer(
                    ["FLOAT SELECTED: Table 1: Things.", "We study things. Things are studied."],
                    free_form_answer="a thousand",
                ),
            ],
        },
        {
            "paper_id": "2001.00001",
            "paper_title": "A Study of Things",
            "question_id": "q2",
            "question": "Is it funded?",
            "answers": [
                answer(["FLOAT SELECTED: Figure 2: Money."], yes_no=True),
                answer([], unanswerable=True),
            ],
        },
    ]
    (root / "papers").mkdir()
    (root / "papers" / "2001.00001.txt").write_text(PAPER, encoding="utf-8")
    file = root / "questions_validation.json"
    file.write_text(json.dumps(rows), encoding="utf-8")
    return file


def test_load_qasper_on_a_synthetic_paper(tmp_path: Path) -> None:
    file = _write_dataset(tmp_path)
    assert load_qasper(file) == load_qasper(tmp_path)  # the file or its folder
    (paper,) = load_qasper(tmp_path)
    assert (paper.paper_id, paper.title, paper.text) == ("2001.00001", "A Study of Things", PAPER)
    q1, q2 = paper.questions
    assert (q1.question_id, q1.question) == ("q1", "How many things?")
    assert q1.answers[0].extractive_spans == ("1,000",)
    assert q1.answers[1].free_form == "a thousand"
    assert q2.answers[0].yes_no is True
    assert q2.answers[1].unanswerable
    assert q1.evidence_sets == (
        ("We collected 1,000 things from the web.",),
        ("FLOAT SELECTED: Table 1: Things.", "We study things. Things are studied."),
    )
    # the table caption is not in the text: dropped; q2 has no located evidence at all
    data = PAPER.index("We collected")
    assert gold_sets(q1, paper.text) == ((s(data, data + 39),), (s(AT, AT + len(ABSTRACT)),))
    assert gold_sets(q2, paper.text) == ()


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "is not a QASPER questions file"), ("[{}]", "is not a QASPER questions file")],
)
def test_load_qasper_rejects_malformed_files(tmp_path: Path, content: str, message: str) -> None:
    file = tmp_path / "questions_validation.json"
    file.write_text(content, encoding="utf-8")
    with pytest.raises(DatasetError, match=message):
        load_qasper(file)


def test_load_qasper_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="Cannot read the QASPER questions"):
        load_qasper(tmp_path)
    _write_dataset(tmp_path)
    (tmp_path / "papers" / "2001.00001.txt").unlink()
    with pytest.raises(DatasetError, match=r"Cannot read the text of paper 2001\.00001"):
        load_qasper(tmp_path)


@pytest.mark.shared
def test_load_three_real_papers() -> None:
    if not QASPER.exists():
        pytest.skip("../shared is absent")
    papers = load_qasper(QASPER, limit_papers=3)
    ids = [p.paper_id for p in papers]
    assert len(ids) == 3 and ids == sorted(ids)
    located = total = 0
    for paper in papers:
        doc = document_from_text(paper.text)
        assert doc.sections[0].title == "Abstract"
        assert paper.questions
        for q in paper.questions:
            evidence = {e for a in q.answers for e in a.evidence if not e.startswith("FLOAT")}
            total += len(evidence)
            located += sum(locate(paper.text, e) is not None for e in evidence)
    assert total and located == total
