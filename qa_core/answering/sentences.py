"""Sentences of the passages: extractive answers (no LLM) and alignment of quote-free answers."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from qa_core.answering.evidence import Finder, Pages
from qa_core.answering.normalize import MIN_QUOTE_CHARS, quote_key
from qa_core.models import Context, Quote, QuoteCandidate, Span

__all__ = ["align", "extractive"]

_MAX_SENTENCES = 64  # sentences embedded per answer (best-ranked contexts first): bounds latency
Embed = Callable[[Sequence[str]], npt.ArrayLike]
_ABBREV = re.compile(
    r"\b(?:e\.g|i\.e|et al|fig|figs|eq|eqs|sec|tab|ref|refs|cf|vs|approx|resp|vol|pp|dr|prof"
    r"|incl|[a-z])\.$",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"([.!?][\"')\]]*)\s+(?=[\"'(\[]?[A-Z0-9])|\n\s*\n")
_HYPHEN_BREAK = re.compile(r"(?<=[^\W\d_])-\n(?=[^\W\d_])")


def _sentences(text: str) -> list[tuple[int, int]]:
    """Sentence ranges; no split after e.g., et al., Fig., initials, or inside decimals."""
    out, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        if m.group().startswith(".") and _ABBREV.search(text, max(0, m.start() - 8), m.start() + 1):
            continue
        out.append((start, m.end(1) if m.group(1) else m.start()))
        start = m.end()
    out.append((start, len(text)))
    trimmed = []
    for a, b in out:
        piece = text[a:b]
        a += len(piece) - len(piece.lstrip())
        b -= len(piece) - len(piece.rstrip())
        long_enough = len(quote_key(text[a:b], loose=False)) >= MIN_QUOTE_CHARS
        if len(text[a:b].split()) >= 3 and long_enough:
            trimmed.append((a, b))
    return trimmed


def _display(text: str) -> str:
    return " ".join(_HYPHEN_BREAK.sub("", text).split())


@dataclass(frozen=True, slots=True)
class _Sentence:
    ctx: Context
    start: int  # in the chunk's text
    end: int
    text: str


def _source_sentences(contexts: Sequence[Context]) -> list[_Sentence]:
    """The contexts' sentences in context order, each once (overlapping chunks repeat them)."""
    out, seen = [], set()
    for ctx in contexts:
        text = ctx.hit.chunk.text
        for a, b in _sentences(text):
            key = (ctx.hit.chunk.paper_id, quote_key(text[a:b]))
            if key not in seen:
                seen.add(key)
                out.append(_Sentence(ctx, a, b, _display(text[a:b])))
    return out[:_MAX_SENTENCES]


def extractive(
    question_vector: npt.ArrayLike,
    contexts: Sequence[Context],
    pages: Pages,
    embed: Embed,
    *,
    max_sentences: int = 5,
) -> list[Quote]:
    """The passages' sentences closest to the question, as verified quotes with their boxes."""
    sentences = _source_sentences(contexts)
    if not sentences or max_sentences <= 0:
        return []
    vectors = np.asarray(embed([s.text for s in sentences]), dtype=np.float32)
    scores = vectors @ np.asarray(question_vector, dtype=np.float32).ravel()
    finder = Finder(contexts, pages)
    out = []
    for i in np.argsort(-scores, kind="stable")[:max_sentences]:
        s = sentences[int(i)]
        chunk = s.ctx.hit.chunk
        spans = []
        for offset, cs in zip(chunk.span_offsets(), chunk.spans, strict=True):
            lo = max(s.start, offset)
            hi = min(s.end, offset + cs.end - cs.start)
            if hi > lo:
                spans.append(Span(cs.page, cs.start + lo - offset, cs.start + hi - offset))
        out.append(
            finder.found(QuoteCandidate(s.text, s.ctx.n), s.ctx, chunk.paper_id, tuple(spans))
        )
    return out


def align(body: str, contexts: Sequence[Context], *, max_quotes: int = 5) -> list[QuoteCandidate]:
    """For an answer without quotes: the source sentence that best supports each claim.

    Lexical on purpose (fast, and models reuse the source's words): each answer sentence is
    paired with the passage sentence sharing the most content words, weighted by how rare each
    word is among the passages; at least two shared words are required.
    """
    claims = [_display(body[a:b]) for a, b in _sentences(body)][:12]
    sources = _source_sentences(contexts)
    words = [_content_words(s.text) for s in sources]
    df = Counter(w for ws in words for w in ws)
    out: list[QuoteCandidate] = []
    for claim in claims:
        wanted = _content_words(claim)
        best, best_score = None, 0.0
        for source, have in zip(sources, words, strict=True):
            shared = wanted & have
            score = sum(math.log1p(len(sources) / df[w]) for w in shared)
            if len(shared) >= 2 and score > best_score:
                best, best_score = source, score
        if best is not None:
            cand = QuoteCandidate(best.text, best.ctx.n)
            if cand not in out:
                out.append(cand)
    return out[:max_quotes]


# Words of five letters or more, and numbers: what a claim and its source sentence share.
_WORD = re.compile(r"[^\W\d_]{5,}|\d[\d.,]*")


def _content_words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))
