"""What the reader sees of the evidence: word boxes on the page and marked passage HTML.

Two layers on a page: the passage (light) and a found quote (dark). Unverified quotes are never
marked or boxed. All text from the PDF is HTML-escaped, so a paper containing ``<script>``
renders as text.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

from qa_core.models import Box, Chunk, Page, Quote

__all__ = [
    "chunk_boxes",
    "chunk_marks",
    "mark_html",
    "page_highlights",
]


def chunk_boxes(chunk: Chunk, page: Page) -> list[Box]:
    """Boxes of the chunk's words on ``page`` (the light highlight), merged per line."""
    return page.boxes(chunk.spans)


def page_highlights(chunk: Chunk, quote: Quote | None, page: Page) -> tuple[list[Box], list[Box]]:
    """(light, dark) boxes for ``page`` of the chunk's paper: the chunk, and the found quote."""
    dark: list[Box] = []
    if quote is not None and quote.status != "unverified" and quote.paper_id == chunk.paper_id:
        dark = page.boxes(quote.spans)
    return chunk_boxes(chunk, page), dark


def chunk_marks(chunk: Chunk, quotes: Sequence[Quote]) -> list[tuple[int, int]]:
    """Chunk-local ranges of the found quotes that lie in this chunk (never unverified ones)."""
    marks: list[tuple[int, int]] = []
    for q in quotes:
        if q.status == "unverified" or q.paper_id != chunk.paper_id:
            continue
        pieces = [
            (offset + lo - cs.start, offset + hi - cs.start)
            for qs in q.spans
            for offset, cs in zip(chunk.span_offsets(), chunk.spans, strict=True)
            if cs.page == qs.page and (lo := max(qs.start, cs.start)) < (hi := min(qs.end, cs.end))
        ]
        # A quote running from one span into the next also covers the newline joining them.
        marks += _merge(pieces, len(chunk.text), gap=1)
    return _merge(marks, len(chunk.text))


def _merge(ranges: Iterable[tuple[int, int]], size: int, gap: int = 0) -> list[tuple[int, int]]:
    """Sorted, clipped to ``[0, size)``, overlapping (or ``gap`` apart) ranges joined."""
    out: list[tuple[int, int]] = []
    for a, b in sorted((max(0, a), min(size, b)) for a, b in ranges):
        if b <= a:
            continue
        if out and a <= out[-1][1] + gap:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def mark_html(chunk_text: str, marks: Sequence[tuple[int, int]]) -> str:
    """The chunk as escaped HTML with ``<mark>`` around ``marks``; newlines become ``<br>``."""

    def esc(s: str) -> str:
        return html.escape(s).replace("\n", "<br>")

    parts, pos = [], 0
    for a, b in _merge(marks, len(chunk_text)):
        parts += [esc(chunk_text[pos:a]), "<mark>", esc(chunk_text[a:b]), "</mark>"]
        pos = b
    parts.append(esc(chunk_text[pos:]))
    return "".join(parts)
