"""The Streamlit glue the pages share: the cached Service, workspaces, cached renders, errors.

Background jobs are in :mod:`pages._jobs`, the views of an answer and its evidence in
:mod:`pages._views`.

Pages call only :func:`service` (and small pure helpers in ``qa_core``); nothing here parses,
prompts or talks to Qdrant or an LLM itself. Importing this module is cheap: ``qa_core.service``
(PyMuPDF, Qdrant, openai) is imported when the Service is first built, so a page can show its
first widgets before that. Building loads no model either: the embedder loads on first use.
"""

from __future__ import annotations

import logging
import re
import secrets
from typing import TYPE_CHECKING, Any

import streamlit as st

import qa_core
from qa_core.errors import MarginError
from qa_core.models import Box
from qa_core.settings import Settings

if TYPE_CHECKING:
    from qa_core.service import Service

__all__ = [
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
