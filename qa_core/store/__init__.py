"""Where chunks and their vectors live: the embedded engine or a Qdrant server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qa_core.settings import Settings
from qa_core.store.base import SearchQuery, VectorStore
from qa_core.store.edge import EdgeStore

if TYPE_CHECKING:
    from qa_core.store.server import ServerStore

__all__ = ["EdgeStore", "SearchQuery", "ServerStore", "VectorStore", "open_store"]


def __getattr__(name: str) -> Any:
    # qdrant-client costs ~0.7 s to import and only server mode needs it: load it on demand.
    if name == "ServerStore":
        from qa_core.store.server import ServerStore

        return ServerStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_store(settings: Settings, embedding_name: str, dim: int) -> VectorStore:
    """The store ``settings`` point at, checked against the embedding it must have been built with.

    ``QDRANT_URL`` unset: the embedded engine in ``data_dir/qdrant``; ``:memory:`` or
    ``local:<path>``: qdrant-client's local mode; anything else: a Qdrant server.
    """
    url = settings.qdrant_url
    if not url:
        return EdgeStore(settings.data_dir / "qdrant", embedding_name=embedding_name, dim=dim)
    from qa_core.store.server import ServerStore

    if url.startswith("local:"):
        path = url.removeprefix("local:")
        return ServerStore(settings.collection, embedding_name=embedding_name, dim=dim, path=path)
    key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
    return ServerStore(
        settings.collection, embedding_name=embedding_name, dim=dim, url=url, api_key=key
    )
