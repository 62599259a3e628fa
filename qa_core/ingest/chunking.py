"""Token-sized, sentence-aligned chunks that remember exactly where their text came from.

A chunk never crosses a section heading (so each has one section, and back matter stays
separate), packs whole sentences up to ``size`` tokens, and starts with the last sentences of
the previous chunk up to ``overlap`` tokens. A sentence longer than ``size`` is cut at word
boundaries. Each chunk keeps its page-text spans, so any character of it maps back to a box.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from dataclasses import dataclass

from qa_core.models import Chunk, Document, Section, Span
from qa_core.tokens import get_encoding

__all__ = ["embedding_text", "split"]

# A sentence ends at . ! ? (optionally followed by a closing quote/bracket) before whitespace
# and an upper-case letter, digit or opening bracket; or at a blank line (block break).
_BOUNDARY = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[A-Z0-9(\[])|\n\s*\n")
_NO_SPLIT_BEFORE = re.compile(
    r"(?:\b(?:e\.g|i\.e|et\s+al|etc|Fig|Figs|Eq|Eqs|Tab|Sec|vs|cf|approx|resp|No|Vol|pp|Dr|Mr|Ms)"
    r"|\b[A-Z])\.$"
)
_LONE_HEADING = 8  # tokens: a section holding less than this is just its heading


@dataclass(frozen=True, slots=True)
class _Sentence:
    page: int
    start: int
    end: int
    tokens: int
    section: int  # index into the document's sections, -1 before the first heading


def _sentence_ranges(text: str) -> Iterator[tuple[int, int]]:
    start = 0
    for match in _BOUNDARY.finditer(text):
        end = match.start()
        if _NO_SPLIT_BEFORE.search(text[max(start, end - 10) : end]):
            continue
        if text[start:end].strip():
            yield start, end
        start = match.end()
    if text[start:].strip():
        yield start, len(text)


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _sentences(doc: Document, max_tokens: int) -> list[_Sentence]:
    enc = get_encoding("cl100k_base")
    keys = [(s.page, s.start) for s in doc.sections]
    out: list[_Sentence] = []
    for page in doc.pages:
        # Section starts on this page cut sentences too, so no sentence straddles a heading.
        cuts = sorted(s.start for s in doc.sections if s.page == page.number)
        pieces: list[tuple[int, int]] = []
        for a, b in _sentence_ranges(page.text):
            for cut in cuts:
                if a < cut < b:
                    pieces.append((a, cut))
                    a = cut
            pieces.append((a, b))
        for a, b in pieces:
            a, b = _trim(page.text, a, b)
            if a >= b:
                continue
            section = bisect.bisect_right(keys, (page.number, a)) - 1
            n = len(enc.encode(page.text[a:b], disallowed_special=()))
            if n <= max_tokens:
                out.append(_Sentence(page.number, a, b, n, section))
                continue
            # Over-long "sentence" (tables, reference lists): cut at word boundaries.
            group_start = group_end = -1
            used = 0
            for m in re.finditer(r"\S+", page.text[a:b]):
                cost = len(enc.encode(" " + m.group(), disallowed_special=()))
                if group_start >= 0 and used + cost > max_tokens:
                    out.append(_Sentence(page.number, group_start, group_end, used, section))
                    group_start, used = -1, 0
                if group_start < 0:
                    group_start = a + m.start()
                group_end = a + m.end()
                used += cost
            if group_start >= 0:
                out.append(_Sentence(page.number, group_start, group_end, used, section))
    return out


def _spans(sentences: list[_Sentence]) -> tuple[Span, ...]:
    spans: list[Span] = []
    for s in sentences:
        if spans and spans[-1].page == s.page:
            spans[-1] = Span(s.page, spans[-1].start, s.end)
        else:
            spans.append(Span(s.page, s.start, s.end))
    return tuple(spans)


def split(doc: Document, paper_id: str, *, size: int, overlap: int) -> list[Chunk]:
    """Cut ``doc`` into chunks of at most ``size`` tokens (cl100k_base) with ``overlap``."""
    if overlap >= size:
        raise ValueError("overlap must be smaller than the chunk size")
    sentences = _sentences(doc, size)
    sections: tuple[Section, ...] = doc.sections
    texts = {p.number: p.text for p in doc.pages}
    chunks: list[Chunk] = []

    def emit(group: list[_Sentence]) -> None:
        spans = _spans(group)
        sec = sections[group[-1].section] if group[-1].section >= 0 else None
        chunks.append(
            Chunk(
                paper_id=paper_id,
                chunk_id=f"{paper_id}:{len(chunks)}",
                index=len(chunks),
                text="\n".join(texts[s.page][s.start : s.end] for s in spans),
                spans=spans,
                section=sec.title if sec else "",
                back_matter=sec.back_matter if sec else False,
            )
        )

    group: list[_Sentence] = []
    tokens = 0
    fresh = 0  # sentences in `group` not already emitted in an earlier chunk
    for sentence in sentences:
        new_section = bool(group) and sentence.section != group[-1].section
        if new_section and fresh == len(group) and tokens < _LONE_HEADING:
            # Only a heading so far (e.g. "2 Methods" right before "2.1 Data"): carry it on.
            pass
        elif group and (new_section or tokens + sentence.tokens > size):
            if fresh:
                emit(group)
            if new_section:
                group, tokens = [], 0
            else:
                # Carry the tail of this chunk into the next one as overlap.
                keep: list[_Sentence] = []
                kept = 0
                for prev in reversed(group):
                    if kept + prev.tokens > overlap or kept + prev.tokens + sentence.tokens > size:
                        break
                    keep.insert(0, prev)
                    kept += prev.tokens
                group, tokens = keep, kept
            fresh = 0
        group.append(sentence)
        tokens += sentence.tokens
        fresh += 1
    if group and fresh:
        emit(group)
    return chunks


def embedding_text(chunk: Chunk) -> str:
    """What the embedder sees for a chunk: its section heading, then its text.

    The heading names the topic ("Data augmentation") that the passage itself rarely repeats.
    """
    return f"{chunk.section}\n{chunk.text}" if chunk.section else chunk.text
