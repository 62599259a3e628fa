"""Margin's library: papers in, answers with verified evidence out.

>>> import qa_core
>>> svc = qa_core.build()                      # embedded Qdrant + bundled embedder
>>> svc.ingest(open("paper.pdf", "rb").read(), "paper.pdf")
>>> answer = qa_core.ask("Which frameworks are used?")

Names are imported lazily so ``import qa_core`` stays cheap (the app's cold start).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qa_core.errors import (
        ConfigError,
        EmbeddingMismatch,
        LLMError,
        MarginError,
        PdfError,
        PromptTooLong,
        StoreError,
        TemplateError,
    )
    from qa_core.ingest.library import IngestResult
    from qa_core.models import Answer, Chunk, Context, Document, Hit, Page, Paper, Quote
    from qa_core.service import Service, build
    from qa_core.settings import Settings

_LAZY = {
    **dict.fromkeys(
        [
            "ConfigError",
            "EmbeddingMismatch",
            "LLMError",
            "MarginError",
            "PdfError",
            "PromptTooLong",
            "StoreError",
            "TemplateError",
        ],
        "qa_core.errors",
    ),
    "IngestResult": "qa_core.ingest.library",
    **dict.fromkeys(
        ["Answer", "Chunk", "Context", "Document", "Hit", "Page", "Paper", "Quote"],
        "qa_core.models",
    ),
    "Service": "qa_core.service",
    "build": "qa_core.service",
    "Settings": "qa_core.settings",
}

__all__ = [
    "Answer",
    "Chunk",
    "ConfigError",
    "Context",
    "Document",
    "EmbeddingMismatch",
    "Hit",
    "IngestResult",
    "LLMError",
    "MarginError",
    "Page",
    "Paper",
    "PdfError",
    "PromptTooLong",
    "Quote",
    "Service",
    "Settings",
    "StoreError",
    "TemplateError",
    "ask",
    "build",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'qa_core' has no attribute {name!r}")


_default: Service | None = None


def ask(
    question: str,
    papers: Sequence[str] | None = None,
    template: str | None = None,
    model: str | None = None,
) -> Answer:
    """Answer a question from the default library (built from the environment on first use)."""
    global _default
    if _default is None:
        from qa_core.service import build

        _default = build()
    return _default.ask(question, papers=papers, template=template, model=model)
