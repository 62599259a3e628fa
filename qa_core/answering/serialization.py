"""JSON shapes of answers and hits: one implementation for the CLI, the app and matrix exports."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from qa_core.answering import evidence
from qa_core.models import Answer, Chunk, Context, Hit, Page, Quote, QuoteCandidate, Span

__all__ = ["answer_from_json", "answer_json", "hit_json", "quote_json"]


def hit_json(hit: Hit) -> dict[str, Any]:
    """A retrieved passage with its provenance (paper, chunk, pages, section, score)."""
    c = hit.chunk
    return {
        "paper_id": c.paper_id,
        "title": hit.title,
        "chunk_id": c.chunk_id,
        "text": c.text,
        "page_start": c.page_start,
        "page_end": c.page_end,
        "section": c.section,
        "score": round(hit.score, 6),
    }


def quote_json(quote: Quote) -> dict[str, Any]:
    """A quote, what checking it found, and where it is on the page."""
    return {
        "text": quote.text,
        "context_n": quote.context_n,
        "status": quote.status,
        "paper_id": quote.paper_id,
        "page": quote.page,
        "boxes": [[round(v, 2) for v in box] for box in quote.boxes],
    }


def answer_json(answer: Answer) -> dict[str, Any]:
    """The ``ask --json`` object (also what the app offers as a download)."""
    return {
        "question": answer.question,
        "answer": answer.answer,
        "status": answer.status,
        "model": answer.model,
        "template": {"name": answer.template_name, "hash": answer.template_hash},
        "prompt": answer.prompt,
        "usage": answer.usage,
        "timings": {k: round(v, 4) for k, v in answer.timings.items()},
        "notice": answer.notice,
        "contexts": [{"n": c.n, **hit_json(c.hit)} for c in answer.contexts],
        "quotes": [quote_json(q) for q in answer.quotes],
    }


def answer_from_json(data: Mapping[str, Any], pages: Callable[[str], Sequence[Page]]) -> Answer:
    """The :class:`Answer` an :func:`answer_json` object describes, to show its evidence again.

    The JSON keeps each passage's text and pages but not its page-text spans, nor where each
    quote matched: the spans are found again in ``pages(paper_id)`` and the quotes verified
    again against them (the same rules on the same text give the same statuses).
    """
    contexts = [
        Context(
            int(c["n"]),
            Hit(
                Chunk(
                    paper_id=c["paper_id"],
                    chunk_id=c["chunk_id"],
                    index=_index(c["chunk_id"]),
                    text=c["text"],
                    spans=_locate(c["text"], c["page_start"], c["page_end"], pages(c["paper_id"])),
                    section=c.get("section", ""),
                ),
                float(c["score"]),
                c.get("title", ""),
            ),
        )
        for c in data.get("contexts", [])
    ]
    quotes = data.get("quotes", [])
    candidates = [QuoteCandidate(q["text"], q["context_n"]) for q in quotes]
    template = data.get("template") or {}
    return Answer(
        question=data["question"],
        answer=data["answer"],
        status=data["status"],
        model=data.get("model"),
        template_name=template.get("name", ""),
        template_hash=template.get("hash", ""),
        prompt=data.get("prompt", ""),
        contexts=contexts,
        quotes=evidence.verify(candidates, contexts, pages) if candidates else [],
        usage=dict(data.get("usage") or {}),
        timings=dict(data.get("timings") or {}),
        notice=data.get("notice", ""),
    )


def _index(chunk_id: str) -> int:
    number = chunk_id.rpartition(":")[2]  # chunk ids are paper_id:index
    return int(number) if number.isdigit() else 0


def _locate(text: str, first: int, last: int, pages: Sequence[Page]) -> tuple[Span, ...]:
    """The spans of a passage: its text is one piece of each of its pages joined by ``\\n``
    (see :mod:`qa_core.ingest.chunking`), the longest piece that fits a page taken first. Text no
    page holds any more gets empty spans on its first and last page: shown, never highlighted."""
    spans: list[Span] = []
    rest = text
    for number in range(first, min(last, len(pages)) + 1):
        page = pages[number - 1].text
        cuts = [i for i, ch in enumerate(rest) if ch == "\n"] + [len(rest)]
        for cut in reversed(cuts):
            start = page.find(rest[:cut]) if cut else -1
            if start >= 0:
                spans.append(Span(number, start, start + cut))
                rest = rest[cut + 1 :]
                break
        if not rest:
            return tuple(spans)
    return (Span(first, 0, 0), Span(last, 0, 0))
