"""JSON shapes of answers and hits: one implementation for the CLI, the app and matrix exports."""

from __future__ import annotations

from typing import Any

from qa_core.models import Answer, Hit, Quote

__all__ = ["answer_json", "hit_json", "quote_json"]


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
