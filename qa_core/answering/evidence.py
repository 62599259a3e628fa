"""Check every quote against the PDF page text and find where it sits on the page.

Matching happens in normalised space (:mod:`qa_core.answering.normalize`): NFKC, straight
quotes, one dash, joined hyphenation, single spaces, lower case. A quote is *found* in a stretch
of text when one contiguous piece of it covering at least 85% of the normalised quote occurs
there, and every
number in the quote appears identically in the text at that place ("0.025" never matches
"0.0025"). Quotes shorter than :data:`MIN_QUOTE_CHARS` normalised characters are ignored.

Where a quote is searched, and who it belongs to:

1. Each context's *region* is its chunk's pages plus one page either side, joined by ``\\n`` so a
   quote crossing a page break is found. The cited context's region is searched first, then the
   others in the order given.
2. A match *belongs* to the first context (cited first) whose chunk spans, widened by
   :data:`MARGIN` characters, contain it; the first match that belongs to a chunk wins.
3. A match inside no chunk (on a region's page, outside every passage the model saw) belongs
   to the context whose region it was found in; only used when no chunk contains the quote.
4. Belongs to the cited context, or uncited: ``verified``; belongs to another context:
   ``misattributed`` (``found_in`` names it); not found: ``unverified`` (no page, no boxes).

``Quote.page`` is the page where the match starts and ``Quote.boxes`` are the merged word boxes
on that page only; ``Quote.spans`` hold every matched page range, so :func:`page_highlights`
draws the rest of a quote that continues on the next page.
"""

from __future__ import annotations

import re
import unicodedata
from array import array
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from qa_core.answering.normalize import MIN_QUOTE_CHARS, page_norm, quote_key
from qa_core.models import Chunk, Context, Page, Quote, QuoteCandidate, Span

__all__ = ["MARGIN", "Finder", "Pages", "verify"]

MARGIN = 40  # characters a match may stick out of a chunk span (word cut at a chunk edge)
_COVER = 85  # per cent of the normalised quote one contiguous match must cover
_MAX_HITS = 32  # occurrences examined per region; more means the quote is boilerplate
Pages = Callable[[str], Sequence[Page]]

_NUMBER = re.compile(
    r"(?<![\w.])[-+]?(?:\d+(?:,\d{3}(?!\d))*(?:\.\d+)?|\.\d+)(?:e[-+]?\d+)?(?: ?%)?"
)
# -- matching ---------------------------------------------------------------------------------


def _matches(q: str, r: str) -> list[tuple[int, int, int, int]]:
    """Contiguous matches ``(r_start, r_end, q_start, q_end)`` covering enough of ``q``."""
    found: list[tuple[int, int, int, int]] = []
    i = r.find(q)
    while i >= 0 and len(found) < _MAX_HITS:
        found.append((i, i + len(q), 0, len(q)))
        i = r.find(q, i + 1)
    if found:
        return found
    need = -(-_COVER * len(q) // 100)
    # Any common piece at least `need` long contains q[len(q) - need : need]: search for that
    # exactly (fast, in C), then grow each hit outwards character by character.
    qs, qe = len(q) - need, need
    core = q[qs:qe]
    i = r.find(core)
    while i >= 0 and len(found) < _MAX_HITS:
        left = 0
        while left < qs and left < i and r[i - left - 1] == q[qs - left - 1]:
            left += 1
        right, j = 0, i + len(core)
        while qe + right < len(q) and j + right < len(r) and r[j + right] == q[qe + right]:
            right += 1
        if left + len(core) + right >= need:
            found.append((i - left, j + right, qs - left, qe + right))
        i = r.find(core, i + 1)
    return sorted(found, key=lambda m: m[0] - m[1])


def _numbers_ok(q: str, r: str, match: tuple[int, int, int, int]) -> bool:
    """Every number in ``q`` is in ``r`` at the match, exactly (not part of a longer number)."""
    ra, rb, qa, qb = match
    for m in _NUMBER.finditer(q):
        s, e = m.span()
        if qa <= s and e <= qb:
            pos = ra + s - qa
            there = _NUMBER.match(r, pos)
            signed = m.group()[0] not in "+-" and pos > 0 and _NUMBER.match(r, pos - 1)
            if there is None or there.end() != pos + e - s or signed:
                return False
        else:  # outside the matched piece: it must still be nearby, written the same way
            lo = max(0, ra - qa - 8)
            hi = r.find(" ", min(len(r), rb + len(q) - qb + 8))
            hi = len(r) if hi < 0 else hi  # never cut a number in two at the window's end
            near = {n.group().replace(" ", "") for n in _NUMBER.finditer(r, lo, hi)}
            if m.group().replace(" ", "") not in near:
                return False
    return True


@dataclass(frozen=True, slots=True)
class _Region:
    """Consecutive pages of one paper as one normalised string, mapped back to page offsets."""

    paper_id: str
    pages: tuple[Page, ...]  # only pages with text
    text: str
    starts: tuple[int, ...]  # where each page's normalised text starts in ``text``
    index: tuple[array[int], ...]

    @classmethod
    def build(cls, paper_id: str, pages: Sequence[Page]) -> _Region:
        kept: list[Page] = []
        parts: list[str] = []
        starts: list[int] = []
        index: list[array[int]] = []
        pos = 0
        for page in pages:
            norm, idx = page_norm(page.text)
            if not norm:
                continue
            if parts:
                prev = parts[-1]
                if norm[0].isalpha() and len(prev) > 1 and prev[-1] == "-" and prev[-2].isalpha():
                    parts[-1] = prev[:-1]  # a word hyphenated across the page break
                    pos -= 1
                else:
                    parts.append(" ")
                    pos += 1
            kept.append(page)
            starts.append(pos)
            index.append(idx)
            parts.append(norm)
            pos += len(norm)
        return cls(paper_id, tuple(kept), "".join(parts), tuple(starts), tuple(index))

    def _source(self, i: int) -> tuple[int, int]:
        """(page position in :attr:`pages`, offset in its text) of normalised character ``i``."""
        k = bisect_right(self.starts, i) - 1
        local = i - self.starts[k]
        if local >= len(self.index[k]):  # the separator between two pages
            return k, len(self.pages[k].text)
        return k, self.index[k][local]

    def spans(self, start: int, end: int) -> tuple[Span, ...]:
        """The page ranges that normalised ``text[start:end]`` came from."""
        k0, a = self._source(start)
        k1, b = self._source(end - 1)
        text = self.pages[k1].text
        b += 1
        while b < len(text) and unicodedata.combining(text[b]):
            b += 1  # keep a decomposed accent with its letter
        out = []
        for k in range(k0, k1 + 1):
            page = self.pages[k]
            lo = a if k == k0 else 0
            hi = b if k == k1 else len(page.text)
            if hi > lo:
                out.append(Span(page.number, lo, hi))
        return tuple(out)


def _inside(chunk: Chunk, paper_id: str, spans: Sequence[Span]) -> bool:
    return chunk.paper_id == paper_id and all(
        any(
            c.page == s.page and c.start - MARGIN <= s.start and s.end <= c.end + MARGIN
            for c in chunk.spans
        )
        for s in spans
    )


class Finder:
    """Regions and pages for one :func:`verify` call, each built once."""

    def __init__(self, contexts: Sequence[Context], pages: Pages) -> None:
        self.contexts = contexts
        self._pages = pages
        self._papers: dict[str, dict[int, Page]] = {}
        self._regions: dict[tuple[str, int, int], _Region] = {}

    def page(self, paper_id: str, number: int) -> Page | None:
        if paper_id not in self._papers:
            self._papers[paper_id] = {p.number: p for p in self._pages(paper_id)}
        return self._papers[paper_id].get(number)

    def region(self, chunk: Chunk) -> tuple[tuple[str, int, int], _Region]:
        key = (chunk.paper_id, chunk.page_start - 1, chunk.page_end + 1)
        if key not in self._regions:
            found = (self.page(chunk.paper_id, n) for n in range(key[1], key[2] + 1))
            self._regions[key] = _Region.build(chunk.paper_id, [p for p in found if p])
        return key, self._regions[key]

    def quote(self, cand: QuoteCandidate, q: str) -> Quote:
        order = sorted(self.contexts, key=lambda c: c.n != cand.context_n)
        searched: set[tuple[str, int, int]] = set()
        fallback: tuple[Context, str, tuple[Span, ...]] | None = None
        for ctx in order:
            key, region = self.region(ctx.hit.chunk)
            if key in searched:
                continue
            searched.add(key)
            for match in _matches(q, region.text):
                if not _numbers_ok(q, region.text, match):
                    continue
                spans = region.spans(match[0], match[1])
                owner = next((c for c in order if _inside(c.hit.chunk, key[0], spans)), None)
                if owner is not None:
                    return self.found(cand, owner, key[0], spans)
                fallback = fallback or (ctx, key[0], spans)
        if fallback is not None:
            return self.found(cand, *fallback)
        return Quote(cand.text, cand.context_n, "unverified")

    def found(
        self, cand: QuoteCandidate, owner: Context, paper_id: str, spans: tuple[Span, ...]
    ) -> Quote:
        """The quote as found in ``owner``'s passage (or pages) at ``spans``."""
        cited_elsewhere = cand.context_n is not None and cand.context_n != owner.n
        page = self.page(paper_id, spans[0].page)
        return Quote(
            text=cand.text,
            context_n=cand.context_n,
            status="misattributed" if cited_elsewhere else "verified",
            paper_id=paper_id,
            page=spans[0].page,
            boxes=tuple(page.boxes(spans)) if page else (),
            found_in=owner.n,
            spans=spans,
        )


def verify(
    candidates: Sequence[QuoteCandidate], contexts: Sequence[Context], pages: Pages
) -> list[Quote]:
    """Check each quote against its papers' page text (see the module docstring for the rules).

    Quotes too short to check are dropped; a quote repeated with the same ``[n]`` is kept once.
    """
    finder = Finder(contexts, pages)
    out: list[Quote] = []
    seen: set[tuple[str, int | None]] = set()
    for cand in candidates:
        q = quote_key(cand.text)
        too_short = len(quote_key(cand.text, loose=False)) < MIN_QUOTE_CHARS
        if too_short or (q, cand.context_n) in seen:
            continue
        seen.add((q, cand.context_n))
        out.append(finder.quote(cand, q))
    return out
