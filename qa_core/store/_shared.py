"""What both engines share, so they store and rank identically: ids, payloads, BM25, fusion."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import qdrant_edge

from qa_core.errors import ConfigError, EmbeddingMismatch, StoreError
from qa_core.models import Chunk, Hit, Span
from qa_core.store.base import SearchQuery, Vectors

__all__ = [
    "BM25",
    "DENSE",
    "RRF_K",
    "SPARSE",
    "Ranked",
    "candidate_limit",
    "check_embedding",
    "check_vectors",
    "fuse",
    "hit_from_payload",
    "locked_message",
    "point_id",
    "retrievers",
    "scopes",
    "to_payload",
]

DENSE = "dense"
SPARSE = "bm25"
RRF_K = 60

Ranked = tuple[str, float]
"""(chunk id, score)"""

# Fixed forever: point ids are derived from it, so changing it would duplicate every chunk.
_NAMESPACE = uuid.UUID("6f1c3a52-8e0b-5d2e-9a47-3c1b7e9d2f60")

# One encoder for both engines (English stemming and stopwords, k=1.2, b=0.75); it runs
# locally and downloads nothing. Its settings are part of the index: changing them would
# make stored document vectors disagree with new query vectors.
BM25 = qdrant_edge.Bm25()


def point_id(workspace: str, chunk_id: str) -> str:
    """The point's id: the same chunk in the same workspace always lands on the same point."""
    return str(uuid.uuid5(_NAMESPACE, f"{workspace}/{chunk_id}"))


def scope(workspace: str, back_matter: bool) -> str:
    """One keyword for workspace and back matter: a single filter condition is much cheaper
    than two on an unindexed (brute-force) segment, where every point is checked."""
    return f"{workspace}/{'back' if back_matter else 'body'}"


def scopes(query: SearchQuery) -> list[str]:
    """The scope values a query searches."""
    wanted = [scope(query.workspace, False)]
    return [*wanted, scope(query.workspace, True)] if query.include_back_matter else wanted


def to_payload(chunk: Chunk, *, workspace: str, title: str) -> dict[str, Any]:
    """The payload stored next to a chunk's vectors."""
    return {
        "workspace": workspace,
        "paper_id": chunk.paper_id,
        "chunk_id": chunk.chunk_id,
        "index": chunk.index,
        "text": chunk.text,
        "section": chunk.section,
        "back_matter": chunk.back_matter,
        "spans": [[s.page, s.start, s.end] for s in chunk.spans],
        "title": title,
        "scope": scope(workspace, chunk.back_matter),
    }


def hit_from_payload(payload: Mapping[str, Any], score: float) -> Hit:
    """Rebuild a hit from a stored payload."""
    chunk = Chunk(
        paper_id=str(payload["paper_id"]),
        chunk_id=str(payload["chunk_id"]),
        index=int(payload["index"]),
        text=str(payload["text"]),
        spans=tuple(Span(int(p), int(s), int(e)) for p, s, e in payload["spans"]),
        section=str(payload.get("section", "")),
        back_matter=bool(payload.get("back_matter", False)),
    )
    return Hit(chunk=chunk, score=score, title=str(payload.get("title", "")))


def candidate_limit(query: SearchQuery) -> int:
    """How many candidates each retriever contributes: hybrid fuses deeper lists than k."""
    return query.k if query.mode != "hybrid" else max(50, 4 * query.k)


def fuse(rankings: Sequence[tuple[Sequence[Ranked], float]], k: int) -> list[Ranked]:
    """Weighted reciprocal rank fusion of (chunk id, engine score) lists, best ``k`` first.

    ``score = sum(w / (60 + rank))`` with ranks from 1. Each list is first ordered by
    (engine score desc, chunk id) so equal engine scores rank alike in every engine; fused
    ties are broken by chunk id too.
    """
    fused: dict[str, float] = {}
    for ranking, weight in rankings:
        for rank, (chunk_id, _) in enumerate(sorted(ranking, key=_best_first), start=1):
            fused[chunk_id] = fused.get(chunk_id, 0.0) + weight / (RRF_K + rank)
    return sorted(fused.items(), key=_best_first)[:k]


def _best_first(item: Ranked) -> tuple[float, str]:
    return -item[1], item[0]


def check_vectors(vectors: Vectors, rows: int, dim: int) -> None:
    """Refuse vectors of the wrong shape before they reach the engine."""
    if vectors.ndim != 2 or vectors.shape[0] != rows:
        raise ValueError(f"expected {rows} vectors, got an array of shape {vectors.shape}")
    if vectors.shape[1] != dim:
        raise StoreError(
            f"The vectors have {vectors.shape[1]} dimensions but the index expects {dim}; "
            "check the embedding setting."
        )


def check_embedding(stored_name: str, stored_dim: int, name: str, dim: int) -> None:
    """Raise :class:`EmbeddingMismatch` unless the index was built with this embedding."""
    if (stored_name, stored_dim) != (name, dim):
        raise EmbeddingMismatch(
            f"The index was built with embedding '{stored_name}' ({stored_dim} dims) but "
            f"'{name}' ({dim} dims) is configured; re-index the library or switch back."
        )


def locked_message(where: str) -> str:
    """The sentence for a storage folder another process holds."""
    return f"The library at {where} is open in another Margin process; close it first."


def retrievers(query: SearchQuery) -> list[tuple[str, float]]:
    """The (vector name, RRF weight) lists a query fuses; a zero weight skips its retriever."""
    if query.mode == "dense":
        return [(DENSE, 1.0)]
    if query.mode == "sparse":
        return [(SPARSE, 1.0)]
    plan = [(DENSE, query.dense_weight), (SPARSE, query.sparse_weight)]
    plan = [(name, weight) for name, weight in plan if weight > 0]
    if not plan:
        raise ConfigError("dense_weight and sparse_weight cannot both be 0.")
    return plan
