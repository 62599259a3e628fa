"""Instruction templates: checking, presets, rendering, and fitting a prompt to the token budget.

Saved templates and their versions live in :mod:`qa_core.answering.template_store`; how to
write a template is :data:`HOW_TO`, which the app shows.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

import tiktoken

from qa_core import tokens
from qa_core.errors import PromptTooLong, TemplateError
from qa_core.models import Context

__all__ = [
    "CITATION",
    "DEFAULT_TEMPLATE_NAME",
    "HOW_TO",
    "MESSAGE_OVERHEAD_TOKENS",
    "MIN_PASSAGE_TOKENS",
    "NOT_REPORTED_SENTINEL",
    "PRESETS",
    "SEED_TEMPLATE_NAME",
    "Prompt",
    "Template",
    "assemble",
    "competency_questions",
    "fit",
    "format_context",
    "render",
    "validate",
]

HOW_TO = """\
- Write `{context}` where the retrieved passages should go and `{question}` where the question
  goes; both are required.
- `{instructions}` is optional: it is replaced by a question's extra instructions (for example
  the answer format a question set asks for), and by nothing when there are none.
- To write a literal brace, double it: `{{` or `}}`. Any other text in braces is an error.
"""
"""How to write a template, for the people who write them (Markdown)."""
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

    def blocks(self, contexts: Sequence[Context]) -> list[str]:
        """The passages as this template shows them: numbered blocks, or raw chunk texts."""
        if not self.numbered:
            return [c.hit.chunk.text for c in contexts]
        return [
            format_context(
                c.n,
                c.hit.title,
                c.hit.chunk.page_start,
                c.hit.chunk.page_end,
                c.hit.chunk.text,
                c.hit.chunk.section,
            )
            for c in contexts
        ]


@dataclass(frozen=True, slots=True)
class Prompt:
    """A prompt as it will be sent, and the ranked passages that fit into it."""

    text: str
    contexts: tuple[Context, ...]
    tokens: int


def assemble(
    template: Template,
    question: str,
    contexts: Sequence[Context],
    *,
    encoding: tiktoken.Encoding,
    context_window: int,
    answer_tokens: int,
    instructions: str = "",
) -> Prompt:
    """The one way a prompt is made (app, CLI, matrix, evaluations): blocks, then :func:`fit`."""
    text, used, count = fit(
        template,
        question,
        template.blocks(contexts),
        encoding=encoding,
        context_window=context_window,
        answer_tokens=answer_tokens,
        instructions=instructions,
    )
    return Prompt(text, tuple(contexts[:used]), count)


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
