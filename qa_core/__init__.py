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

if TYPE_CHECKING:  # redundant aliases: explicit re-exports for type checkers
    from qa_core.errors import ConfigError as ConfigError
    from qa_core.errors import EmbeddingMismatch as EmbeddingMismatch
    from qa_core.errors import LLMError as LLMError
    from qa_core.errors import MarginError as MarginError
    from qa_core.errors import PdfError as PdfError
    from qa_core.errors import PromptTooLong as PromptTooLong
    from qa_core.errors import StoreError as StoreError
    from qa_core.errors import TemplateError as TemplateError
    from qa_core.ingest.library import IngestResult as IngestResult
    from qa_core.models import Answer as Answer
    from qa_core.models import Chunk as Chunk
    from qa_core.models import Context as Context
    from qa_core.models import Document as Document
    from qa_core.models import Hit as Hit
    from qa_core.models import Page as Page
    from qa_core.models import Paper as Paper
    from qa_core.models import Quote as Quote
    from qa_core.service import Service as Service
    from qa_core.service import build as build
    from qa_core.settings import Settings as Settings

# The one list of public names: name -> the module that defines it (imported on first use).
# The TYPE_CHECKING imports above say the same for type checkers; tests/test_public_api.py
# keeps the two, and __all__, in step.
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
    **dict.fromkeys(["Service", "build"], "qa_core.service"),
    "Settings": "qa_core.settings",
}

__all__ = sorted([*_LAZY, "ask"])


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
