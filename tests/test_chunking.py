"""Chunking: token budget, overlap, sections, and exact provenance of every chunk."""

from __future__ import annotations

import itertools
import re

import pytest

from qa_core import tokens
from qa_core.ingest import chunking
from qa_core.models import Document, Page, Section, Word


def page(number: int, text: str) -> Page:
    words = tuple(
        Word((float(m.start()), 0.0, float(m.end()), 10.0), m.start(), m.end())
        for m in re.finditer(r"\S+", text)
    )
    return Page(number, text, 595.0, 842.0, words)


SENT = "The network was trained with stochastic gradient descent for forty epochs. "


def doc_with(texts: list[str], sections: tuple[Section, ...] = ()) -> Document:
    return Document("T", tuple(page(i + 1, t) for i, t in enumerate(texts)), sections)


@pytest.mark.parametrize(("size", "overlap"), [(32, 0), (64, 16), (200, 40)])
def test_chunks_respect_budget_and_map_back_to_pages(size: int, overlap: int) -> None:
    doc = doc_with([SENT * 30, SENT * 12])
    chunks = chunking.split(doc, "p", size=size, overlap=overlap)
    assert chunks
    texts = {p.number: p.text for p in doc.pages}
    for c in chunks:
        assert tokens.count(c.text) <= size + 2  # joins add at most a newline per page
        assert c.text == "\n".join(texts[s.page][s.start : s.end] for s in c.spans)
        assert c.chunk_id == f"p:{c.index}"
    # every sentence of the document is in some chunk
    covered = "\n".join(c.text for c in chunks)
    assert covered.count("forty epochs") >= 42


def test_overlap_repeats_the_tail_of_the_previous_chunk() -> None:
    doc = doc_with([" ".join(f"Sentence number {i} is here." for i in range(60))])
    chunks = chunking.split(doc, "p", size=40, overlap=12)
    for a, b in itertools.pairwise(chunks):
        first_of_b = b.text.split(".")[0]
        assert first_of_b in a.text


def test_no_chunk_crosses_a_section_and_back_matter_is_tagged() -> None:
    text = "Methods\nWe used PyTorch. " + SENT * 3 + "\n\nReferences\nRen S. Faster R-CNN. 2015."
    refs = text.index("References")
    doc = doc_with(
        [text],
        (Section("Methods", 1, 0), Section("References", 1, refs, back_matter=True)),
    )
    chunks = chunking.split(doc, "p", size=200, overlap=20)
    assert [c.section for c in chunks] == ["Methods", "References"]
    assert [c.back_matter for c in chunks] == [False, True]
    assert "Ren S" in chunks[1].text and "Ren S" not in chunks[0].text


def test_abbreviations_do_not_end_sentences() -> None:
    text = "Smith et al. used e.g. dropout as in Fig. 3. The rate was 0.5. " * 20
    chunks = chunking.split(doc_with([text]), "p", size=30, overlap=0)
    assert all(not c.text.startswith(("al.", "dropout", "3.")) for c in chunks)


def test_overlong_sentence_is_cut_at_words() -> None:
    text = " ".join(f"w{i}" for i in range(2000))
    chunks = chunking.split(doc_with([text]), "p", size=100, overlap=0)
    assert len(chunks) > 5
    assert all(tokens.count(c.text) <= 110 for c in chunks)


def test_overlap_must_be_smaller_than_size() -> None:
    with pytest.raises(ValueError):
        chunking.split(doc_with(["x"]), "p", size=10, overlap=10)


def test_a_lone_heading_joins_the_next_section_instead_of_being_a_chunk() -> None:
    text = "2 Methods\n\n2.1 Data\n\n" + SENT * 3
    sub = text.index("2.1 Data")
    doc = doc_with([text], (Section("2 Methods", 1, 0), Section("2.1 Data", 1, sub)))
    [chunk] = chunking.split(doc, "p", size=200, overlap=20)
    assert chunk.section == "2.1 Data" and chunk.text.startswith("2 Methods")
