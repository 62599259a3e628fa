"""Domain types. Every piece of text carries its provenance: paper, page, character offsets.

Coordinates are PDF points with a top-left origin (PyMuPDF's convention). Page numbers are
1-based everywhere outside :mod:`qa_core.ingest.pdf`.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import attrgetter
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

    def boxes(self, spans: Iterable[Span]) -> list[Box]:
        """Boxes of this page's words overlapping ``spans``, one box per run on a line."""
        words = self.words
        picked: dict[int, None] = {}
        for s in spans:
            if s.page != self.number:
                continue
            i = bisect_right(words, s.start, key=attrgetter("end"))  # first word ending after start
            while i < len(words) and words[i].start < s.end:
                picked[i] = None
                i += 1
        boxes: list[Box] = []
        prev = None
        for i in sorted(picked):
            w = words[i]
            if (
                prev is not None
                and prev == i - 1
                and "\n" not in self.text[words[prev].end : w.start]
            ):
                x0, y0, x1, y1 = boxes[-1]
                overlap = min(y1, w.box[3]) - max(y0, w.box[1])
                if overlap > 0.5 * min(y1 - y0, w.box[3] - w.box[1]):
                    boxes[-1] = (
                        min(x0, w.box[0]),
                        min(y0, w.box[1]),
                        max(x1, w.box[2]),
                        max(y1, w.box[3]),
                    )
                    prev = i
                    continue
            boxes.append(w.box)
            prev = i
        return boxes


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

    def span_offsets(self) -> list[int]:
        """Where each span starts in :attr:`text` (spans are joined by one newline)."""
        out, pos = [], 0
        for s in self.spans:
            out.append(pos)
            pos += s.end - s.start + 1
        return out

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
class QuoteCandidate:
    """A quoted span of an answer and the ``[n]`` it cites (None when uncited)."""

    text: str
    context_n: int | None


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
