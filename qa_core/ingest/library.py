"""The paper registry (SQLite), the stored PDFs, and atomic ingest.

A paper is registered as ``pending`` before its first point is written and flipped to
``ready`` after the last one; search and listing only see ``ready`` papers. Opening the library
removes whatever a crashed ingest left behind (pending rows, their points, orphan files).
PDFs are stored once by content hash and shared by the workspaces that hold them.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np

from qa_core import embeddings
from qa_core._files import write_atomic
from qa_core.embeddings import Embedder
from qa_core.errors import DuplicatePaper, MarginError, PaperNotFound
from qa_core.ingest import chunking, pdf
from qa_core.models import Paper
from qa_core.store import VectorStore

__all__ = ["IngestResult", "Library", "Progress", "paper_id_for"]

Progress = Callable[[str, float], None]
"""Called with a stage name (parse, chunk, embed, index) and the fraction done (0..1)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS papers (
    workspace TEXT NOT NULL,
    paper_id TEXT NOT NULL,
    title TEXT NOT NULL,
    file TEXT NOT NULL,
    pages INTEGER NOT NULL,
    chunks INTEGER NOT NULL,
    added TEXT NOT NULL,
    doi TEXT,
    warnings TEXT NOT NULL DEFAULT '[]',
    state TEXT NOT NULL,
    PRIMARY KEY (workspace, paper_id)
);
"""


def paper_id_for(data: bytes) -> str:
    """A stable id from the file's content: re-uploading the same file gives the same id."""
    return hashlib.sha256(data).hexdigest()[:16]


@dataclass(slots=True)
class IngestResult:
    """What happened to one file (one line of ``margin ingest``)."""

    file: str
    status: Literal["indexed", "duplicate", "failed"]
    paper_id: str | None = None
    title: str | None = None
    pages: int = 0
    chunks: int = 0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


class Library:
    """Papers of every workspace in one data folder, backed by one vector store."""

    def __init__(
        self,
        data_dir: Path,
        store: VectorStore,
        embedder: Embedder,
        *,
        chunk_tokens: int,
        chunk_overlap: int,
    ) -> None:
        self.data_dir = data_dir
        self.store = store
        self.embedder = embedder
        self.chunk_tokens = chunk_tokens
        self.chunk_overlap = chunk_overlap
        self._pdfs = data_dir / "pdfs"
        self._pdfs.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(data_dir / "library.sqlite3", check_same_thread=False)
        self._db.executescript(_SCHEMA)
        self._recover()

    # -- reading ---------------------------------------------------------------------------

    def papers(self, workspace: str) -> list[Paper]:
        """Ready papers of a workspace, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT paper_id, title, file, pages, chunks, added, doi, warnings FROM papers"
                " WHERE workspace = ? AND state = 'ready' ORDER BY added, paper_id",
                (workspace,),
            ).fetchall()
        return [
            Paper(pid, title, file, pages, chunks, added, doi, tuple(json.loads(warn)))
            for pid, title, file, pages, chunks, added, doi, warn in rows
        ]

    def paper(self, workspace: str, paper_id: str) -> Paper:
        for paper in self.papers(workspace):
            if paper.paper_id == paper_id:
                return paper
        raise PaperNotFound(f"No paper with id {paper_id!r} in the library.")

    def ready_ids(self, workspace: str) -> list[str]:
        return [p.paper_id for p in self.papers(workspace)]

    def pdf_bytes(self, workspace: str, paper_id: str) -> bytes:
        self.paper(workspace, paper_id)  # raises for unknown / other workspace's papers
        return (self._pdfs / f"{paper_id}.pdf").read_bytes()

    # -- writing ---------------------------------------------------------------------------

    def ingest(
        self,
        data: bytes,
        filename: str,
        workspace: str,
        *,
        password: str | None = None,
        progress: Progress | None = None,
    ) -> IngestResult:
        """Index one PDF. Never raises for a bad file: the result says what went wrong."""
        report = progress or (lambda stage, done: None)
        name = Path(filename).name
        pid = paper_id_for(data)
        try:
            existing = self._state(workspace, pid)
            if existing == "ready":
                raise DuplicatePaper(f"{name} is already in the library.", pid)
            report("parse", 0.0)
            doc = pdf.read(data, password=password)
            report("chunk", 0.0)
            chunks = chunking.split(doc, pid, size=self.chunk_tokens, overlap=self.chunk_overlap)
            report("embed", 0.0)
            texts = [chunking.embedding_text(c) for c in chunks]
            parts = []
            for batch in embeddings.batches_of(texts):
                parts.append(self.embedder.embed_passages(batch))
                report("embed", sum(map(len, parts)) / max(1, len(texts)))
            vectors = np.vstack(parts) if parts else np.zeros((0, self.embedder.dim), np.float32)
            report("index", 0.0)
            stored = data if password is None else pdf.unlock(data, password)
            with self._lock:
                self._register(
                    workspace,
                    pid,
                    doc.title,
                    name,
                    len(doc.pages),
                    len(chunks),
                    doc.doi,
                    list(doc.warnings),
                )
                self._write_pdf(pid, stored)
                self.store.add(chunks, vectors, workspace=workspace, title=doc.title)
                self._db.execute(
                    "UPDATE papers SET state = 'ready' WHERE workspace = ? AND paper_id = ?",
                    (workspace, pid),
                )
                self._db.commit()
            report("index", 1.0)
        except DuplicatePaper as exc:
            paper = self.paper(workspace, exc.paper_id)
            return IngestResult(name, "duplicate", pid, paper.title, paper.pages, paper.chunks)
        except MarginError as exc:
            return IngestResult(name, "failed", pid, error=str(exc))
        return IngestResult(
            name,
            "indexed",
            pid,
            doc.title,
            len(doc.pages),
            len(chunks),
            warnings=list(doc.warnings),
        )

    def delete(self, workspace: str, paper_id: str) -> None:
        """Remove a paper: its points, its row, and its PDF unless another workspace has it."""
        self.paper(workspace, paper_id)
        with self._lock:
            self._remove(workspace, paper_id)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- internals -------------------------------------------------------------------------

    def _state(self, workspace: str, pid: str) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT state FROM papers WHERE workspace = ? AND paper_id = ?", (workspace, pid)
            ).fetchone()
        return str(row[0]) if row else None

    def _register(
        self,
        workspace: str,
        pid: str,
        title: str,
        file: str,
        pages: int,
        chunks: int,
        doi: str | None,
        warnings: list[str],
    ) -> None:
        added = datetime.now(UTC).isoformat(timespec="seconds")
        self._db.execute(
            "INSERT OR REPLACE INTO papers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')",
            (workspace, pid, title, file, pages, chunks, added, doi, json.dumps(warnings)),
        )
        self._db.commit()

    def _write_pdf(self, pid: str, data: bytes) -> None:
        target = self._pdfs / f"{pid}.pdf"
        if not target.exists():
            write_atomic(target, data)

    def _remove(self, workspace: str, pid: str) -> None:
        self.store.delete(pid, workspace=workspace)
        self._db.execute(
            "DELETE FROM papers WHERE workspace = ? AND paper_id = ?", (workspace, pid)
        )
        self._db.commit()
        still_used = self._db.execute(
            "SELECT 1 FROM papers WHERE paper_id = ? LIMIT 1", (pid,)
        ).fetchone()
        if not still_used:
            (self._pdfs / f"{pid}.pdf").unlink(missing_ok=True)

    def _recover(self) -> None:
        """Undo whatever an interrupted ingest left: pending rows, stray points and files."""
        with self._lock:
            for workspace, pid in self._db.execute(
                "SELECT workspace, paper_id FROM papers WHERE state != 'ready'"
            ).fetchall():
                self._remove(workspace, pid)
            # Points without any row (e.g. a lost registry) are swept only from a store we own
            # alone: on a shared Qdrant server they may be another Margin instance's papers.
            workspaces = [w for (w,) in self._db.execute("SELECT DISTINCT workspace FROM papers")]
            for workspace in {*workspaces, "default"} if self.store.exclusive else ():
                ready = set(self.ready_ids(workspace))
                for pid in self.store.paper_ids(workspace) - ready:
                    self.store.delete(pid, workspace=workspace)
            known = {pid for (pid,) in self._db.execute("SELECT paper_id FROM papers")}
            for path in self._pdfs.iterdir():
                if path.suffix != ".pdf" or path.stem not in known:
                    path.unlink(missing_ok=True)
