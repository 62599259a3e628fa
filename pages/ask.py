"""Ask: a question in; the answer beside its passages and the highlighted page out."""

import streamlit as st

from pages import _ui as ui
from pages import _views as views
from qa_core.answering import prompts
from qa_core.models import Answer

ui.routed("ask")

HISTORY, CURRENT, QUESTION, PRESET = "ask_history", "ask_current", "ask_question", "ask_preset"

st.title("Ask")


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
    asked = st.button("Ask", type="primary", disabled=chosen == [])  # empty: one-line message
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
        views.answer_view(history[current], key=f"ask_{current}")
    with right:
        views.evidence_view(svc, history[current], key=f"ask_{current}")
elif not papers:
    right.info("The library is empty: add papers on the Library page first.")
