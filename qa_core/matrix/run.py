"""What the models of one matrix share: each question is embedded once, each paper parsed once.

A matrix asks the same questions of every paper with every model, from several threads. The
bundled embedder runs one query at a time and MuPDF parses one document at a time, so doing
either twice (or, worse, in several threads at once for the same input) stalls the workers;
:func:`warm` does each ahead of the workers (in its own thread), in the order they need them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from typing import Generic, TypeVar

from qa_core.answering.llm import ChatModel
from qa_core.embeddings import Embedder, Vectors
from qa_core.models import Page
from qa_core.service import Service

__all__ = ["MatrixService", "Once", "SharedEmbedder", "services_for", "warm"]

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


class MatrixService(Service):
    """A copy of a Service with its own chat model and the matrix's shared embedder and pages."""

    def __init__(
        self,
        base: Service,
        chat: ChatModel,
        embedder: SharedEmbedder,
        pages: Once[str, tuple[Page, ...]],
    ) -> None:
        super().__init__(
            base.settings, base.library, embedder, chat, base.templates, base.workspace
        )
        self.shared_pages = pages

    def pages(self, paper_id: str) -> tuple[Page, ...]:
        return self.shared_pages(paper_id)


def services_for(base: Service, models: dict[str, ChatModel]) -> dict[str, MatrixService]:
    """One service per model, all sharing one embedder memo and one page cache."""
    embedder = SharedEmbedder(base.embedder)
    pages: Once[str, tuple[Page, ...]] = Once(base.pages)
    return {name: MatrixService(base, chat, embedder, pages) for name, chat in models.items()}


def warm(job: Callable[[str], object], items: Sequence[str], halted: Callable[[], bool]) -> None:
    """Run ``job`` on each item ahead of the workers (embed questions, parse papers)."""
    for item in items:
        if halted():
            return
        try:
            job(item)
        except Exception:  # the workers meet the same failure and record it in their cells
            return
