"""A Qdrant server, cluster or Cloud collection through qdrant-client (or its local mode)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

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

__all__ = ["ServerStore"]

_BATCH = 256  # points per upsert request: keeps requests well under the server's size limit
_META_NAME = "margin_embedding"
_META_DIM = "margin_dim"


def _match(key: str, value: str) -> models.FieldCondition:
    return models.FieldCondition(key=key, match=models.MatchValue(value=value))


def _workspace(workspace: str) -> models.Filter:
    return models.Filter(must=[_match("workspace", workspace)])


class ServerStore:
    """A collection on a Qdrant server; the embedding is recorded in the collection metadata.

    Give ``url`` (and ``api_key``) for a server, ``url=":memory:"`` or ``path`` for
    qdrant-client's local mode, which behaves like a server without one.
    """

    def __init__(
        self,
        collection: str,
        *,
        embedding_name: str,
        dim: int,
        url: str | None = None,
        api_key: str | None = None,
        path: str | os.PathLike[str] | None = None,
    ) -> None:
        if (url is None) == (path is None):
            raise ValueError("give exactly one of url and path")
        self.collection = collection
        self.embedding_name = embedding_name
        self.dim = dim
        self._local = path is not None or url == ":memory:"
        self.exclusive = self._local
        self._where = str(path) if path is not None else str(url)
        self._lock = threading.Lock()
        try:
            if path is not None:
                self._client = QdrantClient(path=str(path))
            elif url == ":memory:":
                self._client = QdrantClient(location=":memory:")
            else:
                # No version probe: an unreachable server should fail once, in _prepare.
                self._client = QdrantClient(
                    url=url, api_key=api_key, timeout=30, check_compatibility=False
                )
        except Exception as exc:  # a malformed URL, an unreadable folder, a held lock
            # Local mode locks its folder; a second process fails to take the lock.
            if "already accessed" in str(exc):
                raise StoreError(locked_message(self._where)) from exc
            raise StoreError(f"Cannot open Qdrant at {self._where}: {exc}.") from exc
        try:
            self._prepare()
        except MarginError:
            self._client.close()
            raise

    def _prepare(self) -> None:
        with self._guard("opening the collection"):
            if self._client.collection_exists(self.collection):
                info = self._client.get_collection(self.collection)
                meta = info.config.metadata or {}
                if _META_NAME not in meta:
                    raise StoreError(
                        f"The collection '{self.collection}' at {self._where} was not created by "
                        "Margin; choose another collection name."
                    )
                check_embedding(
                    str(meta[_META_NAME]), int(meta[_META_DIM]), self.embedding_name, self.dim
                )
                indexed = set(info.payload_schema)
            else:
                self._client.create_collection(
                    self.collection,
                    vectors_config={
                        DENSE: models.VectorParams(size=self.dim, distance=models.Distance.COSINE)
                    },
                    sparse_vectors_config={
                        SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)
                    },
                    metadata={_META_NAME: self.embedding_name, _META_DIM: self.dim},
                )
                indexed = set()
            if self._local:  # local mode ignores payload indexes (and warns about them)
                return
            indexes: dict[str, models.PayloadSchemaType | models.KeywordIndexParams] = {
                "workspace": models.KeywordIndexParams(
                    type=models.KeywordIndexType.KEYWORD, is_tenant=True
                ),
                "scope": models.PayloadSchemaType.KEYWORD,
                "paper_id": models.PayloadSchemaType.KEYWORD,
            }
            for field, schema in indexes.items():
                if field not in indexed:
                    self._client.create_payload_index(self.collection, field, schema, wait=True)

    def _reading(self) -> AbstractContextManager[object]:
        """Local mode is not thread-safe, so there reads wait for writes; a server needs no lock."""
        return self._lock if self._local else nullcontext()

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        """Turn client exceptions into one sentence for the user."""
        try:
            yield
        except MarginError:
            raise
        except ResponseHandlingException as exc:
            raise StoreError(f"Cannot reach the Qdrant server at {self._where}: {exc}.") from exc
        except UnexpectedResponse as exc:
            if exc.status_code in (401, 403):
                raise StoreError(
                    f"The Qdrant server at {self._where} refused the API key "
                    f"(HTTP {exc.status_code}); check QDRANT_API_KEY."
                ) from exc
            raise StoreError(
                f"The Qdrant server at {self._where} failed while {action} "
                f"(HTTP {exc.status_code}): {exc.content.decode(errors='replace')[:300]}."
            ) from exc
        except Exception as exc:
            raise StoreError(f"Qdrant at {self._where} failed while {action}: {exc}.") from exc

    # -- VectorStore ---------------------------------------------------------------------

    def add(self, chunks: Sequence[Chunk], vectors: Vectors, *, workspace: str, title: str) -> None:
        """Write the chunks of one paper (same chunk ids overwrite); returns once stored."""
        check_vectors(vectors, len(chunks), self.dim)
        points = []
        for chunk, vector in zip(chunks, vectors, strict=True):
            sparse = BM25.embed_document(chunk.text)
            points.append(
                models.PointStruct(
                    id=point_id(workspace, chunk.chunk_id),
                    vector={
                        DENSE: vector.tolist(),
                        SPARSE: models.SparseVector(indices=sparse.indices, values=sparse.values),
                    },
                    payload=to_payload(chunk, workspace=workspace, title=title),
                )
            )
        with self._lock, self._guard("writing chunks"):
            for start in range(0, len(points), _BATCH):
                batch = points[start : start + _BATCH]
                self._client.upsert(self.collection, batch, wait=True)

    def search(self, query: SearchQuery) -> list[Hit]:
        """Best hits first; hybrid fuses the dense and BM25 lists client-side."""
        if query.papers is not None and not query.papers:
            return []
        plan = retrievers(query)
        must: list[models.Condition] = [
            models.FieldCondition(key="scope", match=models.MatchAny(any=scopes(query)))
        ]
        if query.papers is not None:
            must.append(
                models.FieldCondition(key="paper_id", match=models.MatchAny(any=list(query.papers)))
            )
        # IDF over the whole workspace: other workspaces never sway a library's ranking.
        params = models.SearchParams(idf=models.IdfCorpusParams(corpus=_workspace(query.workspace)))
        wanted = [(name, weight, self._query_vector(query, name)) for name, weight in plan]
        requests = [
            models.QueryRequest(
                query=vector,
                using=name,
                filter=models.Filter(must=must),
                params=params if name == SPARSE else None,
                limit=candidate_limit(query),
                # Full payloads in the one round trip: cheaper than a second request.
                with_payload=True,
            )
            for name, _, vector in wanted
            if vector is not None
        ]
        if not requests:
            return []
        with self._reading(), self._guard("searching"):
            results = iter(self._client.query_batch_points(self.collection, requests))
        payloads: dict[str, dict[str, Any]] = {}
        rankings = []
        for _, weight, vector in wanted:
            points = next(results).points if vector is not None else []
            for point in points:
                payloads[str((point.payload or {})["chunk_id"])] = point.payload or {}
            ranked = [(str((p.payload or {})["chunk_id"]), p.score) for p in points]
            rankings.append((ranked, weight))
        best = fuse(rankings, query.k)
        return [hit_from_payload(payloads[chunk_id], score) for chunk_id, score in best]

    def _query_vector(
        self, query: SearchQuery, name: str
    ) -> list[float] | models.SparseVector | None:
        if name == DENSE:
            check_vectors(query.vector.reshape(1, -1), 1, self.dim)
            return [float(x) for x in query.vector]
        sparse = BM25.embed_query(query.text)
        if not sparse.indices:
            return None
        return models.SparseVector(indices=sparse.indices, values=sparse.values)

    def delete(self, paper_id: str, *, workspace: str) -> None:
        """Remove every point of a paper in a workspace; returns once applied."""
        flt = models.Filter(must=[_match("workspace", workspace), _match("paper_id", paper_id)])
        with self._lock, self._guard("deleting a paper"):
            self._client.delete(self.collection, models.FilterSelector(filter=flt), wait=True)

    def paper_ids(self, workspace: str) -> set[str]:
        """Paper ids that have points in the workspace."""
        limit = 10_000
        with self._reading(), self._guard("listing papers"):
            while True:
                hits = self._client.facet(
                    self.collection,
                    "paper_id",
                    facet_filter=_workspace(workspace),
                    limit=limit,
                    exact=True,
                ).hits
                if len(hits) < limit:
                    return {str(hit.value) for hit in hits}
                limit *= 10

    def close(self) -> None:
        """Close the client (releases local mode's folder lock)."""
        with self._lock, self._guard("closing the connection"):
            self._client.close()

    def __enter__(self) -> ServerStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
