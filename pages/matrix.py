"""Matrix: every question of a set asked about every chosen paper by every chosen model.

Start runs :func:`qa_core.matrix.run_matrix` as a :class:`pages._jobs.Job`, so the page stays live
(progress, Cancel). Finished cells are cached: Resume is Start again, Retry failed is Start with
``retry_failed``.
"""

import io
from functools import partial
from itertools import product
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from pages import _jobs as jobs
from pages import _ui as ui
from pages import _views as views
from qa_core import matrix
from qa_core.answering.serialization import answer_from_json
from qa_core.errors import MarginError
from qa_core.matrix import Matrix

ui.routed("matrix")

JOB, SET, IMPORTED = "mx_job", "mx_set", "mx_imported"
EXPORTS = list(product(("wide", "long"), ("csv", "json")))

st.title("Matrix")
svc = ui.service()
public = svc.settings.public
store = matrix.QuestionSetStore(svc.user_dir)  # public: each visitor's imported sets are their own
job: jobs.Job | None = st.session_state.get(JOB)
last: Matrix | None = job.result if job and not job.running else None


def run(job: jobs.Job, **choices: Any) -> Matrix:
    with matrix.MatrixCache.for_settings(svc.settings) as cache:
        on_cell = partial(setattr, job, "progress")
        return matrix.run_matrix(svc, cache=cache, on_cell=on_cell, cancel=job.cancel, **choices)


def exported(m: Matrix, shape: Any, fmt: Any) -> str:
    out = io.StringIO()
    matrix.export(m, out, shape=shape, fmt=fmt)
    return out.getvalue()


left, right = st.columns(2, gap="large")
with left:
    upload = st.file_uploader("Import a question set (CSV: id,name,question,instructions)", "csv")
    if upload is not None and st.session_state.get(IMPORTED) != upload.file_id:
        st.session_state[IMPORTED] = upload.file_id
        text = upload.getvalue().decode("utf-8-sig", errors="replace") + "\n"  # text, never a path
        try:
            saved = store.save(matrix.load_csv(text, name=Path(upload.name).stem))
            st.session_state[SET] = saved.name
            st.success(f"Imported {len(saved.questions)} questions as {saved.name!r}.")
        except MarginError as exc:
            ui.show_error(exc)
    try:
        qset = store.get(st.selectbox("Question set", store.names(), key=SET))
    except MarginError as exc:
        ui.show_error(exc)
        st.stop()
    if qset.citation:
        st.caption(f"Questions from {qset.citation}")
    csv = matrix.to_csv(qset)
    st.download_button("Download as CSV", csv, f"{qset.name}.csv", "text/csv", on_click="ignore")
    names = {q.id: f"{q.id} {q.name}".strip() for q in qset.questions}
    picked = st.multiselect("Questions (none: all)", list(names), format_func=names.__getitem__)
with right:
    papers = {p.paper_id: p.title or p.file for p in svc.papers()}
    chosen = None
    if st.radio("Papers", ["All papers", "Chosen papers"], horizontal=True) != "All papers":
        chosen = st.multiselect("Chosen papers", list(papers), format_func=papers.__getitem__)
    if svc.chat is None:
        st.info("The matrix needs a chat model: set OPENAI_BASE_URL and MARGIN_CHAT_MODEL.")
    lines: list[str] = []  # public: the configured model only (no visitor-chosen endpoint or key)
    if not public:
        default = svc.chat.name if svc.chat else ""
        models = st.text_area("Models, one a line: NAME or NAME=MODEL@BASE_URL", default)
        lines = [line for line in models.splitlines() if line.strip()]
    concurrency = st.slider("Requests at once per endpoint", 1, 8, 4)
    usable = bool(papers) and chosen != [] and bool(lines or svc.chat) and not (job and job.running)
    retry = bool(last and last.failed) and st.button("Retry failed", disabled=not usable)
    label = "Resume" if last is not None and last.cancelled else "Start"
    if st.button(label, type="primary", disabled=not usable) or retry:
        try:
            asked = qset.subset(picked) if picked else qset
            named = matrix.resolve_models(svc, lines)
            choices: dict[str, Any] = {"papers": chosen, "questions": asked, "models": named}
            work = partial(run, concurrency=concurrency, retry_failed=retry, **choices)
            job = st.session_state[JOB] = jobs.Job(work)
        except MarginError as exc:
            ui.show_error(exc)
if not papers:
    st.info("The library is empty: add papers on the Library page first.")
if job is not None and job.running:
    jobs.follow(JOB)
if job is None or job.running:
    st.stop()
if job.error is not None:
    ui.show_error(job.error)
    st.stop()
m: Matrix = job.result
st.caption(f"{len(m.cells)} of {m.total} cells; {m.computed} computed now, the rest cached.")
if m.cancelled:
    st.warning("Cancelled: Resume runs the cells left (the finished ones are cached).")
if m.failed:
    st.warning(f"{len(m.failed)} cells failed ({m.failed[0].error}); Retry failed reruns them.")
qnames = {q.id: f"{q.id} {q.name}".strip() for q in m.questions.questions}
titles = {p.paper_id: p.title or p.file for p in m.papers}
f1, f2, f3 = st.columns([2, 2, 1], vertical_alignment="bottom")
qs = f1.multiselect(
    "Show questions (none: all)", list(qnames), format_func=qnames.__getitem__
) or list(qnames)
ps = f2.multiselect(
    "Show papers (none: all)", list(titles), format_func=titles.__getitem__
) or list(titles)
grid = pd.DataFrame({qnames[q]: [m.mark(p, q) for p in ps] for q in qs}, [titles[p] for p in ps])
if f3.toggle("Disagreements only"):
    flagged = grid.map(lambda v: v.endswith("⚠"))
    grid = grid.loc[flagged.any(axis=1), flagged.any(axis=0)]
st.dataframe(grid)
kappa, heat = st.columns([1, 2])
if pairs := {f"{a} · {b}": k for (a, b), k in matrix.pairwise_kappa(m).items()}:
    kappa.dataframe(pd.Series(pairs, name="Cohen's κ", dtype=float), width="stretch")
heat.image(matrix.heatmap_png(m), caption="Agreement with the majority (Y/N/T: yes, no, tie)")
for col, (shape, fmt) in zip(st.columns(4), EXPORTS, strict=True):
    data = partial(exported, m, shape, fmt)
    mime = "text/csv" if fmt == "csv" else "application/json"
    title = f"{shape.title()} {fmt.upper()}"
    col.download_button(title, data, f"matrix-{shape}.{fmt}", mime, on_click="ignore")

st.subheader("One cell, every model")
c1, c2 = st.columns(2)
pid = c1.selectbox("Paper", ps, format_func=titles.__getitem__, key="mx_paper")
qid = c2.selectbox("Question", qs, format_func=qnames.__getitem__, key="mx_question")
for tab, name in zip(st.tabs(list(m.models)), m.models, strict=True):
    with tab:
        cell = m.get(pid, qid, name)
        verdict = {True: "yes", False: "no", None: "undecided"}[cell.reported if cell else None]
        st.markdown(f"Reported: **{verdict}** · `{m.models[name]}`")
        if cell is None or cell.error:
            st.warning(cell.error if cell else "Not run yet: Resume the matrix.")
        try:
            answer = answer_from_json(cell.answer, svc.pages) if cell and cell.answer else None
        except MarginError as exc:
            ui.show_error(exc)
            continue
        if answer is not None:
            key = f"mx_{pid}_{qid}_{name}"
            views.answer_view(answer, key)
            views.evidence_view(svc, answer, key)
