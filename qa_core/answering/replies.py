"""Read the model's reply: the answer body, whether it abstained, its [n] citations and quotes.

Three reply shapes are understood: the seed prompt's ``Answer:::`` block (only the text between
the markers is kept, without "Answer:" / "Helpful Answer:" labels), the evidence-first format
(prose with ``[n]`` citations and double-quoted quotes) and plain prose.

A reply is ``not_reported`` when it is empty, when it is or starts with the sentinel (alone on
its first line, or followed by punctuation: "NOT REPORTED. The passages only ..."), or when it
only abstains: an abstention phrase ("does not mention", "I don't know", ...) in the first
sentence, no citation and no quote, at most two sentences, and no "but"/"however" that would
introduce a partial answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from qa_core.answering.normalize import MIN_QUOTE_CHARS, normalize
from qa_core.models import QuoteCandidate

__all__ = ["Parsed", "QuoteCandidate", "parse"]


@dataclass(frozen=True, slots=True)
class Parsed:
    """What a reply says: its body, status, cited [n] in order of use, and its quotes."""

    body: str
    status: Literal["answered", "not_reported"]
    citations: tuple[int, ...]
    quotes: tuple[QuoteCandidate, ...]


_MARKER = re.compile(r"\banswer\s*:::", re.IGNORECASE)
_LABEL = re.compile(
    r"^\s*(?:\*\*)?(?:helpful answer|final answer|answer)\s*(?:\*\*)?\s*:(?!::)(?:\*\*)?\s*",
    re.IGNORECASE,
)
# A quote runs from an opening to a closing double quote (straight or curly, mixed is fine) and
# never across a blank line, so a stray inch mark cannot swallow a paragraph.
_QUOTE = re.compile(r'["“]((?:(?!\n[^\S\n]*\n)[^"“”])+)["”]')
_CITE = re.compile(r"\[(\s*\d+\s*(?:[,;–-]\s*\d+\s*)*)\]")
_CITES_AFTER = re.compile(r"[\s,.;:)]{0,3}(\[[\d\s,;–-]+\])")
_CITE_BEFORE = re.compile(r"(\[[\d\s,;–-]+\])\s*:?\s*$")
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)|\n")
_ELLIPSIS = re.compile(r"^\s*(?:\.{3}|…)\s*|\s*(?:\.{3}|…)\s*$")

_ADV = r"(?:explicitly |specifically |clearly |directly |actually )?"
_ABSTAIN = re.compile(
    r"\bi (?:don'?t|do not) know\b"
    rf"|\bnot {_ADV}(?:mentioned|provided|specified|stated|reported|given|described|discussed)\b"
    rf"|\b(?:does|do)(?: not|n'?t) {_ADV}(?:mention|specify|state|report|describe|discuss|say)\b"
    rf"|\b(?:does|do)(?: not|n'?t) {_ADV}provide (?:any )?(?:specific )?(?:information|details)"
    r"|\bno (?:specific |explicit )?(?:information|details|mention) (?:is |was |are |were )?"
    r"(?:provided|given|available|found|made)\b"
    r"|\bthere is no (?:specific |explicit )?(?:information|mention)\b"
    r"|\bcannot be determined from the (?:given|provided) (?:context|text|information)"
    r"|\b(?:not possible|impossible|unable) to (?:determine|tell|say)\b"
    r"|\bthe (?:given |provided )?(?:context|text|passages?|excerpts?) (?:does|do)(?: not|n'?t)\b",
    re.IGNORECASE,
)
_CONTRAST = re.compile(r"\b(?:but|however|although|though|whereas|except)\b", re.IGNORECASE)
_MARKUP = "*_#>`\"' \t"


def parse(text: str, *, sentinel: str = "NOT REPORTED") -> Parsed:
    """Parse a reply; never fails (an empty reply is ``not_reported``)."""
    body = _body(text)
    quotes, quoted = _quotes(body)
    masked = list(body)
    for a, b in quoted:  # a paper's own "[12]" inside a quote is not our citation
        masked[a:b] = " " * (b - a)
    citations: list[int] = []
    for m in _CITE.finditer("".join(masked)):
        citations += [n for n in _numbers(m.group(1)) if n not in citations]
    return Parsed(body, _status(text, body, sentinel, citations, quotes), tuple(citations), quotes)


def _body(text: str) -> str:
    """The answer proper: between ``Answer:::`` markers when present, labels stripped."""
    parts = _MARKER.split(text)
    # Between the markers first; then after the last one; then before the first.
    for part in [*parts[1:-1], parts[-1], parts[0]] if len(parts) > 1 else parts:
        body = part.strip()
        while (label := _LABEL.match(body)) is not None:
            body = body[label.end() :].strip()
        if body:
            return body
    return ""


def _numbers(group: str) -> list[int]:
    """'1, 3' -> [1, 3]; '2-4' -> [2, 3, 4] (short ranges only)."""
    out: list[int] = []
    for part in re.split(r"[,;]", group):
        ends = [int(x) for x in re.split(r"[–-]", part) if x.strip()]
        if len(ends) == 2 and 0 <= ends[1] - ends[0] <= 20:
            out += range(ends[0], ends[1] + 1)
        else:
            out += ends[:1]
    return out


def _quotes(body: str) -> tuple[tuple[QuoteCandidate, ...], list[tuple[int, int]]]:
    """The quotes long enough to check, and the ranges of every quoted span."""
    found: list[QuoteCandidate] = []
    spans: list[tuple[int, int]] = []
    for m in _QUOTE.finditer(body):
        spans.append(m.span(1))
        text = _ELLIPSIS.sub("", m.group(1)).strip()
        if len(normalize(text)[0]) >= MIN_QUOTE_CHARS:
            found.append(QuoteCandidate(text, _cited(body, m.start(), m.end())))
    return tuple(found), spans


def _cited(body: str, start: int, end: int) -> int | None:
    """The [n] of the quote at body[start:end]: right after it, right before, or later on."""
    after = _CITES_AFTER.match(body, end)
    if after is None:
        before = _CITE_BEFORE.search(body, max(0, start - 12), start)
        if before is not None:
            return _first(before.group(1))
        stop = _SENTENCE_END.search(body, end)
        sentence_end = stop.start() if stop else len(body)
        # A citation just after the full stop still belongs to the sentence ("...". [2]).
        after = _CITES_AFTER.match(body, sentence_end) or _CITE.search(body, end, sentence_end)
    return _first(after.group(1)) if after else None


def _first(group: str) -> int | None:
    numbers = _numbers(group.strip("[]"))
    return numbers[0] if numbers else None


def _status(
    text: str,
    body: str,
    sentinel: str,
    citations: list[int],
    quotes: tuple[QuoteCandidate, ...],
) -> Literal["answered", "not_reported"]:
    head = re.split(r"[.!:;(\n—–]| - ", body, maxsplit=1)[0]  # "NOT REPORTED. Because ..."
    if not body or _is_sentinel(text, sentinel) or _is_sentinel(head, sentinel):
        return "not_reported"
    if citations or quotes:
        return "answered"
    # Fragments ("Final", "%Query") left by a rambling model do not count as sentences.
    sentences = [s for s in re.split(r"(?<=[.!?])\s+|\n+", body) if len(s.split()) >= 3]
    sentences = sentences or [body]
    if len(sentences) > 2:
        return "answered"
    phrase = _ABSTAIN.search(sentences[0])
    if phrase is None or _CONTRAST.search(body, body.find(sentences[0]) + phrase.end()):
        return "answered"
    return "not_reported"


def _is_sentinel(line: str, sentinel: str) -> bool:
    line = _CITE.sub("", line).strip(_MARKUP).rstrip(".!:").strip(_MARKUP)
    return line.casefold() == sentinel.strip().casefold()
