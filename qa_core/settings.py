"""One settings class. Every field says what it does; env vars follow each ecosystem.

``OPENAI_API_KEY`` / ``OPENAI_BASE_URL`` configure the chat endpoint (any OpenAI-compatible
server), ``QDRANT_URL`` / ``QDRANT_API_KEY`` switch from the embedded store to a Qdrant server;
everything else is ``MARGIN_*``. On Streamlit Community Cloud the app passes ``st.secrets`` in as
keyword arguments, which take precedence over the environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "default_data_dir"]


def default_data_dir() -> Path:
    """A per-user data folder (``$XDG_DATA_HOME/margin``, else ``~/.local/share/margin``)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "margin"


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Settings(BaseSettings):
    """Margin's configuration."""

    model_config = SettingsConfigDict(
        env_prefix="MARGIN_", extra="ignore", populate_by_name=True, frozen=True
    )

    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Folder for the library, stored PDFs, templates and the embedded index.",
    )
    embedding: str = Field(
        "local:e5-small",
        description="Embedding model: 'local:e5-small' (bundled, offline) or "
        "'openai:<model>' (the OpenAI-compatible embeddings endpoint).",
    )
    qdrant_url: str | None = Field(
        None,
        validation_alias=_env("QDRANT_URL", "qdrant_url"),
        description="Qdrant server or cluster URL; unset means the embedded store in data_dir. "
        "':memory:' or a path starting with 'local:' uses qdrant-client's local mode.",
    )
    qdrant_api_key: SecretStr | None = Field(
        None,
        validation_alias=_env("QDRANT_API_KEY", "qdrant_api_key"),
        description="API key for the Qdrant server (Qdrant Cloud).",
    )
    collection: str = Field("margin", description="Collection name on a Qdrant server.")
    openai_api_key: SecretStr | None = Field(
        None,
        validation_alias=_env("OPENAI_API_KEY", "openai_api_key"),
        description="API key of the chat endpoint (not needed for Ollama/vLLM on localhost).",
    )
    openai_base_url: str | None = Field(
        None,
        validation_alias=_env("OPENAI_BASE_URL", "openai_base_url"),
        description="OpenAI-compatible endpoint, e.g. http://localhost:11434/v1 for Ollama.",
    )
    chat_model: str | None = Field(
        None,
        description="Chat model name. Required with OPENAI_BASE_URL; defaults to gpt-4o-mini "
        "when only OPENAI_API_KEY is set.",
    )
    temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature.")
    context_window: int = Field(
        16384, ge=512, description="The chat model's context window, in tokens."
    )
    answer_tokens: int = Field(
        1024, ge=16, description="Tokens reserved for the answer (max_tokens of the request)."
    )
    encoding: str = Field(
        "auto",
        description="tiktoken encoding for counting: 'auto' (o200k_base for gpt-4o/4.1/5 and "
        "o-series, else cl100k_base), 'o200k_base' or 'cl100k_base'.",
    )
    request_timeout: float = Field(60.0, gt=0, description="Seconds before an LLM call fails.")
    max_retries: int = Field(3, ge=0, le=10, description="Retries on 429/5xx, with backoff.")
    # 300/0 had the best recall on QASPER dev among 128/200/300 x 0/40 (docs/benchmarks.md).
    chunk_tokens: int = Field(300, ge=32, le=2000, description="Chunk size in tokens.")
    chunk_overlap: int = Field(0, ge=0, le=500, description="Tokens shared by adjacent chunks.")
    top_k: int = Field(8, ge=1, le=100, description="Passages retrieved per question.")
    dense_weight: float = Field(2.0, ge=0, description="Weight of dense retrieval in RRF.")
    sparse_weight: float = Field(1.0, ge=0, description="Weight of BM25 retrieval in RRF.")
    include_back_matter: bool = Field(
        False, description="Also retrieve from references and acknowledgements."
    )
    public: bool = Field(
        False,
        description="Public deployment: every browser session gets its own private workspace.",
    )

    def llm_configured(self) -> bool:
        """Whether a chat endpoint is configured (else answers are extractive)."""
        return bool(self.openai_base_url or self.openai_api_key or self.chat_model)

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> Settings:
        """Settings from e.g. ``st.secrets``: known keys only, any case."""
        fields = {name.lower() for name in cls.model_fields}
        aliases = {"openai_api_key", "openai_base_url", "qdrant_url", "qdrant_api_key"}
        picked = {
            key.lower().removeprefix("margin_"): value
            for key, value in values.items()
            if key.lower().removeprefix("margin_") in fields | aliases
        }
        return cls(**picked)
