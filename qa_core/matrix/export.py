"""Matrix exports with provenance: wide (paper × question) or long (cell × model), CSV or JSON.

A long row carries everything needed to reproduce its cell: the paper id (a hash of the PDF),
the question and its instructions, the template's name and hash, the model and its endpoint,
and the retrieval and generation settings.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO

from qa_core.errors import MarginError

if TYPE_CHECKING:
    from qa_core.matrix.cells import Cell, Matrix

__all__ = ["export", "long_rows", "wide_rows"]

Shape = Literal["wide", "long"]
Format = Literal["csv", "json"]


def _yes_no(value: bool | None) -> str:
    return "" if value is None else "yes" if value else "no"


def _items(matrix: Matrix) -> Iterator[tuple[dict[str, Any], str]]:
    """The paper and question columns of each (paper, question), and the paper id."""
    for paper in matrix.papers:
        for q in matrix.questions.questions:
            yield (
                {
                    "paper_id": paper.paper_id,
                    "title": paper.title,
                    "doi": paper.doi or "",
                    "question_id": q.id,
                    "question_name": q.name,
                    "question": q.question,
                },
                q.instructions,
            )


def _vote(cell: Cell | None) -> str:
    if cell is None:
        return "missing"
    if cell.status == "error":
        return "error"
    return _yes_no(cell.reported)


def wide_rows(matrix: Matrix) -> list[dict[str, Any]]:
    """One row per (paper, question): the majority, its k of n, and each model's vote."""
    rows = []
    for row, _ in _items(matrix):
        vote = matrix.consensus(row["paper_id"], row["question_id"])
        share = vote.agreement
        row |= {
            "majority": vote.majority,
            "yes": vote.yes,
            "no": vote.no,
            "votes": vote.votes,
            "agreement": "" if share is None else round(share, 3),
            "disagreement": vote.disagreement,
        }
        for model in matrix.models:
            row[f"model:{model}"] = _vote(matrix.get(row["paper_id"], row["question_id"], model))
        rows.append(row)
    return rows


def long_rows(matrix: Matrix, *, detail: bool = False) -> list[dict[str, Any]]:
    """One row per cell and model; ``detail`` adds the whole answer (prompt, passages)."""
    rows = []
    for base, instructions in _items(matrix):
        for model, model_id in matrix.models.items():
            cell = matrix.get(base["paper_id"], base["question_id"], model)
            if cell is None:
                continue
            answer = cell.answer or {}
            usage = answer.get("usage") or {}
            row = base | {
                "instructions": instructions,
                "model": model,
                "model_id": model_id,
                "status": cell.status,
                "reported": _yes_no(cell.reported),
                "reported_by": cell.reported_by,
                "answer": answer.get("answer", ""),
                "quotes": [
                    {k: q.get(k) for k in ("text", "status", "paper_id", "page")}
                    for q in answer.get("quotes", [])
                ],
                "error": cell.error,
                "template": matrix.template.name,
                "template_hash": cell.recipe["template_hash"],
                "retrieval": cell.recipe["retrieval"],
                "generation": cell.recipe["generation"],
                "prompt_tokens": usage.get("prompt_tokens", ""),
                "completion_tokens": usage.get("completion_tokens", ""),
                "created": cell.created,
                "cached": cell.cached,
                "key": cell.key,
            }
            if detail:
                row["detail"] = cell.answer
            rows.append(row)
    return rows


def _csv_value(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _render(matrix: Matrix, shape: Shape, fmt: Format) -> str:
    if fmt == "json":
        rows = wide_rows(matrix) if shape == "wide" else long_rows(matrix, detail=True)
        document = {
            "question_set": matrix.questions.name,
            "citation": matrix.questions.citation,
            "template": {"name": matrix.template.name, "hash": matrix.template.hash},
            "models": matrix.models,
            "exported": datetime.now(UTC).isoformat(timespec="seconds"),
            "shape": shape,
            "complete": not matrix.cancelled,
            "rows": rows,
        }
        return json.dumps(document, ensure_ascii=False, indent=1) + "\n"
    rows = wide_rows(matrix) if shape == "wide" else long_rows(matrix)
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: _csv_value(v) for k, v in row.items()} for row in rows)
    return out.getvalue()


def export(
    matrix: Matrix,
    target: str | Path | TextIO,
    *,
    shape: Shape = "wide",
    fmt: Format | None = None,
) -> None:
    """Write the matrix as CSV or JSON (``fmt`` defaults to the file's suffix)."""
    if shape not in ("wide", "long"):
        raise MarginError(f"Unknown export shape {shape!r}; use 'wide' or 'long'.")
    if fmt is None:
        suffix = Path(target).suffix.lower() if isinstance(target, str | Path) else ""
        if suffix not in (".csv", ".json"):
            raise MarginError("Export to a file ending in .csv or .json.")
        fmt = "csv" if suffix == ".csv" else "json"
    text = _render(matrix, shape, fmt)
    if not isinstance(target, str | Path):
        target.write(text)
        return
    try:
        Path(target).write_text(text, encoding="utf-8", newline="")
    except OSError as exc:
        raise MarginError(f"Cannot write {target}: {exc.strerror}.") from exc
