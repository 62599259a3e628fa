"""Running a matrix: cells planned, served from the cache or computed by per-endpoint workers.

The models of one matrix share their work: each question is embedded once (:class:`SharedEmbedder`)
and each paper parsed once (the service's page cache). The bundled embedder runs one query at a
time and MuPDF parses one document at a time, so doing either twice (or in several threads at
once for the same input) stalls the workers; :func:`warm` does each ahead of the workers (in its
own thread), in the order they need them.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from qa_core.answering.llm import ChatModel
from qa_core.answering.prompts import Template
from qa_core.answering.serialization import answer_json
from qa_core.embeddings import Embedder, Vectors
from qa_core.errors import ConfigError, MarginError, PaperNotFound
from qa_core.matrix.cells import (
    REPORTED,
    Cell,
    CellProgress,
    Matrix,
    MatrixCache,
    binary_prompt,
    converted,
    now,
    parse_binary,
    sha,
)
from qa_core.matrix.endpoints import model_id
from qa_core.matrix.questions import Question, QuestionSet
from qa_core.models import Paper
from qa_core.service import Service

__all__ = ["Once", "SharedEmbedder", "run_matrix", "services_for", "warm"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Once(Generic[K, V]):
    """``compute`` memoised per key; concurrent callers of one key wait for the first."""

    def __init__(self, compute: Callable[[K], V]) -> None:
        self.compute = compute
        self._values: dict[K, V] = {}
        self._locks: dict[K, threading.Lock] = {}
        self._lock = threading.Lock()

    def __call__(self, key: K) -> V:
        with self._lock:
            once = self._locks.setdefault(key, threading.Lock())
        with once:
            if key not in self._values:
                self._values[key] = self.compute(key)
            return self._values[key]


class SharedEmbedder:
    """An embedder whose query vectors are computed once (passages pass through)."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.queries: Once[str, Vectors] = Once(inner.embed_query)

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        return self.inner.embed_passages(texts)

    def embed_query(self, text: str) -> Vectors:
        return self.queries(text)

    def health(self) -> str:
        return self.inner.health()


def services_for(base: Service, models: dict[str, ChatModel]) -> dict[str, Service]:
    """One service per model, sharing the base's clients and page cache and one query memo."""
    embedder = SharedEmbedder(base.embedder)
    return {name: base.replace(chat=chat, embedder=embedder) for name, chat in models.items()}


def warm(job: Callable[[str], object], items: Sequence[str], halted: Callable[[], bool]) -> None:
    """Run ``job`` on each item ahead of the workers (embed questions, parse papers)."""
    for item in items:
        if halted():
            return
        try:
            job(item)
        except Exception:  # the workers meet the same failure and record it in their cells
            return


def _recipe(service: Service, paper_id: str, q: Question, tpl: Template, chat: ChatModel) -> Any:
    s = service.settings
    return {
        "paper_id": paper_id,  # a hash of the PDF's content
        "question": q.question,
        "instructions": q.instructions,
        "template_hash": tpl.hash,
        "numbered": tpl.numbered,
        "model": model_id(chat),
        "retrieval": {
            "top_k": s.top_k,
            "chunk_tokens": s.chunk_tokens,
            "chunk_overlap": s.chunk_overlap,
            "dense_weight": s.dense_weight,
            "sparse_weight": s.sparse_weight,
            "include_back_matter": s.include_back_matter,
            "embedding": service.embedder.name,
        },
        "generation": {
            "temperature": s.temperature,
            "context_window": s.context_window,
            "answer_tokens": s.answer_tokens,
            "encoding": s.encoding,
        },
    }


# -- running ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Task:
    cell: Cell  # the planned cell; status "" until its answer is computed
    question: Question


@dataclass(frozen=True, slots=True)
class _Done:
    cell: Cell
    answered: bool  # an answer was computed (else it came from the cache)
    converted: bool  # a yes/no conversion was computed


def run_matrix(
    service: Service,
    papers: Sequence[str | Paper] | None,
    questions: QuestionSet,
    models: dict[str, ChatModel],
    *,
    cache: MatrixCache,
    template: str | Template | None = None,
    concurrency: int = 4,
    on_cell: Callable[[CellProgress], None] | None = None,
    cancel: threading.Event | None = None,
    binary: ChatModel | None = None,
    retry_failed: bool = False,
) -> Matrix:
    """Answer every question about every paper (None: all) with every model.

    At most ``concurrency`` requests run at once per endpoint (base URL). Cached cells cost
    nothing; ``cancel`` stops scheduling new cells and returns what finished (kept in the
    cache). ``on_cell`` is called from this thread after each cell.
    """
    if concurrency < 1:
        raise ConfigError("The concurrency must be at least 1.")
    if not models:
        raise ConfigError("A matrix needs at least one model.")
    tpl = service.template(template)
    matrix = Matrix(
        _papers(service, papers),
        questions,
        {name: model_id(chat) for name, chat in models.items()},
        tpl,
    )
    if not matrix.papers:
        raise MarginError("There are no papers to ask about; add papers to the library first.")
    services = services_for(service, models)
    todo: dict[str, deque[_Task]] = {}
    ready: list[Cell] = []
    for paper, q in _order(matrix.papers, questions.questions, max(1, concurrency // 2)):
        for name, chat in models.items():
            recipe = _recipe(service, paper.paper_id, q, tpl, chat)
            cell = Cell(paper.paper_id, q.id, name, sha(recipe), recipe, "")
            hit = cache.lookup(cell)
            if hit is not None and not (retry_failed and hit.status == "error"):
                cell = hit
                if binary is None or not _wants_binary(cell):
                    ready.append(cell)
                    continue
                if (conv := cache.lookup_conversion(cell, model_id(binary))) is not None:
                    ready.append(conv)
                    continue
            todo.setdefault(chat.url, deque()).append(_Task(cell, q))
    total, done = matrix.total, 0
    for cell in ready:
        matrix.cells[(cell.paper_id, cell.question_id, cell.model)] = cell
        done += 1
        if on_cell:
            on_cell(CellProgress(cell, done, total, None))
    to_compute = sum(map(len, todo.values()))
    gate = {url: threading.Semaphore(concurrency) for url in (c.url for c in models.values())}
    if binary is not None:
        gate.setdefault(binary.url, threading.Semaphore(concurrency))
    ctx = _Context(services, {n: gate[c.url] for n, c in models.items()}, tpl, binary, gate)
    stop = threading.Event()
    results: queue.SimpleQueue[_Done | None] = queue.SimpleQueue()

    def halted() -> bool:
        return stop.is_set() or (cancel is not None and cancel.is_set())

    def worker(tasks: deque[_Task]) -> None:
        try:
            while not halted():
                try:
                    task = tasks.popleft()
                except IndexError:
                    return
                results.put(_compute(task, ctx))
        finally:
            results.put(None)

    def record(item: _Done) -> None:
        cell = item.cell
        if item.answered:
            cache.store(cell)
        if item.converted and binary is not None and not cell.error:
            cache.store_conversion(cell, model_id(binary))
        matrix.computed += item.answered + item.converted
        matrix.cells[(cell.paper_id, cell.question_id, cell.model)] = cell

    asks = [t for tasks in todo.values() for t in tasks if not t.cell.status]
    texts = list(dict.fromkeys(t.question.question for t in asks))
    pids = list(dict.fromkeys(t.cell.paper_id for t in asks))
    first = next(iter(services.values()))
    threads = [
        threading.Thread(target=warm, args=(job, items, halted), daemon=True)
        for job, items in ((first.embedder.embed_query, texts), (first.pages, pids))
    ]
    threads += [
        threading.Thread(target=worker, args=(tasks,), name=f"matrix-{n}", daemon=True)
        for tasks in todo.values()
        for n in range(min(concurrency, len(tasks)))
    ]
    start, computed, alive = time.monotonic(), 0, len(threads) - 2
    for thread in threads:
        thread.start()
    try:
        while alive:
            try:
                item = results.get(timeout=0.2)
            except queue.Empty:
                continue
            if item is None:
                alive -= 1
                continue
            record(item)
            done, computed = done + 1, computed + 1
            rate = (time.monotonic() - start) / computed
            if on_cell:
                on_cell(CellProgress(item.cell, done, total, rate * (to_compute - computed)))
    finally:  # also on Ctrl-C or a failing callback: finish the cells in flight and keep them
        stop.set()
        for thread in threads:
            thread.join()
        while not results.empty():
            if (left := results.get()) is not None:
                record(left)
    matrix.cancelled = len(matrix.cells) < total
    return matrix


def _order(
    papers: Sequence[Paper], questions: Sequence[Question], block: int
) -> Iterator[tuple[Paper, Question]]:
    """Question by question over a few papers at a time: the first cells then need only a few
    question embeddings and a few parsed papers, which :func:`warm` prepares meanwhile."""
    for start in range(0, len(papers), block):
        for q in questions:
            for paper in papers[start : start + block]:
                yield paper, q


def _papers(service: Service, papers: Sequence[str | Paper] | None) -> list[Paper]:
    known = {p.paper_id: p for p in service.papers()}
    if papers is None:
        return list(known.values())
    chosen = []
    for paper in papers:
        pid = paper.paper_id if isinstance(paper, Paper) else paper
        if pid not in known:
            raise PaperNotFound(f"No paper with id {pid!r} in the library.")
        chosen.append(known[pid])
    return chosen


def _wants_binary(cell: Cell) -> bool:
    """Only real answers need the yes/no prompt: abstentions are 'no' by their status."""
    return cell.status == "answered" and not cell.error


def _one_line(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    if not isinstance(exc, MarginError):
        text = f"Unexpected error ({type(exc).__name__}: {text})."
    return text[:500]


@dataclass(frozen=True, slots=True)
class _Context:
    services: dict[str, Service]  # by model name
    gates: dict[str, threading.Semaphore]  # by model name: its endpoint's semaphore
    template: Template
    binary: ChatModel | None
    endpoints: dict[str, threading.Semaphore]  # by base URL


def _compute(task: _Task, ctx: _Context) -> _Done:
    """Answer one cell (unless cached) and convert it to yes/no when a binary model is given."""
    cell, q = task.cell, task.question
    answered = not cell.status
    if answered:
        try:
            with ctx.gates[cell.model]:
                answer = ctx.services[cell.model].ask(
                    q.question,
                    papers=[cell.paper_id],
                    template=ctx.template,
                    instructions=q.instructions,
                )
        except Exception as exc:  # one failed cell must not stop the others; its row says why
            failed = replace(cell, status="error", error=_one_line(exc), created=now())
            return _Done(failed, True, False)
        cell = replace(
            cell,
            status=answer.status,
            answer=answer_json(answer),
            reported=REPORTED.get(answer.status),
            created=now(),
        )
    binary = ctx.binary
    if binary is None or cell.answer is None or not _wants_binary(cell):
        return _Done(cell, answered, False)
    prompt = binary_prompt(q.question, str(cell.answer["answer"]))
    try:
        with ctx.endpoints[binary.url]:
            reply = binary.complete(prompt, max_tokens=64).text
    except Exception as exc:  # the answer stays; the conversion is retried on the next run
        failed = replace(cell, reported=None, error="Yes/no conversion: " + _one_line(exc))
        return _Done(failed, answered, True)
    return _Done(converted(cell, parse_binary(reply), reply), answered, True)
