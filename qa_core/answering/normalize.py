"""Text normalisation for matching quotes: every character maps back to where it came from.

Normalised text is NFKC, with straight quotes, one dash, joined line-end hyphenation, single
spaces and lower case. The *loose* form used for matching also drops hyphens inside words, so a
compound split at a line end ("Lucene-\\nBM25") matches its unbroken spelling.
"""

from __future__ import annotations

import re
import unicodedata
from array import array
from functools import lru_cache

__all__ = ["MIN_QUOTE_CHARS", "normalize", "page_norm", "quote_key"]

#: quotes shorter than this (normalised characters) are not checked
MIN_QUOTE_CHARS = 12

_FOLD = str.maketrans(
    {
        **dict.fromkeys("‘’‚‛′", "'"),
        **dict.fromkeys("“”„‟″", '"'),
        **dict.fromkeys("‐‑‒–—―−", "-"),
        **dict.fromkeys("\u200b\u200c\u200d\u2060\ufeff"),
    }
)
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
# Line-end hyphenation between letters (dropped), stray soft hyphens (dropped), and whitespace
# runs other than a single space (one space). A lone space needs no work: that keeps it fast.
_JOIN = re.compile(r"(?<=[^\W\d_])[-\xad][^\S\n]*\n\s*(?=[^\W\d_])|\xad|[^\S ]\s*| \s+")
# Matching also drops hyphens inside words: a compound split at a line end ("Lucene-\nBM25")
# is joined like any hyphenated word, so "Lucene-BM25" must match "LuceneBM25".
_JOIN_LOOSE = re.compile(rf"{_JOIN.pattern}|(?<=[^\W\d_])-(?=[^\W\d_])")
_ELLIPSIS = re.compile(r"^(?:\.{3}\s*)+|(?:\s*\.{3})+$")


def normalize(text: str) -> tuple[str, list[int]]:
    """Normalised text and, for each of its characters, the index it came from in ``text``."""
    return _normalize(text, _JOIN)


def _normalize(text: str, join: re.Pattern[str]) -> tuple[str, list[int]]:
    folded, index = _fold(text)
    parts: list[str] = []
    out_index: list[int] = []
    prev = 0
    for m in join.finditer(folded):
        start, end = m.span()
        parts.append(folded[prev:start])
        out_index.extend(index[prev:start])
        if folded[start].isspace():
            parts.append(" ")
            out_index.append(index[start])
        prev = end
    parts.append(folded[prev:])
    out_index.extend(index[prev:])
    out = "".join(parts)
    lo = 1 if out.startswith(" ") else 0
    hi = len(out) - 1 if len(out) > lo and out.endswith(" ") else len(out)
    return out[lo:hi], out_index[lo:hi]


def _fold(text: str) -> tuple[str, list[int]]:
    """NFKC, straight quotes, one dash, lower case; soft hyphens are left for :data:`_JOIN`."""
    if text.isascii():
        return text.lower(), list(range(len(text)))
    parts: list[str] = []
    index: list[int] = []
    prev = 0
    for run in _NON_ASCII.finditer(text):
        start, end = run.span()
        if start > prev and unicodedata.combining(text[start]):
            start -= 1  # an ASCII base letter composes with the accent that follows it
        parts.append(text[prev:start].lower())
        index.extend(range(prev, start))
        chunk = text[start:end]
        if unicodedata.is_normalized("NFKC", chunk):
            folded = chunk.translate(_FOLD)
            # One character in, one out at each step (no deletion hidden by an expansion):
            # the index is the identity, no per-character work.
            if len(folded) == len(chunk) and len(folded := folded.lower()) == len(chunk):
                parts.append(folded)
                index.extend(range(start, end))
                prev = end
                continue
        i = start
        while i < end:  # a base character with its combining marks, folded as one
            j = i + 1
            while j < end and unicodedata.combining(text[j]):
                j += 1
            folded = unicodedata.normalize("NFKC", text[i:j]).translate(_FOLD).lower()
            parts.append(folded)
            index.extend([i] * len(folded))
            i = j
        prev = end
    parts.append(text[prev:].lower())
    index.extend(range(prev, len(text)))
    return "".join(parts), index


@lru_cache(maxsize=512)
def page_norm(text: str) -> tuple[str, array[int]]:
    """A page text in the loose form, with each character's index in ``text`` (cached)."""
    norm, index = _normalize(text, _JOIN_LOOSE)
    return norm, array("i", index)


def quote_key(text: str, *, loose: bool = True) -> str:
    """What a quote is matched by: its (loose) normalised text without leading/trailing ``...``."""
    return _ELLIPSIS.sub("", _normalize(text, _JOIN_LOOSE if loose else _JOIN)[0]).strip()
