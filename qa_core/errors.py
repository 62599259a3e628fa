"""Errors whose messages are written for the person using Margin.

Every error raised across the public API is a :class:`MarginError`; its ``str()`` is one
sentence that says what went wrong and, where there is one, what to do about it. The CLI and
the app print that sentence and nothing else (no traceback).

The tree::

    Exception
    ├── MarginError                 every error a user can see
    │   ├── ConfigError             a setting is missing or contradicts another
    │   ├── PdfError                a PDF could not be read
    │   │   ├── NotAPdf
    │   │   ├── EncryptedPdf
    │   │   ├── ImageOnlyPdf
    │   │   └── DamagedPdf
    │   ├── StoreError              the vector store failed
    │   │   └── EmbeddingMismatch
    │   ├── PaperNotFound
    │   ├── DuplicatePaper          carries the existing paper's id
    │   ├── TemplateError           an instruction template is invalid
    │   ├── DatasetError            evaluation data missing or malformed
    │   └── LLMError                an endpoint failed; ``kind`` says why
    │       └── PromptTooLong
    └── BadReply                    internal: an endpoint's reply has the wrong shape (becomes
                                    an LLMError before it reaches anyone)
"""

from __future__ import annotations

__all__ = [
    "BadReply",
    "ConfigError",
    "DamagedPdf",
    "DatasetError",
    "DuplicatePaper",
    "EmbeddingMismatch",
    "EncryptedPdf",
    "ImageOnlyPdf",
    "LLMError",
    "MarginError",
    "NotAPdf",
    "PaperNotFound",
    "PdfError",
    "PromptTooLong",
    "StoreError",
    "TemplateError",
]


class MarginError(Exception):
    """Base class: the message is a complete sentence meant for the user."""


class ConfigError(MarginError):
    """A setting is missing or contradicts another one."""


class PdfError(MarginError):
    """A PDF could not be read (the subclass says why)."""


class NotAPdf(PdfError):
    """The file is not a PDF at all."""


class EncryptedPdf(PdfError):
    """The PDF needs a password that was not given (or was wrong)."""


class ImageOnlyPdf(PdfError):
    """The PDF has no text layer: nothing to index without OCR."""


class DamagedPdf(PdfError):
    """The PDF is truncated or damaged beyond what can usefully be indexed."""


class StoreError(MarginError):
    """The vector store could not be opened, read or written."""


class EmbeddingMismatch(StoreError):
    """The index was built with another embedding model than the one configured."""


class PaperNotFound(MarginError):
    """No paper with that id is in the library."""


class DuplicatePaper(MarginError):
    """The same file (by content) is already in the library."""

    def __init__(self, message: str, paper_id: str) -> None:
        super().__init__(message)
        self.paper_id = paper_id


class TemplateError(MarginError):
    """An instruction template is invalid; the message names the problem."""


class DatasetError(MarginError):
    """The evaluation data is missing or not in the expected format."""


class LLMError(MarginError):
    """The chat or embedding endpoint failed; the message names the cause."""

    def __init__(self, message: str, kind: str = "error") -> None:
        super().__init__(message)
        #: machine-readable cause: auth, model, unreachable, timeout, too_long, rate_limited,
        #: server, bad_reply or error
        self.kind = kind


class PromptTooLong(LLMError):
    """Even the smallest prompt would not fit the model's context window."""

    def __init__(self, message: str) -> None:
        super().__init__(message, kind="too_long")


class BadReply(Exception):
    """The reply parsed but does not have the shape of an OpenAI answer (internal)."""
