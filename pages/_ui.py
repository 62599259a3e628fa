"""The Streamlit glue the pages share: the cached Service, workspaces, cached renders, errors,
background jobs, and the views of an answer and its evidence (Ask and Matrix show answers alike).

Pages call only :func:`service` (and small pure helpers in ``qa_core``); nothing here parses,
prompts or talks to Qdrant or an LLM itself. Importing this module is cheap: ``qa_core.service``
(PyMuPDF, Qdrant, openai) is imported when the Service is first built, so a page can show its
first widgets before that. Building loads no model either: the embedder loads on first use.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import streamlit as st

import qa_core
from qa_core.errors import MarginError
from qa_core.models import Answer, Box, Quote
from qa_core.settings import Settings

if TYPE_CHECKING:
    from qa_core.service import Service

__all__ = [
    "Job",
    "answer_view",
    "evidence_view",
    "follow",
    "md",
    "page_png",
    "routed",
    "service",
    "settings",
    "show_error",
    "workspace_id",
]

_LOG = logging.getLogger("margin.app")
_WS_KEY = "margin_workspace"
_WS_PARAM = "ws"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")
_Color = Literal["green", "orange", "gray", "blue", "red"]
_BADGES: dict[str, tuple[str, _Color]] = {
    "answered": ("answered", "green"),
    "not_reported": ("not reported", "orange"),
    "not_found": ("not found", "gray"),
    "extractive": ("extractive", "blue"),
    "error": ("error", "red"),
}


def routed(page: str) -> None:
    """Send a session that reached ``page`` without the router back through it.

    Right after the server starts, a deep link (``/library?ws=…``) is served by Streamlit's
    automatic ``pages/`` navigation until some session has run the router; that run has no
    layout or menu of ours. The router forwards ``goto`` to the page that was asked for.
    """
    if not st.session_state.get("margin_routed"):
        st.switch_page("streamlit_app.py", query_params={**st.query_params.to_dict(), "goto": page})


def _secrets() -> dict[str, Any]:
    """``st.secrets`` as a dict; empty when the app has no secrets file (local runs)."""
    try:
        return st.secrets.to_dict()
    except FileNotFoundError:  # includes StreamlitSecretNotFoundError (missing or unparsable)
        return {}


def _close(svc: Service) -> None:
    svc.close()


@st.cache_resource(show_spinner="Opening the library…", on_release=_close)
def _process_service() -> Service:
    return qa_core.build(Settings.from_mapping(_secrets()))  # imports qa_core.service


@st.cache_resource(max_entries=512, show_spinner=False)
def _scoped(workspace: str) -> Service:
    # One object per workspace across reruns, so the Service's own caches (parsed pages) hit.
    return _process_service().for_workspace(workspace)


def settings() -> Settings:
    """The settings the process Service was built with."""
    return _process_service().settings


def workspace_id() -> str:
    """``default`` locally; in public mode this browser session's private workspace.

    The token lives in the session state and in the URL (``?ws=…``): bookmarking the URL gets
    back to the same workspace, and sharing it shares the workspace on purpose.
    """
    if not settings().public:
        return "default"
    token = st.session_state.get(_WS_KEY) or st.query_params.get(_WS_PARAM, "")
    if not _TOKEN.fullmatch(token):
        token = secrets.token_urlsafe(16)
    st.session_state[_WS_KEY] = token
    if st.query_params.get(_WS_PARAM) != token:  # page switches drop query params
        st.query_params[_WS_PARAM] = token
    return token


def service() -> Service:
    """The Service scoped to this session's workspace; stops the page with one line if the
    configuration is unusable (the build is retried on the next run)."""
    try:
        return _scoped(workspace_id())
    except Exception as exc:
        show_error(exc)
        st.stop()


@st.cache_data(max_entries=256, show_spinner=False)
def page_png(
    workspace: str,
    paper_id: str,
    page: int,
    light: tuple[Box, ...] = (),
    dark: tuple[Box, ...] = (),
) -> bytes:
    """A page as PNG with its highlights (cached per workspace, paper, page and boxes)."""
    return _scoped(workspace).page_png(paper_id, page, light=light, dark=dark)


def md(text: str) -> str:
    """Model or PDF text for st.markdown: no math mode, and no remote images (a fetched image
    URL could carry data out of the page)."""
    return text.replace("$", r"\$").replace("![", r"!\[")


def show_error(exc: BaseException) -> None:
    """One line for the user: our message for a MarginError, a generic one otherwise."""
    if isinstance(exc, MarginError):
        st.error(str(exc), icon=":material/error:")
        return
    _LOG.error("unexpected error in the app", exc_info=exc)
    st.error("Something went wrong; the details are in the server log.", icon=":material/error:")


class Job:
    """Work in a thread of its own beside a session's script runs, which stay free to draw its
    progress and to set ``cancel`` (a script blocked in the work could not see a click).

    The work reports by setting ``progress`` to an object with ``done``, ``total`` and ``eta``
    (seconds left, or None), e.g. a :class:`qa_core.batch.CellProgress`.
    """

    def __init__(self, work: Callable[[Job], object]) -> None:
        self.cancel = threading.Event()
        self.progress: Any = None
        self.result: Any = None
        self.error: Exception | None = None
        self._thread = threading.Thread(target=self._run, args=(work,), daemon=True)
        self._thread.start()

    def _run(self, work: Callable[[Job], object]) -> None:
        try:
            self.result = work(self)
        except Exception as exc:  # the page shows it with show_error
            self.error = exc

    @property
    def running(self) -> bool:
        return self._thread.is_alive()


def follow(key: str) -> None:
    """While the :class:`Job` in ``st.session_state[key]`` runs: its progress bar with the time
    left and a Cancel button, redrawn every second; the whole page reruns when it ends."""

    @st.fragment(run_every=1.0)
    def progress() -> None:
        job: Job = st.session_state[key]
        if not job.running:
            st.rerun()  # scope "app": the page draws the result
        p = job.progress
        done, total = (p.done, p.total) if p else (0, 0)
        left = f" · about {p.eta:.0f} s left" if p and p.eta is not None else ""
        st.progress(done / total if total else 0.0, text=f"{done} of {total or '…'} done{left}")
        st.button("Cancel", on_click=job.cancel.set, disabled=job.cancel.is_set())

    progress()


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
