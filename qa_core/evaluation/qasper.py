"""Retrieval evaluation on QASPER: gold evidence paragraphs located by offset, scored by coverage.

A gold paragraph counts as retrieved when the retrieved text covers at least half of its
characters (the union of the retrieved spans, so two chunks that each hold half a long paragraph
retrieve it together). A question's recall is the share of one annotator's gold paragraphs
retrieved, taking the best annotator; the reciprocal rank uses the first rank at which the hits
so far cover any gold paragraph. Budgeted recall concatenates hits in rank order and cuts them
at a character budget, so longer chunks pay for their length. Evidence that cannot be located
in the paper text (table and figure captions, marked ``FLOAT SELECTED``, and a handful of
edited paragraphs) is dropped; questions left with no located evidence are skipped and counted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa_core.errors import DatasetError
from qa_core.models import Document, Page, Section, Span, Word

__all__ = [
    "ConfigScores",
    "GoldSets",
    "QasperAnswer",
    "QasperPaper",
    "QasperQuestion",
    "QuestionScore",
    "Ranking",
    "RetrievalReport",
    "aggregate",
    "coverage",
    "document_from_text",
    "first_hit_rank",
    "gold_sets",
    "load_qasper",
    "locate",
    "recall",
    "score_question",
    "within_budget",
]

GoldSets = Sequence[Sequence[Span]]
"""One set of gold paragraphs per annotator."""
Ranking = Sequence[Sequence[Span]]
"""The spans of each retrieved chunk, best first."""

QUESTIONS_FILE = "questions_validation.json"
_HEADING = re.compile(r"^## +(.+?)[ \t]*$", re.MULTILINE)
_BACK_MATTER = re.compile(r"(?:references|bibliography|acknowledge?ments?)\.?", re.IGNORECASE)
# US Letter in points: the words' boxes are zeros, the page size only has to be plausible.
_PAGE_SIZE = (612.0, 792.0)


# -- data -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QasperAnswer:
    """One annotator's answer and the paragraphs they cited as evidence."""

    unanswerable: bool
    yes_no: bool | None
    free_form: str
    extractive_spans: tuple[str, ...]
    evidence: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class QasperQuestion:
    question_id: str
    question: str
    answers: tuple[QasperAnswer, ...]

    @property
    def evidence_sets(self) -> tuple[tuple[str, ...], ...]:
        """The gold evidence paragraphs, one tuple per annotator."""
        return tuple(answer.evidence for answer in self.answers)


@dataclass(frozen=True, slots=True)
class QasperPaper:
    paper_id: str  # the arXiv id
    title: str
    text: str
    questions: tuple[QasperQuestion, ...]


def _answer(raw: dict[str, Any]) -> QasperAnswer:
    yes_no = raw.get("yes_no")
    return QasperAnswer(
        unanswerable=bool(raw.get("unanswerable", False)),
        yes_no=None if yes_no is None else bool(yes_no),
        free_form=str(raw.get("free_form_answer") or ""),
        extractive_spans=tuple(str(s) for s in raw.get("extractive_spans") or ()),
        evidence=tuple(str(e) for e in raw.get("evidence") or ()),
    )


def load_qasper(path: Path, *, limit_papers: int | None = None) -> list[QasperPaper]:
    """Papers sorted by id (the first ``limit_papers`` of them), each with its questions.

    ``path`` is the questions JSON or the folder holding it; texts are read from
    ``papers/<arxiv id>.txt`` beside it.
    """
    file = path / QUESTIONS_FILE if path.is_dir() else path
    try:
        rows = json.loads(file.read_text(encoding="utf-8"))
        by_paper: dict[str, tuple[str, list[QasperQuestion]]] = {}
        for row in rows:
            title, questions = by_paper.setdefault(str(row["paper_id"]), (row["paper_title"], []))
            questions.append(
                QasperQuestion(
                    str(row["question_id"]),
                    str(row["question"]),
                    tuple(_answer(a) for a in row["answers"]),
                )
            )
    except OSError as exc:
        raise DatasetError(f"Cannot read the QASPER questions at {file}: {exc}.") from exc
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DatasetError(f"{file} is not a QASPER questions file ({exc!r}).") from exc
    ids = sorted(by_paper)[:limit_papers] if limit_papers else sorted(by_paper)
    papers = []
    for paper_id in ids:
        text_file = file.parent / "papers" / f"{paper_id}.txt"
        try:
            text = text_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise DatasetError(f"Cannot read the text of paper {paper_id}: {exc}.") from exc
        title, questions = by_paper[paper_id]
        papers.append(QasperPaper(paper_id, str(title), text, tuple(questions)))
    return papers


def document_from_text(text: str) -> Document:
    """A QASPER text as a one-page :class:`Document` whose page text is ``text`` unchanged.

    One page keeps offsets trivial (gold paragraphs and chunks both live on page 1). Each
    ``## `` heading starts a section at the heading line itself, as the PDF parser does, so a
    heading stays with its body; a heading whose last ``:::`` part is references,
    bibliography or acknowledgements marks back matter. Words come from whitespace and have
    zero boxes: chunking needs their offsets, not their positions.
    """
    title = next((line[2:].strip() for line in text.splitlines() if line.startswith("# ")), "")
    sections = tuple(
        Section(
            m.group(1),
            1,
            m.start(),
            back_matter=bool(_BACK_MATTER.fullmatch(m.group(1).split(":::")[-1].strip())),
        )
        for m in _HEADING.finditer(text)
    )
    words = tuple(Word((0.0, 0.0, 0.0, 0.0), m.start(), m.end()) for m in re.finditer(r"\S+", text))
    page = Page(1, text, *_PAGE_SIZE, words)
    return Document(title=title, pages=(page,), sections=sections)


def locate(text: str, paragraph: str, page: int = 1) -> Span | None:
    """Where ``paragraph`` (stripped) first occurs in ``text``, or None."""
    needle = paragraph.strip()
    start = text.find(needle) if needle else -1
    return Span(page, start, start + len(needle)) if start >= 0 else None


def gold_sets(question: QasperQuestion, text: str) -> tuple[tuple[Span, ...], ...]:
    """Each annotator's located evidence; annotators with none located are left out."""
    out = []
    for evidence in question.evidence_sets:
        spans = {span for e in evidence if (span := locate(text, e)) is not None}
        if spans:
            out.append(tuple(sorted(spans, key=lambda s: (s.page, s.start, s.end))))
    return tuple(out)


# -- scoring ----------------------------------------------------------------------------


def coverage(gold: Span, retrieved: Iterable[Span]) -> float:
    """Share of ``gold``'s characters that the union of ``retrieved`` covers."""
    parts = sorted(
        (max(s.start, gold.start), min(s.end, gold.end))
        for s in retrieved
        if s.page == gold.page and s.start < gold.end and s.end > gold.start
    )
    covered, reach = 0, gold.start
    for start, end in parts:
        start = max(start, reach)
        if end > start:
            covered += end - start
            reach = end
    return covered / (gold.end - gold.start) if gold.end > gold.start else 0.0


def recall(gold: GoldSets, retrieved: Sequence[Span], threshold: float = 0.5) -> float:
    """Share of an annotator's paragraphs that ``retrieved`` covers, best annotator."""
    return max(
        (
            sum(coverage(g, retrieved) >= threshold for g in paragraphs) / len(paragraphs)
            for paragraphs in gold
            if paragraphs
        ),
        default=0.0,
    )


def first_hit_rank(gold: GoldSets, ranking: Ranking, threshold: float = 0.5) -> int | None:
    """The first rank (from 1) at which the hits so far cover some gold paragraph."""
    paragraphs = {g for annotator in gold for g in annotator}
    seen: list[Span] = []
    for rank, spans in enumerate(ranking, start=1):
        seen.extend(spans)
        if any(coverage(g, seen) >= threshold for g in paragraphs):
            return rank
    return None


def within_budget(ranking: Ranking, chars: int) -> list[Span]:
    """The hits' spans in rank order, cut once ``chars`` characters are used.

    A chunk's spans are joined by one newline (see :class:`~qa_core.models.Chunk`), so each
    join costs a character; nothing is counted between chunks.
    """
    out: list[Span] = []
    left = chars
    for spans in ranking:
        for i, span in enumerate(spans):
            left -= 1 if i else 0
            if left <= 0:
                return out
            take = min(span.end - span.start, left)
            out.append(Span(span.page, span.start, span.start + take))
            left -= take
    return out


@dataclass(frozen=True, slots=True)
class QuestionScore:
    """One question's retrieval metrics."""

    recall_at_1: float
    recall_at_k: float
    reciprocal_rank: float
    budget_recall: float  # top k hits, cut at the budget
    fill_recall: float  # as many hits as the budget holds


def score_question(
    gold: GoldSets, ranking: Ranking, *, k: int = 5, budget_chars: int = 5000
) -> QuestionScore:
    """Recall@1, recall@k, reciprocal rank over the whole ranking, and the recall of the hits
    concatenated in rank order and cut at ``budget_chars`` characters: the top ``k`` only
    (``budget_recall``) and every hit until the budget is full (``fill_recall``)."""
    rank = first_hit_rank(gold, ranking)
    return QuestionScore(
        recall_at_1=recall(gold, [s for spans in ranking[:1] for s in spans]),
        recall_at_k=recall(gold, [s for spans in ranking[:k] for s in spans]),
        reciprocal_rank=1 / rank if rank else 0.0,
        budget_recall=recall(gold, within_budget(ranking[:k], budget_chars)),
        fill_recall=recall(gold, within_budget(ranking, budget_chars)),
    )


# -- reporting --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConfigScores:
    """One configuration's means over the scored questions."""

    config: str
    questions: int
    recall_at_1: float
    recall_at_k: float
    mrr: float
    budget_recall: float
    fill_recall: float
    avg_chunk_chars: float


def aggregate(config: str, scores: Sequence[QuestionScore], avg_chunk_chars: float) -> ConfigScores:
    """Mean of each metric over ``scores`` (zeros when there are none)."""
    n = len(scores)

    def mean(values: Iterable[float]) -> float:
        return sum(values) / n if n else 0.0

    return ConfigScores(
        config=config,
        questions=n,
        recall_at_1=mean(s.recall_at_1 for s in scores),
        recall_at_k=mean(s.recall_at_k for s in scores),
        mrr=mean(s.reciprocal_rank for s in scores),
        budget_recall=mean(s.budget_recall for s in scores),
        fill_recall=mean(s.fill_recall for s in scores),
        avg_chunk_chars=avg_chunk_chars,
    )


@dataclass(slots=True)
class RetrievalReport:
    """Side-by-side retrieval results of several configurations on the same questions."""

    papers: int
    questions: int  # questions scored
    skipped: int  # questions without any located gold evidence
    rows: list[ConfigScores]
    k: int = 5
    budget_chars: int = 5000
    depth: int = 20  # hits retrieved per question; MRR is MRR@depth

    def table(self) -> str:
        """A markdown table, recalls in percent."""
        head = (
            f"| config | recall@1 | recall@{self.k} | MRR@{self.depth} "
            f"| recall@{self.k} within {self.budget_chars:,} chars "
            f"| recall within {self.budget_chars:,} chars (hits until full) | avg chunk chars |"
        )
        lines = [
            f"QASPER dev: {self.papers} papers, {self.questions} questions scored "
            f"({self.skipped} skipped: no gold evidence located in the text).",
            "",
            head,
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {r.config} | {100 * r.recall_at_1:.1f} | {100 * r.recall_at_k:.1f} "
            f"| {r.mrr:.3f} | {100 * r.budget_recall:.1f} | {100 * r.fill_recall:.1f} "
            f"| {r.avg_chunk_chars:,.0f} |"
            for r in self.rows
        ]
        return "\n".join(lines)
