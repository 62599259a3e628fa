"""The cells of a matrix, the matrix, its SQLite cache, and the seed paper's yes/no prompt."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from qa_core.answering.prompts import Template
from qa_core.errors import StoreError
from qa_core.matrix.questions import QuestionSet
from qa_core.matrix.votes import Consensus, majority
from qa_core.models import Paper
from qa_core.settings import Settings

__all__ = [
    "BINARY_PROMPT",
    "BINARY_PROMPT_NAME",
    "CACHE_FILE",
    "REPORTED",
    "Cell",
    "CellProgress",
    "Matrix",
    "MatrixCache",
    "binary_prompt",
    "converted",
    "now",
    "parse_binary",
    "sha",
]

BINARY_PROMPT_NAME = "Yes/No conversion (Kommineni et al. 2024)"
BINARY_PROMPT = (
    resources.files("qa_core").joinpath("data", "binary_prompt.txt").read_bytes().decode()
)
"""The seed paper's few-shot prompt (cite :data:`qa_core.prompts.CITATION`), byte for byte;
placeholders {Question} and {Answer}."""
_BINARY_HASH = hashlib.sha256(BINARY_PROMPT.encode()).hexdigest()[:12]
# The authors' reading of the reply: the last "Response: Yes/No" (or "Answer: …") wins.
_VERDICT = re.compile(
    r"\b(?:answer|response)(?:\s+is)?\s*:{0,4}\s*[\"'*]*\s*(yes|no)\b", re.IGNORECASE
)
REPORTED = {"answered": True, "not_reported": False, "not_found": False}
CACHE_FILE = "matrix_cache.sqlite3"


def binary_prompt(question: str, answer: str) -> str:
    """The yes/no prompt for one answer (its newlines flattened, as the authors did)."""
    return BINARY_PROMPT.replace("{Question}", question).replace(
        "{Answer}", answer.replace("\n", " ")
    )


def parse_binary(text: str) -> bool | None:
    """True/False from the last ``Response: Yes|No`` in a reply; None when there is none."""
    found = _VERDICT.findall(text)
    return found[-1].lower() == "yes" if found else None


# -- cells and the matrix ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cell:
    """One model's answer to one question about one paper, and how to reproduce it."""

    paper_id: str
    question_id: str
    model: str  # the name the matrix shows
    key: str  # sha256 of ``recipe``: the cache key
    recipe: dict[str, Any]  # everything that decides the answer
    status: str  # answered, not_reported, not_found, extractive or error
    answer: dict[str, Any] | None = None  # qa_core.export.answer_json; None on error
    error: str = ""  # one line, when the answer or its yes/no conversion failed
    reported: bool | None = None
    reported_by: str = "status"  # or "binary": the yes/no prompt
    binary_reply: str = ""
    created: str = ""  # ISO 8601 UTC, when the answer was computed
    cached: bool = False

    @property
    def failed(self) -> bool:
        return bool(self.error)


@dataclass(frozen=True, slots=True)
class CellProgress:
    """What ``on_cell`` gets after each cell: done/total and seconds left (None: no estimate)."""

    cell: Cell
    done: int
    total: int
    eta: float | None


@dataclass(slots=True)
class Matrix:
    """The cells of papers × questions × models (absent cells were never run: cancelled)."""

    papers: list[Paper]
    questions: QuestionSet
    models: dict[str, str]  # name -> model@endpoint
    template: Template
    cells: dict[tuple[str, str, str], Cell] = field(default_factory=dict)
    cancelled: bool = False
    computed: int = 0  # answers and yes/no conversions this run computed (not cached)

    @property
    def total(self) -> int:
        return len(self.papers) * len(self.questions.questions) * len(self.models)

    @property
    def failed(self) -> list[Cell]:
        return [c for c in self.cells.values() if c.failed]

    def get(self, paper_id: str, question_id: str, model: str) -> Cell | None:
        return self.cells.get((paper_id, question_id, model))

    def consensus(self, paper_id: str, question_id: str) -> Consensus:
        """The models' majority on whether the paper reports what the question asks."""
        cells = (self.get(paper_id, question_id, m) for m in self.models)
        return majority([c.reported if c else None for c in cells])

    def mark(self, paper_id: str, question_id: str) -> str:
        """The grid's text for a cell: the majority and how many models agree with it, ⚠ when
        they disagree; "—" when not run (cancelled), "error" when no model voted."""
        if all(self.get(paper_id, question_id, name) is None for name in self.models):
            return "—"
        vote = self.consensus(paper_id, question_id)
        if not vote.votes:
            return "error"
        agree = f"{vote.majority} {max(vote.yes, vote.no)}/{len(self.models)}"
        return agree + " ⚠" * vote.disagreement


# -- cache ------------------------------------------------------------------------------------


class MatrixCache:
    """Cell results in SQLite, keyed by :attr:`Cell.key`; safe to share between threads and
    processes (WAL, one connection behind a lock)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            self._db.executescript(
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                "CREATE TABLE IF NOT EXISTS cells (key TEXT PRIMARY KEY, data TEXT NOT NULL);"
                "CREATE TABLE IF NOT EXISTS binary (key TEXT PRIMARY KEY, data TEXT NOT NULL);"
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"Cannot open the matrix cache {self.path}: {exc}.") from exc

    @classmethod
    def for_settings(cls, settings: Settings) -> MatrixCache:
        return cls(settings.data_dir / CACHE_FILE)

    def lookup(self, cell: Cell) -> Cell | None:
        """``cell`` with its cached answer (or error), or None when it was never computed."""
        data = self._get("cells", cell.key)
        if data is None:
            return None
        status = str(data["status"])
        return replace(
            cell,
            status=status,
            answer=data.get("answer"),
            error=str(data.get("error", "")),
            reported=REPORTED.get(status),
            created=str(data.get("created", "")),
            cached=True,
        )

    def store(self, cell: Cell) -> None:
        """Keep a computed answer, or the error of a failed one."""
        error = cell.error if cell.status == "error" else ""  # a failed conversion is not kept
        data = {"status": cell.status, "answer": cell.answer, "error": error}
        self._put("cells", cell.key, data | {"created": cell.created})

    def lookup_conversion(self, cell: Cell, binary: str) -> Cell | None:
        """``cell`` with its cached yes/no conversion by the model ``binary`` (model@url)."""
        data = self._get("binary", _conversion_key(cell, binary))
        return None if data is None else converted(cell, data.get("reported"), data["reply"])

    def store_conversion(self, cell: Cell, binary: str) -> None:
        data = {"reported": cell.reported, "reply": cell.binary_reply}
        self._put("binary", _conversion_key(cell, binary), data)

    def _get(self, table: str, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(f"SELECT data FROM {table} WHERE key = ?", (key,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def _put(self, table: str, key: str, data: dict[str, Any]) -> None:
        text = json.dumps(data, ensure_ascii=False)
        with self._lock:
            self._db.execute(f"INSERT OR REPLACE INTO {table} VALUES (?, ?)", (key, text))
            self._db.commit()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> MatrixCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def converted(cell: Cell, reported: Any, reply: str) -> Cell:
    """``cell`` with a yes/no conversion's verdict (None when the reply had none)."""
    verdict = reported if isinstance(reported, bool) else None
    return replace(cell, reported=verdict, reported_by="binary", binary_reply=reply)


def _conversion_key(cell: Cell, binary: str) -> str:
    return sha([cell.key, binary, _BINARY_HASH])


def sha(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
