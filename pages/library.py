"""Library: add PDFs, see what is indexed, delete a paper, look at its pages."""

import streamlit as st

from pages import _ui as ui
from qa_core.ingest.library import IngestResult

ui.routed("library")

# Share of the progress bar each ingest stage ends at (embedding dominates).
STAGES = {"parse": (0.0, 0.1), "chunk": (0.1, 0.2), "embed": (0.2, 0.9), "index": (0.9, 1.0)}
LOCKED = "margin_locked"  # session key: {file name: bytes} of PDFs waiting for a password

svc = ui.service()
locked: dict[str, bytes] = st.session_state.setdefault(LOCKED, {})
st.title("Library")


def ingest(name: str, data: bytes, password: str | None = None) -> IngestResult:
    """Index one file inside a status box with a progress bar; show the outcome."""
    with st.status(f"{name}: parsing…", expanded=True) as box:
        bar = st.progress(0.0, text="parse")

        def progress(stage: str, done: float) -> None:
            lo, hi = STAGES.get(stage, (0.0, 1.0))
            bar.progress(lo + (hi - lo) * min(max(done, 0.0), 1.0), text=stage)

        try:
            result = svc.ingest(data, name, password=password, progress=progress)
        except Exception as exc:  # ingest reports bad files itself; this is a fault
            box.update(label=f"{name}: failed", state="error")
            ui.show_error(exc)
            return IngestResult(name, "failed", error="unexpected error")
        if result.status == "failed":
            box.update(label=f"{name}: failed — {result.error}", state="error")
            st.error(result.error or "The file could not be indexed.")
        else:
            verb = "indexed" if result.status == "indexed" else "already in the library"
            box.update(label=f"{name}: {verb}", state="complete", expanded=bool(result.warnings))
            bar.progress(1.0, text="done")
            st.markdown(ui.md(f"**{result.title}** — {result.pages} pages, {result.chunks} chunks"))
        for warning in result.warnings:
            st.warning(warning)
    return result


with st.form("upload", clear_on_submit=True):
    files = st.file_uploader("Add PDFs", type="pdf", accept_multiple_files=True)
    submitted = st.form_submit_button("Add to library", type="primary")
if submitted:
    for file in files or []:
        result = ingest(file.name, file.getvalue())
        if result.status == "failed" and "password" in (result.error or "").lower():
            locked[file.name] = file.getvalue()

for name, data in list(locked.items()):
    with st.form(f"unlock-{name}"):
        st.write(f":material/lock: **{name}** is password-protected.")
        password = st.text_input("Password", type="password", key=f"pw-{name}")
        unlock = st.form_submit_button("Unlock and add")
    if unlock and password and ingest(name, data, password=password).status != "failed":
        del locked[name]

try:
    papers = svc.papers()
except Exception as exc:
    ui.show_error(exc)
    st.stop()

st.subheader(f"Papers ({len(papers)})")
if not papers:
    st.info("No papers yet: add PDFs above.")
    st.stop()
st.dataframe(
    [
        {
            "Title": p.title,
            "Pages": p.pages,
            "Chunks": p.chunks,
            "Added": p.added,
            "File": p.file,
            "Id": p.paper_id,
        }
        for p in papers
    ],
    hide_index=True,
)
titles = {p.paper_id: f"{p.title} ({p.file})" for p in papers}

left, right = st.columns([2, 1])
with left:
    st.subheader("Pages")
    chosen = st.selectbox("Paper", list(titles), format_func=titles.__getitem__, key="view")
    paper = next(p for p in papers if p.paper_id == chosen)
    page = st.number_input("Page", min_value=1, max_value=paper.pages, value=1, step=1)
    try:
        st.image(ui.page_png(svc.workspace, paper.paper_id, int(page)), caption=f"p. {page}")
    except Exception as exc:
        ui.show_error(exc)
with right, st.popover("Delete a paper", icon=":material/delete:"):
    doomed = st.selectbox("Paper to delete", list(titles), format_func=titles.__getitem__)
    sure = st.checkbox("Yes, remove it and its index entries")
    if st.button("Delete", type="primary", disabled=not sure):
        try:
            svc.delete(doomed)
            st.rerun()
        except Exception as exc:
            ui.show_error(exc)
