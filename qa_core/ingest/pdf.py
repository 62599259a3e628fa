"""Read PDFs with PyMuPDF: page text with a box for every word, title, DOI, sections.

Every failure a user can cause (not a PDF, locked, scanned, damaged, hostile) becomes a
:class:`~qa_core.errors.PdfError` subclass with one sentence; raw PyMuPDF exceptions never
escape. Page numbers are 1-based. Word boxes are in the unrotated page's space (MuPDF's text
coordinates); :func:`page_png` renders the page as a viewer shows it, highlights included.
"""

from __future__ import annotations

import re
import threading
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pymupdf as _pymupdf

from qa_core.errors import DamagedPdf, EncryptedPdf, ImageOnlyPdf, MarginError, NotAPdf, PdfError
from qa_core.ingest import layout
from qa_core.ingest.layout import Line
from qa_core.models import Box, Document, Page, Word

__all__ = ["MAX_PAGES", "page_png", "read", "unlock"]

MAX_PAGES = 2000

# PyMuPDF ships py.typed but leaves most of its API unannotated; strict mypy would reject every
# call, so the module is used as Any.
pymupdf: Any = _pymupdf

# Whitespace kept as-is (we split into words ourselves), text outside the page dropped,
# ligatures expanded ("ﬁ" -> "fi") so quotes match, unknown glyphs -> U+FFFD, not raw CIDs.
_FLAGS = pymupdf.TEXT_PRESERVE_WHITESPACE | pymupdf.TEXT_MEDIABOX_CLIP
_BOLD_FONT = pymupdf.TEXT_FONT_BOLD
_BOLD_CHAR = pymupdf.mupdf.FZ_STEXT_BOLD
_INK = pymupdf.mupdf.FZ_STEXT_FILLED | pymupdf.mupdf.FZ_STEXT_STROKED
# MuPDF is not thread-safe and Streamlit serves sessions from threads.
_LOCK = threading.Lock()

# Inside a word: any whitespace becomes a plain space (offsets stay 1:1 with the box), invisible
# joiners and soft hyphens go, control characters become U+FFFD so they cannot fake line breaks.
_CLEAN: dict[int, str | None] = {c: "\ufffd" for c in [*range(0x20), *range(0x7F, 0xA0)]}
_CLEAN.update({c: " " for c in range(0x3001) if chr(c).isspace()})
_CLEAN.update({c: None for c in (0xAD, 0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF)})

_MARGIN = 0.09  # share of the page height at the top and bottom where running heads sit
_DOI = re.compile(r"\b10\.\d{4,9}/[^\s\"'<>]+")


def read(data: bytes, password: str | None = None) -> Document:
    """Parse a PDF into pages of words, title, DOI, sections and warnings for the user.

    Raises NotAPdf, EncryptedPdf, ImageOnlyPdf, DamagedPdf or PdfError (too many pages).
    """
    with _guard(), _open(data, password) as doc:
        return _read(doc)


def page_png(
    data: bytes,
    page: int,
    *,
    light: Sequence[Box] = (),
    dark: Sequence[Box] = (),
    zoom: float = 1.5,
    password: str | None = None,
) -> bytes:
    """Render page ``page`` (1-based) as PNG, ``light`` boxes pale yellow, ``dark`` boxes orange.

    The highlights are drawn on an in-memory copy; ``data`` is never changed. ``zoom`` is clamped
    to 0.25-6 so a page never renders absurdly large.
    """
    with _guard(), _open(data, password) as doc:
        if not 1 <= page <= doc.page_count:
            raise PdfError(f"Page {page} does not exist; this PDF has {doc.page_count} pages.")
        pg = doc[page - 1]
        shape = pg.new_shape()
        # Word boxes and drawing share the unrotated page space; rendering applies /Rotate.
        for boxes, style in (
            (light, {"fill": (1.0, 0.93, 0.45), "fill_opacity": 0.4, "color": None, "width": 0}),
            (dark, {"fill": (1.0, 0.55, 0.0), "fill_opacity": 0.45, "color": (0.85, 0.33, 0.0)}),
        ):
            rects = [pymupdf.Rect(b).normalize() for b in boxes]
            rects = [r for r in rects if r.is_valid and not r.is_empty]
            for rect in rects:
                shape.draw_rect(rect)
            if rects:
                shape.finish(**style)
        shape.commit(overlay=True)
        scale = min(max(zoom, 0.25), 6.0)
        png: bytes = pg.get_pixmap(matrix=pymupdf.Matrix(scale, scale), alpha=False).tobytes("png")
        return png


def unlock(data: bytes, password: str) -> bytes:
    """The same PDF with its encryption removed, so the stored copy renders without a password."""
    with _guard(), _open(data, password) as doc:
        unlocked: bytes = doc.tobytes(encryption=pymupdf.PDF_ENCRYPT_NONE)
        return unlocked


@contextmanager
def _guard() -> Iterator[None]:
    """Serialise MuPDF use and turn anything it raises into a user-facing PdfError."""
    with _LOCK:
        try:
            yield
        except MarginError:
            raise
        except Exception as exc:  # any MuPDF failure on a hostile or broken file
            raise DamagedPdf("The PDF is damaged or malformed and could not be read.") from exc


@contextmanager
def _open(data: bytes, password: str | None) -> Iterator[Any]:
    if not data.strip():
        raise NotAPdf("The file is empty, so it is not a PDF.")
    if b"%PDF-" not in data[:1024]:  # the header may sit after junk, as in Acrobat's rule
        raise NotAPdf("This file is not a PDF (it has no PDF header).")
    try:
        doc = pymupdf.open(stream=data, filetype="pdf")
    except Exception as exc:
        raise DamagedPdf("The PDF is damaged beyond repair and could not be opened.") from exc
    try:
        if doc.needs_pass:
            if not password:
                raise EncryptedPdf(
                    "This PDF is password-protected; enter its password to index it."
                )
            # Trust authenticate()'s result: re-reading needs_pass afterwards relocks the text.
            if not doc.authenticate(password):
                raise EncryptedPdf("The password for this PDF is wrong.")
        if doc.page_count == 0:
            raise DamagedPdf("The PDF has no pages.")
        if doc.page_count > MAX_PAGES:
            raise PdfError(
                f"The PDF has too many pages ({doc.page_count}); the limit is {MAX_PAGES}."
            )
        yield doc
    finally:
        doc.close()


def _read(doc: Any) -> Document:
    pages: list[Page] = []
    lines: list[list[Line]] = []
    hidden_dropped: list[int] = []
    ocr_layer: list[int] = []
    for pg in doc:
        page, page_lines, hidden = _page(pg)
        pages.append(page)
        lines.append(page_lines)
        if hidden == "dropped":
            hidden_dropped.append(page.number)
        elif hidden == "kept":
            ocr_layer.append(page.number)

    metadata = {k: v for k, v in (doc.metadata or {}).items() if isinstance(v, str)}
    doi = _doi([*metadata.values(), *(p.text for p in pages[:2])])  # footers often carry it
    for i, drop in _running_heads(pages, lines).items():
        pages[i], lines[i], _ = _page(doc[i], drop)

    total = len(pages)
    empty = [p.number for p in pages if not p.words]
    with_text = total - len(empty)
    repaired = bool(doc.is_repaired)
    if with_text == 0:
        if repaired:
            raise DamagedPdf("The file is damaged or truncated and no text could be read from it.")
        raise ImageOnlyPdf(
            "This is an image-only PDF: it has no text to index (OCR is not enabled)."
        )
    if repaired and with_text * 2 < total:
        # A truncated download: the few pages left say little about the paper.
        has = "has" if with_text == 1 else "have"
        raise DamagedPdf(
            f"The file is damaged or truncated: only {with_text} of its {total} pages {has} "
            "readable text; download it again and re-add it."
        )

    warnings: list[str] = []
    if repaired:
        warnings.append(
            f"The file is damaged or truncated; {len(empty)} of {total} pages "
            f"{'has' if len(empty) == 1 else 'have'} no text."
            if empty
            else "The file was damaged and has been repaired; some text may be missing."
        )
    elif empty:
        have = "has" if len(empty) == 1 else "have"
        warnings.append(
            f"{_pages(empty).capitalize()} {have} no text (scanned images?) and cannot be searched."
        )
    if hidden_dropped:
        warnings.append(f"Ignored hidden (invisible) text on {_pages(hidden_dropped)}.")
    if ocr_layer:
        warnings.append(
            f"Page {ocr_layer[0]}'s text comes from an invisible OCR layer."
            if len(ocr_layer) == 1
            else f"The text of {_pages(ocr_layer)} comes from an invisible OCR layer."
        )
    if not doc.permissions & pymupdf.PDF_PERM_COPY:
        warnings.append(
            "The author's permissions forbid copying text from this PDF; it was indexed for your "
            "own reading, so respect those terms when quoting."
        )

    body = layout.body_size(lines)
    first = next(i for i, p in enumerate(pages) if p.words)  # a scanned cover has no title text
    title = layout.title(metadata.get("title", ""), pages[first], lines[first], body)
    return Document(
        title=title,
        pages=tuple(pages),
        sections=layout.sections(pages, lines, body, title),
        warnings=tuple(warnings),
        doi=doi,
    )


def _page(pg: Any, drop: frozenset[tuple[int, int]] = frozenset()) -> tuple[Page, list[Line], str]:
    """One page's text and lines without the ``drop`` (block, line) pairs; also whether hidden
    words were ``dropped`` or ``kept``."""
    textpage = pg.get_textpage(flags=_FLAGS)
    raw = textpage.extractWORDS()
    blocks = textpage.extractDICT()["blocks"]
    ghosts = _invisible_spans(blocks)
    hidden = {i for i, w in enumerate(raw) if (w[5], w[6]) in ghosts and _on(w, ghosts[w[5], w[6]])}
    verdict = ""
    if hidden:
        # Hidden text beside visible text can smuggle instructions; alone it is an OCR layer.
        verdict = "kept" if len(hidden) == len(raw) else "dropped"
        if verdict == "dropped":
            raw = [w for i, w in enumerate(raw) if i not in hidden]

    parts: list[str] = []
    words: list[Word] = []
    lines: list[Line] = []
    ids: list[tuple[int, int]] = []  # (block, line) of each entry of ``lines``
    pos = 0
    key: tuple[int, int] | None = None
    for x0, y0, x1, y1, raw_text, block, line, _ in raw:
        text = raw_text.translate(_CLEAN).strip()
        if not text or (block, line) in drop:
            continue
        if key is None:
            sep = ""
        else:
            sep = " " if key == (block, line) else "\n" if key[0] == block else "\n\n"
        pos += len(sep)
        if key != (block, line):
            lines.append(_line(blocks[block], block, line, pos))
            ids.append((block, line))
            key = (block, line)
        words.append(Word((x0, y0, x1, y1), pos, pos + len(text)))
        parts += (sep, text)
        pos += len(text)
        lines[-1].end = pos
    rect = pg.rect * pg.derotation_matrix  # the space word boxes live in, even on rotated pages
    page = Page(pg.number + 1, "".join(parts), rect.width, rect.height, tuple(words))
    for entry, ident in zip(lines, ids, strict=True):
        entry.ident = ident
    return page, lines, verdict


def _running_heads(
    pages: list[Page], lines: list[list[Line]]
) -> dict[int, frozenset[tuple[int, int]]]:
    """Lines repeated in the top or bottom margin of most pages (journal name, running title,
    page numbers), per page index: noise for retrieval and never evidence."""
    where: dict[str, set[int]] = {}
    found: list[list[tuple[str, tuple[int, int]]]] = []
    for i, (page, page_lines) in enumerate(zip(pages, lines, strict=True)):
        marks = []
        starts = [w.start for w in page.words]
        for ln in page_lines:
            first, last = bisect_left(starts, ln.start), bisect_left(starts, ln.end)
            if first >= last:
                continue
            top = min(w.box[1] for w in page.words[first:last])
            bottom = max(w.box[3] for w in page.words[first:last])
            if bottom < _MARGIN * page.height or top > (1 - _MARGIN) * page.height:
                key = re.sub(r"\d+", "#", page.text[ln.start : ln.end].casefold()).strip()
                marks.append((key, ln.ident))
                where.setdefault(key, set()).add(i)
        found.append(marks)
    with_text = sum(1 for p in pages if p.words)
    repeated = {k for k, at in where.items() if len(at) >= max(3, 0.4 * with_text)}
    out = {}
    for i, marks in enumerate(found):
        drop = frozenset(ident for key, ident in marks if key in repeated)
        if drop:
            out[i] = drop
    return out


def _invisible_spans(blocks: list[dict[str, Any]]) -> dict[tuple[int, int], list[Box]]:
    """Boxes of spans drawn without ink (render mode 3, alpha 0, glyphless OCR font) per line."""
    found: dict[tuple[int, int], list[Box]] = {}
    for b, block in enumerate(blocks):
        for n, line in enumerate(block.get("lines", ())):
            for span in line["spans"]:
                if (
                    span.get("alpha") == 0
                    or not span.get("char_flags", _INK) & _INK
                    or span["font"].endswith("GlyphLessFont")
                ):
                    found.setdefault((b, n), []).append(span["bbox"])
    return found


def _on(word: tuple[Any, ...], boxes: list[Box]) -> bool:
    """Whether the word's centre lies in one of the boxes."""
    x, y = (word[0] + word[2]) / 2, (word[1] + word[3]) / 2
    return any(x0 <= x <= x1 and y0 <= y <= y1 for x0, y0, x1, y1 in boxes)


def _line(block: dict[str, Any], number: int, index: int, start: int) -> Line:
    spans = block["lines"][index]["spans"]
    dx, dy = block["lines"][index]["dir"]
    weight = [len(s["text"].strip()) for s in spans]
    total = sum(weight) or 1
    main = max(range(len(spans)), key=weight.__getitem__)
    bold = sum(
        w
        for s, w in zip(spans, weight, strict=True)
        if s["flags"] & _BOLD_FONT or s.get("char_flags", 0) & _BOLD_CHAR
    )
    horizontal = abs(dy) < 1e-3 < dx
    return Line(
        number, start, start, spans[main]["size"], bold / total, spans[main]["font"], horizontal
    )


def _pages(numbers: list[int]) -> str:
    """'page 3' or 'pages 2-4, 7'."""
    if len(numbers) == 1:
        return f"page {numbers[0]}"
    runs: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], 0]:
        if n != prev + 1:
            runs.append(str(start) if start == prev else f"{start}-{prev}")
            start = n
        prev = n
    return f"pages {', '.join(runs)}"


def _doi(texts: list[str]) -> str | None:
    for text in texts:
        if match := _DOI.search(text):
            doi = match.group().rstrip(".,;:")
            if doi.endswith(")") and doi.count(")") > doi.count("("):  # "(doi: 10.x/y)"
                doi = doi[:-1].rstrip(".,;:")
            return doi
    return None
