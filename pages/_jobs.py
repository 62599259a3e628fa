"""Background jobs for pages: work in a thread beside the script runs, with a live progress bar."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import streamlit as st

__all__ = ["Job", "follow"]


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
