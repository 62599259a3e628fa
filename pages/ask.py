"""Ask: a question in; the answer beside its passages and the highlighted page out."""

import json
from typing import Literal

import streamlit as st

from pages import _ui as ui
from qa_core import evidence, prompts
from qa_core.models import Answer, Quote

HISTORY, CURRENT, QUESTION, PRESET = "ask_history", "ask_current", "ask_question", "ask_preset"
Color = Literal["green", "orange", "gray", "blue", "red"]
BADGES: dict[str, tuple[str, Color]] = {
    "answered": ("answered", "green"),
    "not_reported": ("not reported", "orange"),
    "not_found": ("not found", "gray"),
    "extractive": ("extractive", "blue"),
    "error": ("error", "red"),
}

st.title("Ask")


def home(q: Quote) -> int:
    """The context a quote was found in (0: nowhere)."""
    return q.found_in or q.context_n or 0


def quote_line(q: Quote) -> str:
    """The quote with its verification status (unverified quotes are never highlighted)."""
    if q.status == "verified":
        return f"✓ “{q.text}” [{home(q)}], p. {q.page}"
    if q.status == "misattributed":
        return f"⚠ “{q.text}” — found in [{q.found_in}], cited as [{q.context_n}], p. {q.page}"
    return f"✗ “{q.text}” — not found in the passages"


def show_answer(answer: Answer) -> None:
    label, color = BADGES.get(answer.status, (answer.status, "gray"))
    st.badge(label, color=color)
    st.markdown(ui.md(f"**{answer.question}**"))
    if answer.notice:
        st.info(answer.notice)
    st.markdown(ui.md(answer.answer))
    for q in answer.quotes:
        st.markdown(ui.md(quote_line(q)))
    with st.expander("Prompt, tokens, model, timings"):
        st.write(
            f"Model: {answer.model or 'none (extractive)'} · template "
            f"{answer.template_name} ({answer.template_hash})"
        )
        st.write(" · ".join(f"{k}: {v}" for k, v in answer.usage.items()) or "No tokens used.")
        st.write(" · ".join(f"{k} {v:.2f} s" for k, v in answer.timings.items()))
        st.code(answer.prompt or "(nothing was sent to a model)", language=None, wrap_lines=True)
    from qa_core.cli import answer_json  # deferred: it imports the whole service

    data = json.dumps(answer_json(answer), ensure_ascii=False, indent=1)
    st.download_button("Download JSON", data, file_name="answer.json", on_click="ignore")


def show_evidence(answer: Answer, index: int) -> None:
    contexts = {c.n: c for c in answer.contexts}
    found = [q for q in answer.quotes if q.status != "unverified" and home(q) in contexts]
    options: list[Quote | int] = [*found, *contexts]
    if not options:
        return
    pick = st.selectbox(
        "Show on the page",
        options,
        key=f"ask_sel_{index}",
        format_func=lambda o: (
            f"passage [{o}], p. {contexts[o].hit.chunk.page_start}"
            if isinstance(o, int)
            else f"{quote_line(o)[0]} “{o.text[:70]}”"
        ),
    )
    quote, n = (pick, home(pick)) if isinstance(pick, Quote) else (None, pick)
    context = contexts[n]
    chunk = context.hit.chunk
    page = quote.page if quote and quote.page else chunk.page_start
    try:
        light, dark = evidence.page_highlights(chunk, quote, svc.pages(chunk.paper_id)[page - 1])
        png = ui.page_png(svc.workspace, chunk.paper_id, page, tuple(light), tuple(dark))
        st.image(png, caption=f"{context.hit.title} — p. {page}")
    except Exception as exc:
        ui.show_error(exc)
    with st.container(height=480):
        for c in answer.contexts:
            ch = c.hit.chunk
            end = f"–{ch.page_end}" if ch.page_end > ch.page_start else ""
            st.markdown(
                ui.md(
                    f"**[{c.n}] {c.hit.title}** — p. {ch.page_start}{end} — "
                    f"{ch.section or '—'} · score {c.hit.score:.3f}"
                )
            )
            st.html(evidence.mark_html(ch.text, evidence.chunk_marks(ch, answer.quotes)))


def use_preset() -> None:
    st.session_state[QUESTION] = st.session_state[PRESET] or ""


def show_again(index: int) -> None:
    st.session_state[CURRENT] = index


left, right = st.columns(2, gap="large")
with left:
    st.selectbox(
        "Preset questions",
        prompts.competency_questions(),
        index=None,
        key=PRESET,
        placeholder="Pick a competency question…",
        on_change=use_preset,
    )
    st.caption(f"Competency questions from {prompts.CITATION}")
    question = st.text_area("Question", key=QUESTION, height=90)
    scope = st.radio("Scope", ["All papers", "Chosen papers"], horizontal=True)
# After the first widgets: on a cold start they are usable while the Service is built.
svc = ui.service()
history: list[Answer] = st.session_state.setdefault(HISTORY, [])
papers = {p.paper_id: p.title for p in svc.papers()}
with left:
    chosen = (
        None
        if scope == "All papers"
        else st.multiselect("Papers", list(papers), format_func=papers.__getitem__)
    )
    asked = st.button("Ask", type="primary", disabled=not question.strip() or chosen == [])
    slot = st.empty()
failed = False
if asked:
    streamed: list[str] = []

    def on_delta(delta: str) -> None:
        streamed.append(delta)
        slot.markdown(ui.md("".join(streamed)) + " ▌")

    try:
        history.append(svc.ask(question, papers=chosen, on_delta=on_delta))
        st.session_state[CURRENT] = len(history) - 1
    except Exception as exc:
        failed = True
        with slot.container():
            ui.show_error(exc)
with st.sidebar:  # after asking, so the new question is listed at once
    if history:
        st.caption("Questions this session")
    for i in reversed(range(len(history))):
        st.button(history[i].question[:60], key=f"ask_hist_{i}", on_click=show_again, args=(i,))
if history and not failed:
    current = min(st.session_state.get(CURRENT, len(history) - 1), len(history) - 1)
    with slot.container():
        show_answer(history[current])
    with right:
        show_evidence(history[current], current)
elif not papers:
    right.info("The library is empty: add papers on the Library page first.")
