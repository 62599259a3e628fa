"""Question sets for matrices: the built-in competency questions, CSV files, saved sets.

A question-set CSV has a header row with the columns ``id,name,question,instructions``;
``id`` and ``question`` are required, ``name`` and ``instructions`` may be left out or empty.
"""

from __future__ import annotations

import builtins
import csv
import io
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

from qa_core._files import slug, write_atomic
from qa_core.answering import prompts
from qa_core.errors import MarginError

__all__ = ["BUILTIN_NAME", "Question", "QuestionSet", "QuestionSetStore", "load_csv", "to_csv"]

BUILTIN_NAME = "Deep-learning methodology (Kommineni et al. 2024)"
COLUMNS = ("id", "name", "question", "instructions")
_REQUIRED = ("id", "question")
_TEXT = "the question CSV"  # where a CSV given as text comes from, in messages
_LOCK = threading.Lock()  # serialises read-modify-write of index.json within a process

# Short names of the 28 competency questions, in their order.
_CQ_NAMES = (
    "Data collection",
    "Data formats",
    "Data annotation",
    "Data augmentation",
    "Datasets",
    "Preprocessing",
    "Data splits",
    "Code repository",
    "Data repository",
    "Code repository link",
    "Data repository link",
    "Model type",
    "Hyperparameters",
    "Hyperparameter tuning",
    "Optimisation techniques",
    "Stopping criteria",
    "Regularisation",
    "Training monitoring",
    "Frameworks",
    "Hardware",
    "Postprocessing",
    "Evaluation metrics",
    "Generalisability",
    "Randomness",
    "Model purpose",
    "Data bias",
    "Deployment process",
    "Deployment platform",
)


@dataclass(frozen=True, slots=True)
class Question:
    """One question of a set; ``instructions`` are added to the prompt for this question only."""

    id: str
    name: str
    question: str
    instructions: str = ""


@dataclass(slots=True)
class QuestionSet:
    """A named list of questions and where they come from."""

    name: str
    citation: str = ""
    questions: list[Question] = field(default_factory=list)

    def subset(self, ids: builtins.list[str]) -> QuestionSet:
        """The questions with these ids, in the set's order."""
        wanted = set(ids)
        unknown = wanted - {q.id for q in self.questions}
        if unknown:
            raise MarginError(
                f"The question set {self.name!r} has no question {sorted(unknown)[0]!r}."
            )
        return QuestionSet(self.name, self.citation, [q for q in self.questions if q.id in wanted])


def builtin() -> QuestionSet:
    """The 28 deep-learning-methodology competency questions, ids cq01 … cq28."""
    texts = prompts.competency_questions()
    questions = [
        Question(f"cq{n:02d}", name, text)
        for n, (name, text) in enumerate(zip(_CQ_NAMES, texts, strict=True), start=1)
    ]
    return QuestionSet(BUILTIN_NAME, prompts.CITATION, questions)


def _text_of(source: str | Path) -> tuple[str, str]:
    """(CSV text, where it came from): a Path or a one-line string is a file name."""
    if isinstance(source, str) and ("\n" in source or "," in source):
        return source, _TEXT
    path = Path(source).expanduser()
    try:
        return path.read_bytes().decode("utf-8-sig"), str(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise MarginError(f"Cannot read the question CSV {path} ({exc}).") from exc


def load_csv(source: str | Path, *, name: str = "", citation: str = "") -> QuestionSet:
    """Parse a question-set CSV (text or file); a :class:`MarginError` names the bad line."""
    text, where = _text_of(source)
    rows = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip().lower() for h in next(rows, [])]
    missing = [c for c in _REQUIRED if c not in header]
    if missing:
        raise MarginError(
            f"Line 1 of {where} has no {missing[0]!r} column; the columns are {','.join(COLUMNS)}."
        )
    questions: list[Question] = []
    first_line: dict[str, int] = {}
    line = rows.line_num
    for raw in rows:
        start, line = line + 1, rows.line_num  # a quoted field may span several lines
        values = {h: v.strip() for h, v in zip(header, raw, strict=False)}
        if not any(values.values()):
            continue
        qid, question = values.get("id", ""), values.get("question", "")
        if not qid:
            raise MarginError(f"Line {start} of {where} has an empty id.")
        if not question:
            raise MarginError(f"Line {start} of {where} (id {qid!r}) has an empty question.")
        if qid in first_line:
            raise MarginError(
                f"Line {start} of {where} repeats the id {qid!r} of line {first_line[qid]}; "
                "ids must be unique."
            )
        first_line[qid] = start
        questions.append(
            Question(qid, values.get("name", ""), question, values.get("instructions", ""))
        )
    if not questions:
        raise MarginError(f"{where[0].upper()}{where[1:]} has no questions below its header.")
    return QuestionSet(name or ("" if where == _TEXT else Path(where).stem), citation, questions)


def to_csv(questions: QuestionSet) -> str:
    """The set as CSV text with the header ``id,name,question,instructions``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for q in questions.questions:
        writer.writerow((q.id, q.name, q.question, q.instructions))
    return out.getvalue()


class QuestionSetStore:
    """The built-in set plus the user's sets: ``data_dir/question_sets/<slug>.csv``.

    ``index.json`` beside them maps each set's name to its file and citation.
    """

    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir) / "question_sets"

    def _index(self) -> dict[str, dict[str, str]]:
        path = self.root / "index.json"
        if not path.exists():
            return {}
        try:
            loaded: dict[str, dict[str, str]] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise MarginError(f"The question-set index {path} cannot be read ({exc}).") from exc
        return loaded

    def names(self) -> builtins.list[str]:
        """The built-in set's name, then the saved sets' names, sorted."""
        return [BUILTIN_NAME, *sorted(self._index())]

    def list(self) -> builtins.list[QuestionSet]:
        """Every set: the built-in one first."""
        return [self.get(name) for name in self.names()]

    def get(self, name_or_path: str) -> QuestionSet:
        """The built-in set, a saved set or a CSV file, in that order."""
        if name_or_path == BUILTIN_NAME:
            return builtin()
        entry = self._index().get(name_or_path)
        if entry is not None:
            path = self.root / f"{entry['slug']}.csv"
            return load_csv(path, name=name_or_path, citation=entry.get("citation", ""))
        path = Path(name_or_path).expanduser()
        if path.suffix.lower() == ".csv" or path.exists():
            return load_csv(path)
        names = ", ".join(repr(n) for n in self.names())
        raise MarginError(
            f"No question set is named {name_or_path!r}; choose one of {names} or give a .csv file."
        )

    def save(self, questions: QuestionSet) -> QuestionSet:
        """Store ``questions`` under its name (replacing a saved set of that name)."""
        name = questions.name.strip()
        if not name or len(name) > 80 or any(c in name for c in "\r\n\t"):
            raise MarginError("A question set's name must be one line of 1 to 80 characters.")
        if name.casefold() == BUILTIN_NAME.casefold():
            raise MarginError(f"{name!r} is the built-in set; save yours under another name.")
        load_csv(to_csv(questions))  # the same checks as a file the user wrote
        with _LOCK:
            index = self._index()
            stem = index.get(name, {}).get("slug") or slug(name, "questions")
            write_atomic(self.root / f"{stem}.csv", to_csv(questions))
            index[name] = {"slug": stem, "citation": questions.citation}
            write_atomic(self.root / "index.json", json.dumps(index, indent=1, ensure_ascii=False))
        return QuestionSet(name, questions.citation, list(questions.questions))

    def delete(self, name: str) -> None:
        """Forget a saved set (the built-in one cannot be deleted)."""
        with _LOCK:
            index = self._index()
            entry = index.pop(name, None)
            if entry is None:
                raise MarginError(f"No saved question set is named {name!r}.")
            write_atomic(self.root / "index.json", json.dumps(index, indent=1, ensure_ascii=False))
            (self.root / f"{entry['slug']}.csv").unlink(missing_ok=True)
