"""Instruction templates: checking, presets, rendering, saved versions and the token budget.

How to write a template (the app shows this text):

- ``{context}`` (required) is where the retrieved passages go.
- ``{question}`` (required) is where the question goes.
- ``{instructions}`` (optional) is where per-question extra instructions go; it renders as
  nothing when there are none. A template without it ignores extra instructions.
- Braces follow Python's ``str.format`` rules: write ``{{`` and ``}}`` for a literal ``{`` or
  ``}``. Nothing else may stand in braces: no positional fields (``{}``, ``{0}``), conversions
  (``{context!r}``), format specs (``{context:>10}``) or attribute/index access
  (``{question.x}``, ``{question[0]}``).
"""

from __future__ import annotations

import builtins
import difflib
import hashlib
import json
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TypedDict

import tiktoken

from qa_core import tokens
from qa_core._files import slug, write_atomic
from qa_core.errors import PromptTooLong, TemplateError

__all__ = [
    "CITATION",
    "DEFAULT_TEMPLATE_NAME",
    "MESSAGE_OVERHEAD_TOKENS",
    "MIN_PASSAGE_TOKENS",
    "NOT_REPORTED_SENTINEL",
    "PRESETS",
    "SEED_TEMPLATE_NAME",
    "Template",
    "TemplateStore",
    "competency_questions",
    "fit",
    "format_context",
    "render",
    "validate",
]

NOT_REPORTED_SENTINEL = "NOT REPORTED"
"""The line the Evidence-first template asks for when the passages do not report the answer."""
SEED_TEMPLATE_NAME = "Seed pipeline (Kommineni et al. 2024)"
DEFAULT_TEMPLATE_NAME = "Evidence-first"
CITATION = (
    "Kommineni, V. K., König-Ries, B., & Samuel, S. Harnessing multiple LLMs for Information "
    "Retrieval: A case study on Deep Learning methodologies in Biodiversity publications. "
    "arXiv:2411.09269 (2024); PeerJ Computer Science 11:e3204 (2025). Apache-2.0."
)
MESSAGE_OVERHEAD_TOKENS = 16
"""Tokens kept free for the chat API's message framing (role markers etc.)."""
MIN_PASSAGE_TOKENS = 32
"""Below this many tokens of passage text, a prompt is not worth sending."""

_REQUIRED = {
    "context": "add it where the retrieved passages should go",
    "question": "add it where the question should go",
}
_ALLOWED = frozenset({*_REQUIRED, "instructions"})
_PLACEHOLDERS = "the placeholders are {context}, {question} and optionally {instructions}"
_FIELD = re.compile(r"\{([^{}]*)\}")
_NESTED = re.compile(r"\{[^{}]*[!:]")  # "{name:{" or "{name!{": a field nested in a spec
_SEPARATOR = "\n\n"
_ELLIPSIS = " …"
_MAX_NAME = 80
_INDEX_LOCK = threading.Lock()  # serialises read-modify-write of index.json within a process


class _Entry(TypedDict):
    slug: str
    numbered: bool
    versions: list[str]  # content hashes, oldest first


def _data_text(name: str) -> str:
    # Bytes, not read_text: universal-newline decoding would not be byte-exact.
    return resources.files("qa_core").joinpath("data", name).read_bytes().decode("utf-8")


@dataclass(frozen=True, slots=True)
class Template:
    """A named instruction template; ``numbered`` means its passages are [n]-numbered blocks
    (see :func:`format_context`), otherwise they are raw chunk texts."""

    name: str
    text: str
    numbered: bool = True

    @property
    def hash(self) -> str:
        """First 12 hex digits of the sha256 of the text: identifies a version."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:12]

    def validate(self) -> None:
        """Raise :class:`TemplateError` if the text is not a usable template."""
        validate(self.text)


def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _where(text: str, pos: int) -> str:
    column = pos - text.rfind("\n", 0, pos)
    return f"line {_line(text, pos)}, column {column}"


def _check_field(text: str, start: int, body: str) -> str:
    """The placeholder name in ``{body}`` at ``start``, or a TemplateError naming the problem."""
    where = _where(text, start)
    if body == "" or body.isdigit():
        raise TemplateError(
            f"Positional placeholder {{{body}}} at {where}; {_PLACEHOLDERS}. "
            "Write {{ and }} for literal braces."
        )
    name = re.split(r"[!:.\[]", body, maxsplit=1)[0]
    if name != body and name in _ALLOWED:
        raise TemplateError(
            f"Placeholder {{{body}}} at {where} uses a conversion, format spec or attribute "
            f"access, which templates do not support; write just {{{name}}}."
        )
    if body not in _ALLOWED:
        raise TemplateError(
            f"Unknown placeholder {{{body}}} at line {_line(text, start)}; {_PLACEHOLDERS}. "
            "Write {{ and }} for literal braces."
        )
    return body


def validate(text: str) -> None:
    """Raise :class:`TemplateError` naming the first problem in ``text`` and where it is.

    Scans with ``str.format``'s brace rules; a text it accepts formats without error.
    """
    if not text.strip():
        raise TemplateError(
            "The template is empty; write instructions with {context} and {question}."
        )
    seen: set[str] = set()
    pos = 0
    for match in re.finditer(r"[{}]", text):
        start = match.start()
        if start < pos:  # inside a placeholder or an escaped pair already consumed
            continue
        brace = match.group()
        if text.startswith(brace * 2, start):
            pos = start + 2
            continue
        if brace == "}":
            raise TemplateError(
                f"Unbalanced '}}' at {_where(text, start)}; write '}}}}' for a literal brace."
            )
        field = _FIELD.match(text, start)
        if field is None:
            if _NESTED.match(text, start):
                raise TemplateError(
                    f"Nested placeholder in a format spec at {_where(text, start)}; "
                    f"{_PLACEHOLDERS}. Write {{{{ and }}}} for literal braces."
                )
            raise TemplateError(
                f"Unbalanced '{{' at {_where(text, start)}; close it with '}}' "
                "or write '{{' for a literal brace."
            )
        seen.add(_check_field(text, start, field.group(1)))
        pos = field.end()
    for name, hint in _REQUIRED.items():
        if name not in seen:
            raise TemplateError(f"The template has no {{{name}}} placeholder; {hint}.")


def render(
    template: Template, question: str, contexts: Sequence[str], *, instructions: str = ""
) -> str:
    """The prompt: ``template`` with the contexts joined by a blank line, and the question."""
    validate(template.text)
    return template.text.format_map(
        {"context": _SEPARATOR.join(contexts), "question": question, "instructions": instructions}
    )


def format_context(
    n: int, title: str, page_start: int, page_end: int, text: str, section: str = ""
) -> str:
    """One Evidence-first passage: ``[n] Title — p. 3 — Section``, a newline, then the text."""
    pages = f"p. {page_start}" if page_end <= page_start else f"pp. {page_start}–{page_end}"
    header = " — ".join(part for part in (f"[{n}] {title}".rstrip(), pages, section) if part)
    return f"{header}\n{text}"


PRESETS: dict[str, Template] = {
    DEFAULT_TEMPLATE_NAME: Template(DEFAULT_TEMPLATE_NAME, _data_text("evidence_first.txt")),
    SEED_TEMPLATE_NAME: Template(
        SEED_TEMPLATE_NAME, _data_text("seed_prompt_template.txt"), numbered=False
    ),
}
"""Built-in templates; Evidence-first is the default."""


def competency_questions(*, exact: bool = False) -> list[str]:
    """The 28 deep-learning-methodology questions (see :data:`CITATION`).

    Two lines carry a trailing space in the original; ``exact=True`` keeps it, which is what
    reproducing the seed pipeline's prompts byte for byte needs.
    """
    lines = _data_text("competency_questions.txt").splitlines()
    return [line if exact else line.rstrip() for line in lines if line.strip()]


class TemplateStore:
    """Presets plus the user's saved templates under ``data_dir/templates``.

    Every saved version is kept as ``<slug>/<hash>.txt``; ``index.json`` maps each name to its
    versions (oldest first) and ``active.json`` names the active template. Writes are atomic.
    """

    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir) / "templates"

    def _index(self) -> dict[str, _Entry]:
        path = self.root / "index.json"
        if not path.exists():
            return {}
        try:
            loaded: dict[str, _Entry] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise TemplateError(f"The template index {path} cannot be read ({exc}).") from exc
        return loaded

    def _load(self, name: str, entry: _Entry, version: str | None = None) -> Template:
        path = self.root / entry["slug"] / f"{version or entry['versions'][-1]}.txt"
        try:
            text = path.read_bytes().decode("utf-8")
        except OSError as exc:
            raise TemplateError(f"The saved template {name!r} is missing its file {path}.") from exc
        return Template(name, text, numbered=entry["numbered"])

    def list(self) -> builtins.list[Template]:
        """Presets first, then saved templates (latest version each) by name."""
        saved = [self._load(name, entry) for name, entry in sorted(self._index().items())]
        return [*PRESETS.values(), *saved]

    def versions(self, name: str) -> builtins.list[Template]:
        """Every saved version of ``name``, oldest first (a preset has just one)."""
        if name in PRESETS:
            return [PRESETS[name]]
        entry = self._index().get(name)
        if entry is None:
            raise TemplateError(f"No saved template is named {name!r}.")
        return [self._load(name, entry, version) for version in entry["versions"]]

    def get(self, name_or_path: str) -> Template:
        """A preset, a saved template (latest version) or a ``.txt`` file, in that order.

        Paths are for the CLI and scripts; a public app should pass names only.
        """
        if name_or_path in PRESETS:
            return PRESETS[name_or_path]
        entry = self._index().get(name_or_path)
        if entry is not None:
            return self._load(name_or_path, entry)
        path = Path(name_or_path).expanduser()
        if path.suffix.lower() == ".txt" or path.exists():
            try:
                text = path.read_bytes().decode("utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise TemplateError(f"The template file {path} cannot be read ({exc}).") from exc
            template = Template(path.stem, text)
            template.validate()
            return template
        names = ", ".join(repr(t.name) for t in self.list())
        raise TemplateError(
            f"No template is named {name_or_path!r}; choose one of {names} or give a .txt file."
        )

    def save(self, name: str, text: str, *, numbered: bool = True) -> Template:
        """Validate, then store ``text`` as the latest version of ``name``."""
        name = name.strip()
        if not name or len(name) > _MAX_NAME or any(c in name for c in "\r\n\t"):
            raise TemplateError(f"A template name must be one line of 1 to {_MAX_NAME} characters.")
        if name.casefold() in {preset.casefold() for preset in PRESETS}:
            raise TemplateError(f"{name!r} is a built-in template; save yours under another name.")
        template = Template(name, text, numbered=numbered)
        template.validate()
        with _INDEX_LOCK:
            index = self._index()
            old = index.get(name)
            folder = old["slug"] if old else slug(name, "template")
            # Re-saving an older text makes it the latest again instead of duplicating it.
            versions = [v for v in (old["versions"] if old else []) if v != template.hash]
            path = self.root / folder / f"{template.hash}.txt"
            if not path.exists():
                write_atomic(path, text)
            index[name] = {
                "slug": folder,
                "numbered": numbered,
                "versions": [*versions, template.hash],
            }
            write_atomic(self.root / "index.json", json.dumps(index, indent=1, ensure_ascii=False))
        return template

    def active(self) -> Template:
        """The active template; Evidence-first unless another was chosen and still exists."""
        path = self.root / "active.json"
        try:
            name = json.loads(path.read_text(encoding="utf-8"))["name"]
            return self.get(str(name))
        except (OSError, ValueError, KeyError, TypeError, TemplateError):
            return PRESETS[DEFAULT_TEMPLATE_NAME]

    def set_active(self, name: str) -> Template:
        """Make the preset or saved template ``name`` the active one."""
        if name not in PRESETS and name not in self._index():
            raise TemplateError(f"No template is named {name!r}; save it before making it active.")
        write_atomic(self.root / "active.json", json.dumps({"name": name}, ensure_ascii=False))
        return self.get(name)

    @staticmethod
    def diff(a: Template, b: Template) -> str:
        """A unified diff from ``a`` to ``b`` (empty when the texts are equal)."""
        lines = difflib.unified_diff(
            a.text.splitlines(),
            b.text.splitlines(),
            fromfile=f"{a.name} ({a.hash})",
            tofile=f"{b.name} ({b.hash})",
            lineterm="",
        )
        return "\n".join(lines)


def fit(
    template: Template,
    question: str,
    blocks: Sequence[str],
    *,
    encoding: tiktoken.Encoding,
    context_window: int,
    answer_tokens: int,
    instructions: str = "",
) -> tuple[str, int, int]:
    """The longest prefix of ``blocks`` (ranked order kept) whose prompt fits the window.

    Returns ``(prompt, blocks used, prompt tokens)``, the count exact for ``encoding``. The
    prompt plus ``answer_tokens`` plus :data:`MESSAGE_OVERHEAD_TOKENS` stays within
    ``context_window``. When not even the first block fits whole, its text is cut at a token
    boundary and marked with " …" (one block used) rather than sending no evidence; if not even
    :data:`MIN_PASSAGE_TOKENS` of it fit, or the template and question alone do not fit,
    :class:`PromptTooLong` is raised.
    """
    budget = context_window - answer_tokens - MESSAGE_OVERHEAD_TOKENS
    base = render(template, question, [], instructions=instructions)
    base_tokens = tokens.count(base, encoding)
    if base_tokens > budget:
        raise PromptTooLong(
            f"The template and question alone need {base_tokens} tokens but the model's context "
            f"window is {context_window} (with {answer_tokens} reserved for the answer); "
            "shorten them or raise MARGIN_CONTEXT_WINDOW."
        )
    separator = tokens.count(_SEPARATOR, encoding)
    used, total = 0, base_tokens
    for block in blocks:  # counts are nearly additive; the exact check follows
        cost = tokens.count(block, encoding) + (separator if used else 0)
        if total + cost > budget:
            break
        used, total = used + 1, total + cost
    while used:
        prompt = render(template, question, blocks[:used], instructions=instructions)
        count = tokens.count(prompt, encoding)
        if count <= budget:
            return prompt, used, count
        used -= 1
    if not blocks:
        return base, 0, base_tokens
    ids = encoding.encode(blocks[0], disallowed_special=())
    keep = budget - base_tokens - tokens.count(_ELLIPSIS, encoding)
    while keep >= MIN_PASSAGE_TOKENS:
        # A cut can split a multi-byte character; drop the partial bytes.
        cut = encoding.decode_bytes(ids[:keep]).decode("utf-8", errors="ignore").rstrip()
        prompt = render(template, question, [cut + _ELLIPSIS], instructions=instructions)
        count = tokens.count(prompt, encoding)
        if count <= budget:
            return prompt, 1, count
        keep -= count - budget
    raise PromptTooLong(
        f"The template and question leave only {budget - base_tokens} tokens for passages in "
        f"the model's context window of {context_window} (with {answer_tokens} reserved for the "
        "answer); shorten them or raise MARGIN_CONTEXT_WINDOW."
    )
