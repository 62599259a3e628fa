"""The vector-store interface both engines implement, and the fusion they share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

from qa_core.models import Chunk, Hit

__all__ = ["SearchQuery", "VectorStore"]

Vectors = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """One retrieval request. ``papers=None`` means every paper in ``workspace``."""

    text: str
    vector: Vectors
    k: int = 8
    papers: Sequence[str] | None = None
    workspace: str = "default"
    include_back_matter: bool = False
    mode: Literal["hybrid", "dense", "sparse"] = "hybrid"
    dense_weight: float = 2.0
    sparse_weight: float = 1.0


class VectorStore(Protocol):
    """Chunks with a dense vector and a BM25 sparse vector; hybrid search with filters."""

    #: True when this process is the store's only user (embedded engine, local mode); False
    #: for a server that other Margin instances may share, whose papers this one cannot see.
    exclusive: bool

    def add(self, chunks: Sequence[Chunk], vectors: Vectors, *, workspace: str, title: str) -> None:
        """Write the chunks of one paper (idempotent: same chunk ids overwrite)."""

    def search(self, query: SearchQuery) -> list[Hit]:
        """Best hits first."""

    def delete(self, paper_id: str, *, workspace: str) -> None:
        """Remove every point of a paper in a workspace."""

    def paper_ids(self, workspace: str) -> set[str]:
        """Paper ids that have points (to clean up after a crashed ingest)."""

    def close(self) -> None:
        """Release the storage (the embedded engine locks its folder)."""
