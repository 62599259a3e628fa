"""The views of an answer and its evidence (Ask and Matrix show answers alike)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Literal

import streamlit as st

from pages._ui import md, page_png, show_error
from qa_core.models import Answer, Quote

if TYPE_CHECKING:
    from qa_core.service import Service

__all__ = ["answer_view", "evidence_view"]

_Color = Literal["green", "orange", "gray", "blue", "red"]
_BADGES: dict[str, tuple[str, _Color]] = {
    "answered": ("answered", "green"),
    "not_reported": ("not reported", "orange"),
    "not_found": ("not found", "gray"),
    "extractive": ("extractive", "blue"),
    "error": ("error", "red"),
}


def answer_view(answer: Answer, key: str) -> None:
    """An answer's status, text and notice, how it was made, and its JSON to download."""
    from qa_core.answering.serialization import answer_json  # deferred like evidence_view's imports

    label, color = _BADGES.get(answer.status, (answer.status, "gray"))
    st.badge(label, color=color)
    st.markdown(md(f"**{answer.question}**"))
    if answer.notice:
        st.info(answer.notice)
    st.markdown(md(answer.answer))
    with st.expander("Prompt, tokens, model, timings"):
        st.write(
            f"Model: {answer.model or 'none (extractive)'} · template "
            f"{answer.template_name} ({answer.template_hash})"
        )
        st.write(" · ".join(f"{k}: {v}" for k, v in answer.usage.items()) or "No tokens used.")
        st.write(" · ".join(f"{k} {v:.2f} s" for k, v in answer.timings.items()))
        st.code(answer.prompt or "(nothing was sent to a model)", language=None, wrap_lines=True)
    data = json.dumps(answer_json(answer), ensure_ascii=False, indent=1)
    st.download_button(
        "Download JSON", data, file_name="answer.json", on_click="ignore", key=f"{key}_json"
    )


def _home(q: Quote) -> int:
    """The passage a quote was found in (0: nowhere)."""
    return q.found_in or q.context_n or 0


def _quote_line(q: Quote) -> str:
    """The quote with its verification status (unverified quotes are never highlighted)."""
    if q.status == "verified":
        return f"✓ “{q.text}” [{_home(q)}], p. {q.page}"
    if q.status == "misattributed":
        return f"⚠ “{q.text}” — found in [{q.found_in}], cited as [{q.context_n}], p. {q.page}"
    return f"✗ “{q.text}” — not found in the passages"


def evidence_view(svc: Service, answer: Answer, key: str) -> None:
    """An answer's evidence: its quotes with their check (✓ ⚠ ✗), the page of a chosen quote or
    passage (the passage lightly highlighted, the quote darkly), and the passages with the
    found quotes marked. ``key`` keeps the widgets of several views apart."""
    from qa_core.answering import highlights  # deferred: kept off the cold-start path

    for q in answer.quotes:
        st.markdown(md(_quote_line(q)))
    contexts = {c.n: c for c in answer.contexts}
    found = [q for q in answer.quotes if q.status != "unverified" and _home(q) in contexts]
    options: list[Quote | int] = [*found, *contexts]
    if not options:
        return
    pick = st.selectbox(
        "Show on the page",
        options,
        key=f"{key}_sel",
        format_func=lambda o: (
            f"passage [{o}], p. {contexts[o].hit.chunk.page_start}"
            if isinstance(o, int)
            else f"{_quote_line(o)[0]} “{o.text[:70]}”"
        ),
    )
    quote, n = (pick, _home(pick)) if isinstance(pick, Quote) else (None, pick)
    context = contexts[n]
    chunk = context.hit.chunk
    page = quote.page if quote and quote.page else chunk.page_start
    try:
        light, dark = highlights.page_highlights(chunk, quote, svc.pages(chunk.paper_id)[page - 1])
        png = page_png(svc.workspace, chunk.paper_id, page, tuple(light), tuple(dark))
        st.image(png, caption=f"{context.hit.title} — p. {page}")
    except Exception as exc:
        show_error(exc)
    with st.container(height=480):
        for c in answer.contexts:
            ch = c.hit.chunk
            end = f"–{ch.page_end}" if ch.page_end > ch.page_start else ""
            st.markdown(
                md(
                    f"**[{c.n}] {c.hit.title}** — p. {ch.page_start}{end} — "
                    f"{ch.section or '—'} · score {c.hit.score:.3f}"
                )
            )
            st.html(highlights.mark_html(ch.text, highlights.chunk_marks(ch, answer.quotes)))
