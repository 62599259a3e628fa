"""Competency-question matrices: papers × questions × models, each cell cached, with agreement.

A matrix asks every question of a :class:`QuestionSet` about every paper on its own, with one or
several named chat models, and keeps per cell the answer, its verified quotes with pages and a
yes/no "reported" (from the answer's status, or from the seed paper's yes/no prompt with a
``binary`` model). Cells are cached in ``data_dir/matrix_cache.sqlite3`` (shared by the app and
the CLI) under a hash of everything that decides the answer, so re-running an unchanged matrix
makes no LLM call; failed cells are kept as errors and recomputed only with ``retry_failed``.

Models are named on the command line (``--model``) as:

- ``NAME``: the model NAME on the configured endpoint (OPENAI_BASE_URL / OPENAI_API_KEY);
- ``NAME=MODEL@BASE_URL``: the model MODEL on another OpenAI-compatible endpoint, shown as NAME.
  Its API key is read from ``MARGIN_API_KEY_<NAME>`` (NAME upper-cased, other characters as
  ``_``); without it no key is sent (right for Ollama or vLLM on localhost).
"""

from __future__ import annotations

from qa_core.answering.prompts import CITATION
from qa_core.matrix.agreement import (
    LabelReport,
    LabelRow,
    Score,
    heatmap_png,
    load_label_map,
    load_labels,
    pairwise_kappa,
    score_labels,
)
from qa_core.matrix.cells import (
    BINARY_PROMPT,
    BINARY_PROMPT_NAME,
    CACHE_FILE,
    Cell,
    CellProgress,
    Matrix,
    MatrixCache,
    binary_prompt,
    parse_binary,
)
from qa_core.matrix.endpoints import ModelSpec, resolve_models
from qa_core.matrix.export import export
from qa_core.matrix.questions import (
    BUILTIN_NAME,
    Question,
    QuestionSet,
    QuestionSetStore,
    load_csv,
    to_csv,
)
from qa_core.matrix.questions import builtin as builtin_questions
from qa_core.matrix.run import run_matrix
from qa_core.matrix.votes import Consensus, cohen_kappa, majority

__all__ = [
    "BINARY_PROMPT",
    "BINARY_PROMPT_NAME",
    "BUILTIN_NAME",
    "CACHE_FILE",
    "CITATION",
    "Cell",
    "CellProgress",
    "Consensus",
    "LabelReport",
    "LabelRow",
    "Matrix",
    "MatrixCache",
    "ModelSpec",
    "Question",
    "QuestionSet",
    "QuestionSetStore",
    "Score",
    "binary_prompt",
    "builtin_questions",
    "cohen_kappa",
    "export",
    "heatmap_png",
    "load_csv",
    "load_label_map",
    "load_labels",
    "majority",
    "pairwise_kappa",
    "parse_binary",
    "resolve_models",
    "run_matrix",
    "score_labels",
    "to_csv",
]
