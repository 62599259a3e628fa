"""Run Margin's pipeline on QASPER in a throwaway embedded store and score it.

Shared by ``margin eval retrieval|answers|templates`` and ``bench/retrieval.py``: each paper's
text is chunked with a splitter, embedded with the given :class:`Embedder`, written to a
temporary Qdrant Edge store, and every question searches its own paper only.
"""

from __future__ import annotations

import re
import string
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from qa_core import tokens
from qa_core.answering import prompts, replies
from qa_core.answering.llm import ChatModel
from qa_core.answering.prompts import Template
from qa_core.embeddings import Embedder
from qa_core.evaluation.qasper import (
    ConfigScores,
    QasperAnswer,
    QasperPaper,
    RetrievalReport,
    aggregate,
    document_from_text,
    gold_sets,
    score_question,
)
from qa_core.ingest import chunking
from qa_core.models import Chunk, Context, Document, Hit
from qa_core.settings import Settings
from qa_core.store import EdgeStore, SearchQuery

__all__ = [
    "ANSWER_TABLE_HEAD",
    "AnswerScores",
    "Experiment",
    "Retrieval",
    "Splitter",
    "answer_f1",
    "reference_texts",
    "token_splitter",
]

Splitter = Callable[[Document, str], list[Chunk]]
_WORKSPACE = "eval"


@dataclass(frozen=True, slots=True)
class Retrieval:
    """How to search; ``top`` keeps only that many hits (the seed pipeline shows 4)."""

    label: str
    mode: Literal["hybrid", "dense", "sparse"] = "hybrid"
    dense_weight: float = 2.0
    sparse_weight: float = 1.0
    top: int = 20


def token_splitter(size: int, overlap: int) -> Splitter:
    """Margin's own chunking at a given size and overlap."""

    def split(doc: Document, paper_id: str) -> list[Chunk]:
        return chunking.split(doc, paper_id, size=size, overlap=overlap)

    return split


# -- answer metrics (SQuAD-style, as QASPER reports them) -----------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_CITATIONS = re.compile(r"\[\d+(?:\s*[,–-]\s*\d+)*\]")  # our [n] markers are not answer words
_PUNCT = str.maketrans("", "", string.punctuation)


def _tokens(text: str) -> list[str]:
    text = _CITATIONS.sub(" ", text)
    return _ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split()


def answer_f1(prediction: str, reference: str) -> float:
    """Token F1 after lower-casing and removing punctuation and articles."""
    pred, ref = _tokens(prediction), _tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    same = sum((Counter(pred) & Counter(ref)).values())
    if not same:
        return 0.0
    precision, recall_ = same / len(pred), same / len(ref)
    return 2 * precision * recall_ / (precision + recall_)


def reference_texts(refs: Sequence[QasperAnswer]) -> list[str]:
    """Each annotator's answer as text: 'Unanswerable', 'Yes'/'No', spans, or free form."""
    out = []
    for ref in refs:
        if ref.unanswerable:
            out.append("Unanswerable")
        elif ref.yes_no is not None:
            out.append("Yes" if ref.yes_no else "No")
        elif ref.extractive_spans:
            out.append(", ".join(ref.extractive_spans))
        else:
            out.append(ref.free_form)
    return out


@dataclass(frozen=True, slots=True)
class AnswerScores:
    """Answer-F1 (max over annotators) and abstention on unanswerable questions."""

    label: str
    questions: int
    f1: float
    unanswerable: int
    abstained: int  # unanswerable questions answered with an abstention

    def row(self) -> str:
        share = self.abstained / self.unanswerable if self.unanswerable else 0.0
        return (
            f"| {self.label} | {self.questions} | {100 * self.f1:.1f} "
            f"| {self.abstained}/{self.unanswerable} ({100 * share:.0f}%) |"
        )


ANSWER_TABLE_HEAD = (
    "| template | questions | Answer-F1 | unanswerable correctly abstained |\n|---|---:|---:|---:|"
)


class Experiment:
    """QASPER papers, their located gold evidence and query vectors."""

    def __init__(
        self,
        papers: Sequence[QasperPaper],
        embedder: Embedder,
        *,
        k: int = 5,
        budget_chars: int = 5000,
        depth: int = 20,
    ) -> None:
        self.papers = list(papers)
        self.embedder = embedder
        self.k, self.budget_chars, self.depth = k, budget_chars, depth
        self.docs = {p.paper_id: document_from_text(p.text) for p in self.papers}
        self.questions = [
            (p.paper_id, q, gold)
            for p in self.papers
            for q in p.questions
            if (gold := gold_sets(q, p.text))
        ]
        self.skipped = sum(len(p.questions) for p in self.papers) - len(self.questions)
        self._vectors: dict[str, npt.NDArray[np.float32]] = {}

    def _vector(self, text: str) -> npt.NDArray[np.float32]:
        if text not in self._vectors:
            self._vectors[text] = self.embedder.embed_query(text)
        return self._vectors[text]

    @contextmanager
    def index(self, splitter: Splitter) -> Iterator[tuple[EdgeStore, float]]:
        """Every paper chunked and stored; yields the store and the mean chunk length."""
        chunks = {pid: splitter(doc, pid) for pid, doc in self.docs.items()}
        flat = [c for cs in chunks.values() for c in cs]
        vectors = self.embedder.embed_passages([chunking.embedding_text(c) for c in flat])
        with tempfile.TemporaryDirectory() as tmp:
            store = EdgeStore(tmp, embedding_name=self.embedder.name, dim=self.embedder.dim)
            try:
                at = 0
                for pid, cs in chunks.items():
                    store.add(cs, vectors[at : at + len(cs)], workspace=_WORKSPACE, title=pid)
                    at += len(cs)
                yield store, sum(len(c.text) for c in flat) / max(1, len(flat))
            finally:
                store.close()

    def _search(self, store: EdgeStore, pid: str, question: str, retrieval: Retrieval) -> list[Hit]:
        query = SearchQuery(
            text=question,
            vector=self._vector(question),
            k=self.depth,
            papers=[pid],
            workspace=_WORKSPACE,
            mode=retrieval.mode,
            dense_weight=retrieval.dense_weight,
            sparse_weight=retrieval.sparse_weight,
        )
        return store.search(query)[: retrieval.top]

    def run(self, splitter: Splitter, retrievals: Sequence[Retrieval]) -> list[ConfigScores]:
        """Retrieval metrics of each way of searching one index."""
        rows = []
        with self.index(splitter) as (store, avg_chars):
            for retrieval in retrievals:
                scores = [
                    score_question(
                        gold,
                        [h.chunk.spans for h in self._search(store, pid, q.question, retrieval)],
                        k=self.k,
                        budget_chars=self.budget_chars,
                    )
                    for pid, q, gold in self.questions
                ]
                rows.append(aggregate(retrieval.label, scores, avg_chars))
        return rows

    def report(self, rows: list[ConfigScores]) -> RetrievalReport:
        return RetrievalReport(
            papers=len(self.papers),
            questions=len(self.questions),
            skipped=self.skipped,
            rows=rows,
            k=self.k,
            budget_chars=self.budget_chars,
            depth=self.depth,
        )

    def answers(
        self,
        chat: ChatModel,
        templates: Sequence[Template],
        settings: Settings,
        *,
        limit: int | None = None,
    ) -> list[AnswerScores]:
        """Answer each question with each template (same retrieval) and score the answers."""
        encoding = tokens.encoding_for(chat.name, settings.encoding)
        splitter = token_splitter(settings.chunk_tokens, settings.chunk_overlap)
        retrieval = Retrieval(
            "",
            dense_weight=settings.dense_weight,
            sparse_weight=settings.sparse_weight,
            top=settings.top_k,
        )
        # Every question, answerable or not (abstaining on the unanswerable ones is scored).
        picked = [(p.paper_id, q) for p in self.papers for q in p.questions][:limit]
        results = []
        with self.index(splitter) as (store, _):
            hits = [self._search(store, pid, q.question, retrieval) for pid, q in picked]
            for tpl in templates:
                f1s, unanswerable, abstained = [], 0, 0
                for (_, question), found in zip(picked, hits, strict=True):
                    contexts = [Context(n, h) for n, h in enumerate(found, start=1)]
                    prompt = prompts.assemble(
                        tpl,
                        question.question,
                        contexts,
                        encoding=encoding,
                        context_window=settings.context_window,
                        answer_tokens=settings.answer_tokens,
                    )
                    reply = chat.complete(prompt.text, max_tokens=settings.answer_tokens)
                    parsed = replies.parse(reply.text, sentinel=prompts.NOT_REPORTED_SENTINEL)
                    said = "Unanswerable" if parsed.status == "not_reported" else parsed.body
                    refs = reference_texts(question.answers)
                    f1s.append(max(answer_f1(said, ref) for ref in refs) if refs else 0.0)
                    if all(a.unanswerable for a in question.answers):
                        unanswerable += 1
                        abstained += parsed.status == "not_reported"
                mean = sum(f1s) / len(f1s) if f1s else 0.0
                results.append(AnswerScores(tpl.name, len(f1s), mean, unanswerable, abstained))
        return results
