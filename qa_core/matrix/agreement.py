"""Agreement in a matrix: majority votes, Cohen's κ between models, scores against human labels,
and a heatmap of how far the models agree."""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from qa_core.errors import MarginError
from qa_core.matrix.cells import Matrix
from qa_core.matrix.votes import cohen_kappa
from qa_core.models import Paper

__all__ = [
    "LabelReport",
    "LabelRow",
    "Score",
    "heatmap_png",
    "load_label_map",
    "load_labels",
    "pairwise_kappa",
    "score_labels",
]

_YES = {"y", "yes", "true", "1"}
_NO = {"n", "no", "false", "0"}
_ID_COLUMNS = {"no", "id", "paper_id", "article_name", "title", "doi"}


def pairwise_kappa(matrix: Matrix) -> dict[tuple[str, str], float | None]:
    """κ between every two models over all (paper, question) cells, on reported yes/no."""
    items = [(p.paper_id, q.id) for p in matrix.papers for q in matrix.questions.questions]

    def ratings(model: str) -> list[bool | None]:
        return [
            cell.reported if (cell := matrix.get(pid, qid, model)) else None for pid, qid in items
        ]

    return {
        (a, b): cohen_kappa(ratings(a), ratings(b))
        for a, b in itertools.combinations(matrix.models, 2)
    }


# -- human labels -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LabelRow:
    """One paper's human y/n labels and what identifies the paper."""

    line: int
    title: str
    doi: str
    values: dict[str, bool | None]
    paper_id: str = ""

    def matches(self, paper: Paper) -> bool:
        """Same paper id, else same DOI, else the same title (ignoring case and punctuation)."""
        if self.paper_id:
            return self.paper_id == paper.paper_id
        if self.doi and paper.doi:
            return _doi(self.doi) == _doi(paper.doi)
        return bool(self.title) and _plain(self.title) == _plain(paper.title)


def _doi(text: str) -> str:
    return re.sub(r"^(?:https?://(?:dx\.)?doi\.org/|doi:)", "", text.strip().lower())


def _plain(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.casefold())


def _read(source: str | Path, what: str) -> str:
    """A Path is a file; a string is the text itself when it has a newline or is JSON."""
    if isinstance(source, str) and ("\n" in source or source.lstrip().startswith("{")):
        return source
    try:
        return Path(source).expanduser().read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise MarginError(f"Cannot read the {what} {source} ({exc}).") from exc


def load_labels(source: str | Path) -> list[LabelRow]:
    """Human labels: one paper per row, y/n columns, and ``DOI``/``Article_name``/``paper_id``."""
    rows = list(csv.reader(io.StringIO(_read(source, "labels file"))))
    if not rows:
        raise MarginError(f"The labels file {source} is empty.")
    header = [h.strip() for h in rows[0]]
    keys = [h.lower().replace(" ", "_") for h in header]
    if not {"doi", "title", "article_name", "paper_id"} & set(keys):
        raise MarginError(
            "Line 1 of the labels file needs a DOI, title, Article_name or paper_id column."
        )
    labels = []
    for line, row in enumerate(rows[1:], start=2):
        cells = dict(zip(keys, (c.strip() for c in row), strict=False))
        if not any(cells.values()):
            continue
        values: dict[str, bool | None] = {}
        for name, key in zip(header, keys, strict=True):
            text = cells.get(key, "").lower()
            if key not in _ID_COLUMNS:
                values[name] = True if text in _YES else False if text in _NO else None
        title = cells.get("title") or cells.get("article_name", "")
        labels.append(
            LabelRow(line, title, cells.get("doi", ""), values, cells.get("paper_id", ""))
        )
    return labels


def load_label_map(source: str | Path | None = None) -> dict[str, list[str]]:
    """Label variable -> question ids, from JSON (``{"variables": {var: [ids]}}`` or just
    ``{var: [ids]}``) or CSV (``variable,questions`` with ids separated by ``;``).

    Without ``source``, the map shipped for the 28 competency questions.
    """
    if source is None:
        text = resources.files("qa_core").joinpath("data", "labels_map.json").read_text("utf-8")
    else:
        text = _read(source, "label map")
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
            data = data.get("variables", data)
            return {
                str(k): [v] if isinstance(v, str) else [str(i) for i in v] for k, v in data.items()
            }
        except (ValueError, AttributeError, TypeError) as exc:
            raise MarginError(
                f"The label map {source} is not valid JSON of lists ({exc})."
            ) from exc
    mapping: dict[str, list[str]] = {}
    for line, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if line == 1 or not any(c.strip() for c in row):
            continue
        if len(row) < 2 or not row[0].strip():
            raise MarginError(f"Line {line} of the label map needs a variable and question ids.")
        mapping[row[0].strip()] = [q.strip() for q in re.split(r"[;\s]+", row[1]) if q.strip()]
    return mapping


@dataclass(frozen=True, slots=True)
class Score:
    """Agreement of the matrix's yes/no with the human labels for one variable (or all)."""

    variable: str
    questions: tuple[str, ...]
    n: int
    correct: int
    kappa: float | None
    undecided: int = 0  # labelled papers whose predicted value was a tie or missing

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.n if self.n else None


@dataclass(frozen=True, slots=True)
class LabelReport:
    """Scores per variable and overall, and the label rows no paper of the matrix matched."""

    variables: list[Score]
    overall: Score
    unmatched: list[LabelRow]


def _predict(matrix: Matrix, paper_id: str, qids: Sequence[str]) -> bool | None:
    """A variable is reported when any of its questions' majority says yes."""
    majorities = [matrix.consensus(paper_id, q).majority for q in qids]
    if "yes" in majorities:
        return True
    return False if majorities and all(m == "no" for m in majorities) else None


def score_labels(
    matrix: Matrix, labels: Sequence[LabelRow], mapping: Mapping[str, Sequence[str]]
) -> LabelReport:
    """Accuracy and κ of the majority yes/no against human y/n, per variable and overall."""
    present = {q.id for q in matrix.questions.questions}
    matched = {p.paper_id: row for p in matrix.papers for row in labels if row.matches(p)}
    unmatched = [row for row in labels if row not in matched.values()]
    scores: list[Score] = []
    all_pred: list[bool | None] = []
    all_gold: list[bool | None] = []
    for variable, qids in mapping.items():
        used = tuple(q for q in qids if q in present)
        pred: list[bool | None] = []
        gold: list[bool | None] = []
        for pid, row in matched.items():
            human = row.values.get(variable)
            if human is not None and used:
                pred.append(_predict(matrix, pid, used))
                gold.append(human)
        all_pred += pred
        all_gold += gold
        scores.append(_score(variable, used, pred, gold))
    overall = _score("overall", tuple(sorted(present)), all_pred, all_gold)
    return LabelReport(scores, overall, unmatched)


def _score(
    variable: str, qids: tuple[str, ...], pred: list[bool | None], gold: list[bool | None]
) -> Score:
    decided = [(p, g) for p, g in zip(pred, gold, strict=True) if p is not None]
    return Score(
        variable,
        qids,
        len(decided),
        sum(p == g for p, g in decided),
        cohen_kappa([p for p, _ in decided], [g for _, g in decided]),
        len(pred) - len(decided),
    )


# -- heatmap ----------------------------------------------------------------------------------

_CELL_W, _CELL_H, _PAD = 34, 22, 8
_NO_VOTES = (225, 225, 225)
_SCALE = ((0.5, (215, 48, 39)), (0.75, (254, 224, 139)), (1.0, (26, 152, 80)))


def _colour(share: float) -> tuple[int, int, int]:
    for (lo, c0), (hi, c1) in itertools.pairwise(_SCALE):
        if share <= hi:
            t = max(0.0, (share - lo) / (hi - lo))
            r, g, b = (round(x + (y - x) * t) for x, y in zip(c0, c1, strict=True))
            return r, g, b
    return _SCALE[-1][1]


def heatmap_png(matrix: Matrix) -> bytes:
    """Papers × questions; colour = share of models agreeing with the majority (red: a tie,
    green: unanimous, grey: no votes); the letter is the majority (Y, N, or T for a tie)."""
    font = ImageFont.load_default(size=11)
    labels = [(p.title or p.file or p.paper_id)[:48] for p in matrix.papers]
    left = _PAD + max([int(font.getlength(t)) for t in labels] + [60]) + _PAD
    top = _PAD + 18
    questions = matrix.questions.questions
    width = max(left + _CELL_W * len(questions) + _PAD, 460)
    height = top + _CELL_H * len(labels) + 44
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    for j, q in enumerate(questions):
        x = left + j * _CELL_W + _CELL_W / 2
        draw.text((x, top - 4), q.id[:5], fill="black", font=font, anchor="ms")
    for i, (paper, label) in enumerate(zip(matrix.papers, labels, strict=True)):
        y = top + i * _CELL_H
        draw.text((_PAD, y + _CELL_H / 2), label, fill="black", font=font, anchor="lm")
        for j, q in enumerate(questions):
            x = left + j * _CELL_W
            vote = matrix.consensus(paper.paper_id, q.id)
            share = vote.agreement
            fill = _NO_VOTES if share is None else _colour(share)
            draw.rectangle((x, y, x + _CELL_W - 2, y + _CELL_H - 2), fill=fill)
            if vote.majority:
                dark = sum(fill) < 380
                draw.text(
                    (x + _CELL_W / 2 - 1, y + _CELL_H / 2 - 1),
                    {"yes": "Y", "no": "N", "tie": "T"}[vote.majority],
                    fill="white" if dark else "black",
                    font=font,
                    anchor="mm",
                )
    legend = top + _CELL_H * len(labels) + 10
    for k, share in enumerate((0.5, 0.625, 0.75, 0.875, 1.0)):
        draw.rectangle(
            (_PAD + k * 22, legend, _PAD + k * 22 + 20, legend + 12), fill=_colour(share)
        )
    draw.text(
        (_PAD + 5 * 22 + 6, legend + 6),
        "share of models agreeing with the majority: 50% (tie) … 100%; grey: no votes",
        fill="black",
        font=font,
        anchor="lm",
    )
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
