"""Templates: edit the instructions sent with every question, check them, save and activate."""

import streamlit as st

from pages import _ui as ui
from qa_core import tokens
from qa_core.answering import prompts
from qa_core.answering.prompts import PRESETS, Template
from qa_core.answering.template_store import TemplateStore
from qa_core.errors import TemplateError

ui.routed("templates")

TEXT, PICK, FLASH = "tpl_text", "tpl_pick", "tpl_flash"

svc = ui.service()
store = svc.templates
st.title("Templates")
with st.expander("How to write a template"):
    st.markdown(prompts.HOW_TO)


def load() -> None:
    st.session_state[TEXT] = store.get(st.session_state[PICK]).text


def save(name: str, text: str, numbered: bool) -> None:
    try:
        store.save(name, text, numbered=numbered)
    except TemplateError as exc:
        st.session_state[FLASH] = ("error", str(exc))
        return
    st.session_state[PICK] = name.strip()
    st.session_state[FLASH] = ("success", f"Saved {name.strip()!r}.")


def activate(name: str) -> None:
    try:
        store.set_active(name)
        st.session_state[FLASH] = ("success", f"{name!r} is now the active template.")
    except TemplateError as exc:
        st.session_state[FLASH] = ("error", str(exc))


def reset(preset: str) -> None:
    st.session_state[TEXT] = PRESETS[preset].text


try:
    names = [t.name for t in store.list()]
    active = store.active()
except TemplateError as exc:
    ui.show_error(exc)
    st.stop()
if st.session_state.get(PICK) not in names:
    st.session_state[PICK] = active.name
if TEXT not in st.session_state:
    load()
kind, message = st.session_state.pop(FLASH, ("", ""))
if kind:
    (st.error if kind == "error" else st.success)(message)

pick = st.selectbox("Template", names, key=PICK, on_change=load)
base = store.get(pick)
st.caption(f"Active template: **{active.name}** (version {active.hash})")
text = st.text_area("Template text", key=TEXT, height=320)
edited = Template(base.name, text, numbered=base.numbered)
try:
    prompts.validate(text)
    valid = True
    st.success(f"Valid template ({tokens.count(text)} tokens before passages).")
except TemplateError as exc:
    valid = False
    st.error(str(exc))

name = st.text_input("Save as", value="" if pick in PRESETS else pick, placeholder="My template")
cols = st.columns(3)
cols[0].button(
    "Save",
    type="primary",
    disabled=not name.strip(),
    on_click=save,
    args=(name, text, base.numbered),
)
cols[1].button(
    f"Make {pick!r} active", disabled=pick == active.name, on_click=activate, args=(pick,)
)
preset = cols[2].selectbox("Preset", list(PRESETS), label_visibility="collapsed")
cols[2].button("Reset text to this preset", on_click=reset, args=(preset,))

with st.expander(f"Changes from the preset {preset!r}"):
    diff = TemplateStore.diff(PRESETS[preset], edited)
    st.code(diff or "(no differences)", language="diff")

st.subheader("Preview")
papers = {p.paper_id: p.title for p in svc.papers()}
if not papers:
    st.info("Add a paper in the Library to preview the full prompt.")
elif valid and st.toggle("Render the prompt for a question and a paper"):
    question = st.selectbox("Question", prompts.competency_questions())
    paper = st.selectbox("Paper", list(papers), format_func=papers.__getitem__)
    try:
        prompt, hits = svc.preview(question, papers=[paper], template=edited)
        st.caption(
            f"{prompt.tokens} tokens · {len(prompt.contexts)} of {len(hits)} passages fit the "
            "context window"
        )
        st.code(prompt.text, language=None, wrap_lines=True)
    except Exception as exc:
        ui.show_error(exc)
