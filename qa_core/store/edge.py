"""The embedded store: Qdrant's engine in-process (qdrant-edge), one folder per library."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import qdrant_edge as qe

from qa_core.errors import MarginError, StoreError
from qa_core.models import Chunk, Hit
from qa_core.store._shared import (
    BM25,
    DENSE,
    SPARSE,
    candidate_limit,
    check_embedding,
    check_vectors,
    fuse,
    hit_from_payload,
    locked_message,
    point_id,
    retrievers,
    scopes,
    to_payload,
)
from qa_core.store.base import SearchQuery, Vectors

__all__ = ["EdgeStore"]

_META_FILE = "embedding.json"
_SHARD_DIR = "shard"


def _match(key: str, value: str) -> qe.FieldCondition:
    return qe.FieldCondition(key, match=qe.MatchValue(value))


def _workspace(workspace: str) -> qe.Filter:
    return qe.Filter(must=[_match("workspace", workspace)])


class EdgeStore:
    """A library index in ``path`` (the shard plus ``embedding.json``), locked to one process."""

    def __init__(self, path: str | os.PathLike[str], *, embedding_name: str, dim: int) -> None:
        self.path = Path(path)
        self.exclusive = True  # the engine locks its folder to one process
        self.embedding_name = embedding_name
        self.dim = dim
        self._lock = threading.Lock()
        self._shard: qe.EdgeShard | None = self._open()

    # -- opening -------------------------------------------------------------------------

    def _open(self) -> qe.EdgeShard:
        shard_dir = self.path / _SHARD_DIR
        meta_file = self.path / _META_FILE
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"Cannot create the library folder {self.path}: {exc}.") from exc
        if not (shard_dir.is_dir() and any(shard_dir.iterdir())):
            # Record the embedding first: a shard on disk then always has its record.
            self._write_meta(meta_file)
            with self._guard("creating the index"):
                shard = qe.EdgeShard.create(str(shard_dir), self._config())
        else:
            stored = self._read_meta(meta_file)
            if stored is not None:
                check_embedding(stored[0], stored[1], self.embedding_name, self.dim)
            with self._guard("opening the index"):
                shard = qe.EdgeShard.load(str(shard_dir))
            if stored is None:
                self._adopt(shard, meta_file)
        try:
            with self._guard("creating payload indexes"):
                self._ensure_indexes(shard)
        except StoreError:
            shard.close()
            raise
        return shard

    def _config(self) -> qe.EdgeConfig:
        return qe.EdgeConfig(
            vectors={DENSE: qe.EdgeVectorParams(size=self.dim, distance=qe.Distance.Cosine)},
            sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
        )

    def _adopt(self, shard: qe.EdgeShard, meta_file: Path) -> None:
        """A shard without an embedding record can only be claimed while it is empty."""
        if shard.info().points_count:
            shard.close()
            raise StoreError(
                f"The index at {self.path} has no record of its embedding model; "
                "re-index the library."
            )
        self._write_meta(meta_file)

    @staticmethod
    def _ensure_indexes(shard: qe.EdgeShard) -> None:
        present = shard.info().payload_schema
        # Searches filter on scope and paper_id, deletes and listings on workspace; an
        # unindexed field would cost a payload read per point.
        wanted = {
            "workspace": qe.KeywordIndexParams(is_tenant=True),
            "scope": qe.KeywordIndexParams(),
            "paper_id": qe.KeywordIndexParams(),
        }
        for field, params in wanted.items():
            if field not in present:
                shard.update(qe.UpdateOperation.create_field_index(field, params))
        shard.flush()

    def _read_meta(self, meta_file: Path) -> tuple[str, int] | None:
        try:
            data = json.loads(meta_file.read_text(encoding="utf-8"))
            return str(data["embedding"]), int(data["dim"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"Cannot read {meta_file}: {exc}.") from exc

    def _write_meta(self, meta_file: Path) -> None:
        tmp = meta_file.with_suffix(".tmp")
        try:
            tmp.write_text(
                json.dumps({"embedding": self.embedding_name, "dim": self.dim}), encoding="utf-8"
            )
            os.replace(tmp, meta_file)
        except OSError as exc:
            raise StoreError(f"Cannot write {meta_file}: {exc}.") from exc

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        """Turn engine exceptions into one sentence for the user."""
        try:
            yield
        except MarginError:
            raise
        except Exception as exc:
            # The engine locks its write-ahead log; a second process fails to take it.
            if "WouldBlock" in str(exc):
                raise StoreError(locked_message(str(self.path))) from exc
            raise StoreError(f"The index at {self.path} failed while {action}: {exc}.") from exc

    @property
    def _open_shard(self) -> qe.EdgeShard:
        if self._shard is None:
            raise StoreError(f"The index at {self.path} is closed.")
        return self._shard

    # -- VectorStore ---------------------------------------------------------------------

    def add(self, chunks: Sequence[Chunk], vectors: Vectors, *, workspace: str, title: str) -> None:
        """Write the chunks of one paper (same chunk ids overwrite) and flush to disk."""
        check_vectors(vectors, len(chunks), self.dim)
        if not chunks:
            return
        points = [
            qe.Point(
                point_id(workspace, chunk.chunk_id),
                {DENSE: vector.tolist(), SPARSE: BM25.embed_document(chunk.text)},
                to_payload(chunk, workspace=workspace, title=title),
            )
            for chunk, vector in zip(chunks, vectors, strict=True)
        ]
        with self._lock, self._guard("writing chunks"):
            shard = self._open_shard
            shard.update(qe.UpdateOperation.upsert_points(points))
            shard.flush()

    def search(self, query: SearchQuery) -> list[Hit]:
        """Best hits first; hybrid fuses the dense and BM25 lists client-side."""
        if query.papers is not None and not query.papers:
            return []
        plan = retrievers(query)
        must: list[qe.FieldCondition] = [
            qe.FieldCondition("scope", match=qe.MatchAny(scopes(query)))
        ]
        if query.papers is not None:
            must.append(qe.FieldCondition("paper_id", match=qe.MatchAny(list(query.papers))))
        # IDF over the whole workspace: other workspaces never sway a library's ranking.
        params = qe.SearchParams(idf=qe.IdfParams(corpus=_workspace(query.workspace)))
        wanted = [(name, weight, self._query_vector(query, name)) for name, weight in plan]
        requests = [
            qe.QueryRequest(
                limit=candidate_limit(query),
                query=qe.Query.Nearest(vector, using=name),
                filter=qe.Filter(must=list(must)),
                params=params if name == SPARSE else None,
                # Candidates need only their chunk id; full payloads are read for the winners.
                with_payload=["chunk_id"],
            )
            for name, _, vector in wanted
            if vector is not None
        ]
        if not requests:
            return []
        with self._guard("searching"):
            shard = self._open_shard
            results = iter(shard.query_batch(qe.QueryBatchRequest(requests)))
            rankings = []
            for _, weight, vector in wanted:
                points = next(results) if vector is not None else []
                ranked = [(str((p.payload or {})["chunk_id"]), p.score) for p in points]
                rankings.append((ranked, weight))
            best = fuse(rankings, query.k)
            ids: list[qe.PointId] = [point_id(query.workspace, c) for c, _ in best]
            payloads = {
                str(r.payload["chunk_id"]): r.payload
                for r in shard.retrieve(ids, with_payload=True, with_vector=False)
                if r.payload
            }
        return [hit_from_payload(payloads[chunk_id], score) for chunk_id, score in best]

    def _query_vector(self, query: SearchQuery, name: str) -> list[float] | qe.SparseVector | None:
        if name == DENSE:
            check_vectors(query.vector.reshape(1, -1), 1, self.dim)
            return [float(x) for x in query.vector]
        sparse = BM25.embed_query(query.text)
        return sparse if sparse.indices else None

    def delete(self, paper_id: str, *, workspace: str) -> None:
        """Remove every point of a paper in a workspace and flush to disk."""
        flt = qe.Filter(must=[_match("workspace", workspace), _match("paper_id", paper_id)])
        with self._lock, self._guard("deleting a paper"):
            shard = self._open_shard
            shard.update(qe.UpdateOperation.delete_points_by_filter(flt))
            shard.flush()

    def paper_ids(self, workspace: str) -> set[str]:
        """Paper ids that have points in the workspace."""
        limit = 10_000
        with self._guard("listing papers"):
            while True:
                request = qe.FacetRequest(
                    "paper_id", limit=limit, exact=True, filter=_workspace(workspace)
                )
                hits = self._open_shard.facet(request).hits
                if len(hits) < limit:
                    return {str(hit.value) for hit in hits}
                limit *= 10

    def close(self) -> None:
        """Flush and release the folder lock (idempotent)."""
        with self._lock:
            if self._shard is not None:
                shard, self._shard = self._shard, None
                with self._guard("closing the index"):
                    shard.close()

    def __enter__(self) -> EdgeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
