"""Where a paper's sections and title are: typography of the lines MuPDF extracted.

Headings are numbered ("2.1 Data") or known names ("Methods", "References") set apart by size
or weight; a heading repeated on many pages is a running head, not a section.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from qa_core.models import Page, Section

__all__ = ["Line", "body_size", "norm", "sections", "title"]

_NUMBER = r"(?:(?:\d{1,2}(?:\.\d{1,2})*|[A-Z](?:\.\d{1,2})*|[IVX]{1,5})\.?(?:\s+\|)?\s+)"
_NUMBERED = re.compile(rf"{_NUMBER}[A-Za-z]")
_NAMES = (
    r"abstract|summary|introduction|background|related works?|materials? and methods|methods?"
    r"|methodology|experiments?|experimental setup|evaluation|results?|results and discussion"
    r"|discussion|conclusions?(?: and future work)?|limitations|future work|data availability"
    r"|(?:data|code) availability statement|author contributions|funding|conflicts? of interest"
    r"|competing interests|appendix|appendices|supplementary materials?|keywords"
)
_BACK = r"references|bibliography|literature cited|works cited|acknowledge?ments?"
_KNOWN = re.compile(rf"{_NUMBER}?(?:{_NAMES}|{_BACK})[.:]?", re.IGNORECASE)
_BACK_MATTER = re.compile(rf"{_NUMBER}?(?:{_BACK})[.:]?", re.IGNORECASE)
_SENTENCE_BREAK = re.compile(r"[a-z]{2}[.!?]\s+[A-Z]")
_CAPTION = re.compile(r"(?:fig(?:ure)?|tab(?:le)?|algorithm|eq(?:uation)?|suppl)\b\.?", re.I)
_BAD_META_TITLE = re.compile(
    r"untitled|layout \d+|document\d*|microsoft \w+ - .*|.*\.(?:docx?|pdf|tex|dvi|ps|rtf|odt"
    r"|jpe?g|png|tiff?|indd|qxd|html?)",
    re.IGNORECASE,
)


@dataclass(slots=True)
class Line:
    """One text line of a page as laid out in :attr:`Page.text`, with its typography."""

    block: int
    start: int
    end: int
    size: float
    bold: float  # share of the line's characters set in bold
    font: str
    horizontal: bool
    ident: tuple[int, int] = (-1, -1)  # (block, line) in MuPDF's extraction


def norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def title(meta: str, page: Page, lines: list[Line], body: float) -> str:
    """The metadata title if it looks real, else the largest text on the first page with text."""
    meta = " ".join(meta.split())
    if len(meta.split()) >= 2 and not _BAD_META_TITLE.fullmatch(meta):
        return meta
    usable = [
        ln
        for ln in lines
        if ln.horizontal and sum(c.isalpha() for c in page.text[ln.start : ln.end]) >= 2
    ]
    if not usable:
        return "Untitled"
    biggest = max(ln.size for ln in usable)
    if biggest < body + 0.5:  # no title font: the first block stands in
        usable = [ln for ln in usable if ln.block == usable[0].block][:2]
    picked: list[str] = []
    for ln in usable:
        text = page.text[ln.start : ln.end]
        if abs(ln.size - biggest) < 0.5 and not (picked and _KNOWN.fullmatch(text)):
            picked.append(text)
        elif picked:
            break
        if len(picked) == 4:
            break
    return " ".join(" ".join(picked).split())[:300] or "Untitled"


def body_size(lines: list[list[Line]]) -> float:
    sizes: Counter[float] = Counter()
    for page_lines in lines:
        for ln in page_lines:
            sizes[round(ln.size * 2) / 2] += ln.end - ln.start
    return sizes.most_common(1)[0][0] if sizes else 10.0


def sections(
    pages: list[Page], lines: list[list[Line]], body: float, title: str
) -> tuple[Section, ...]:
    """Headings found by typography (bold or larger than body text) or by well-known names."""
    found: list[tuple[Section, str, str]] = []  # section, kind, style
    for page, page_lines in zip(pages, lines, strict=True):
        for i, ln in enumerate(page_lines):
            if i and page_lines[i - 1].block == ln.block:
                continue  # only a block's first lines can be a heading
            hit = _heading(page.text, page_lines[i : i + 4], body)
            if hit and not (page.number == 1 and norm(hit[0]) in norm(title)):
                back = bool(_BACK_MATTER.fullmatch(hit[0]))
                found.append((Section(hit[0], page.number, ln.start, back), hit[1], hit[2]))
    # Page-1 candidates before the first well-known heading are title, authors, affiliations.
    first = next((s for s, kind, _ in found if s.page == 1 and kind == "known"), None)
    if first:
        found = [f for f in found if f[0].page > 1 or f[0].start >= first.start]
    # In a paper that numbers its sections, unnumbered bold text counts only in a heading's
    # typeface: the rest are table cells and figure labels.
    if sum(kind == "numbered" for _, kind, _ in found) >= 3:
        styles = {style for _, kind, style in found if kind != "styled"}
        found = [f for f in found if f[1] != "styled" or f[2] in styles]
    # Text repeated on many pages is a running header, not a section.
    repeats = Counter(norm(s.title) for s, _, _ in found)
    return tuple(s for s, _, _ in found if repeats[norm(s.title)] <= 2)


def _heading(text: str, lines: list[Line], body: float) -> tuple[str, str, str] | None:
    """(heading, kind, style) if a heading starts this block; ``lines`` start at its first line.

    kind is ``known`` (a usual section name), ``numbered`` or ``styled`` (bold or large).
    """
    first = lines[0]
    style = f"{first.font}/{round(first.size * 2) / 2}"
    if _KNOWN.fullmatch(text[first.start : first.end]) and first.size >= body - 1.5:
        return text[first.start : first.end], "known", style
    styled: list[Line] = []
    for ln in lines:
        if ln.block != first.block or not _styled(ln, body):
            break
        styled.append(ln)
    if not styled or len(styled) > 3:
        return None
    heading = " ".join(text[ln.start : ln.end] for ln in styled)
    after = lines[len(styled)] if len(styled) < len(lines) else None
    if (
        (after and text[after.start].islower())  # a bold sentence running on: not a heading
        or _SENTENCE_BREAK.search(heading)
        or not (heading[0].isupper() or heading[0].isdigit())
        or sum(c.isalpha() for c in heading) < 3
        or heading[-1] in ",;:-–"
        or len(heading) > 200
        or len(heading.split()) > 20
        or _CAPTION.match(heading)
    ):
        return None
    return heading, "numbered" if _NUMBERED.match(heading) else "styled", style


def _styled(ln: Line, body: float) -> bool:
    return ln.horizontal and ((ln.bold >= 0.8 and ln.size >= body - 0.6) or ln.size >= body + 1.5)
