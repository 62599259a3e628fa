"""Domain types. Every piece of text carries its provenance: paper, page, character offsets.

Coordinates are PDF points with a top-left origin (PyMuPDF's convention). Page numbers are
1-based everywhere outside :mod:`qa_core.ingest.pdf`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "Answer",
    "Box",
    "Chunk",
    "Context",
    "Document",
    "Hit",
    "Page",
    "Paper",
    "Quote",
    "Section",
    "Span",
    "Word",
]

Box = tuple[float, float, float, float]
"""(x0, y0, x1, y1) in PDF points, top-left origin."""


@dataclass(frozen=True, slots=True)
class Word:
    """One word on a page: its box and where it sits in :attr:`Page.text`."""

    box: Box
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Page:
    """One page's text, built from its words so every character maps back to a box.

    Words on a line are joined by a space, lines by ``\\n``, blocks by ``\\n\\n``.
    """

    number: int  # 1-based
    text: str
    width: float
    height: float
    words: tuple[Word, ...]


@dataclass(frozen=True, slots=True)
class Section:
    """A heading and where its body starts (page number, offset into that page's text)."""

    title: str
    page: int
    start: int
    back_matter: bool = False  # references, bibliography, acknowledgements


@dataclass(frozen=True, slots=True)
class Document:
    """A parsed PDF."""

    title: str
    pages: tuple[Page, ...]
    sections: tuple[Section, ...] = ()
    warnings: tuple[str, ...] = ()
    doi: str | None = None


@dataclass(frozen=True, slots=True)
class Span:
    """A run of a page's text: ``page.text[start:end]``."""

    page: int
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Chunk:
    """A retrievable passage. ``text`` is its spans' page texts joined by ``\\n``."""

    paper_id: str
    chunk_id: str
    index: int
    text: str
    spans: tuple[Span, ...]
    section: str = ""
    back_matter: bool = False

    @property
    def page_start(self) -> int:
        return self.spans[0].page

    @property
    def page_end(self) -> int:
        return self.spans[-1].page


@dataclass(frozen=True, slots=True)
class Hit:
    """A chunk returned by search, with its fused score and its paper's title."""

    chunk: Chunk
    score: float
    title: str = ""


@dataclass(frozen=True, slots=True)
class Paper:
    """A paper in the library."""

    paper_id: str
    title: str
    file: str
    pages: int
    chunks: int
    added: str  # ISO 8601, UTC
    doi: str | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Context:
    """A numbered passage as it was given to the model (``[n]`` in the prompt)."""

    n: int
    hit: Hit


QuoteStatus = Literal["verified", "misattributed", "unverified"]
AnswerStatus = Literal["answered", "not_reported", "not_found", "extractive", "error"]


@dataclass(frozen=True, slots=True)
class Quote:
    """A span the answer claims comes from the paper, and what checking it found."""

    text: str
    context_n: int | None  # the [n] the answer cites it with, if any
    status: QuoteStatus
    paper_id: str | None = None
    page: int | None = None  # where the quote really is (1-based), when found
    boxes: tuple[Box, ...] = ()
    found_in: int | None = None  # the context it was actually found in
    spans: tuple[Span, ...] = ()  # page-text ranges of the match (may cross pages)


@dataclass(slots=True)
class Answer:
    """The result of one question."""

    question: str
    answer: str
    status: AnswerStatus
    model: str | None
    template_name: str
    template_hash: str
    prompt: str
    contexts: list[Context] = field(default_factory=list)
    quotes: list[Quote] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    notice: str = ""
