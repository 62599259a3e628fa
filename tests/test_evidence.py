"""evidence: normalisation, quote verification on page text, boxes, HTML, extractive mode."""

from __future__ import annotations

import random
import re
import unicodedata
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
import pymupdf
import pytest

from qa_core.answering.evidence import verify
from qa_core.answering.highlights import chunk_boxes, chunk_marks, mark_html, page_highlights
from qa_core.answering.normalize import normalize, page_norm
from qa_core.answering.sentences import align, extractive
from qa_core.ingest import chunking, pdf
from qa_core.models import Chunk, Context, Hit, Page, Quote, QuoteCandidate, Span, Word

SHARED = Path(__file__).resolve().parents[2] / "shared"

_T = TypeVar("_T")


def shared(test: _T) -> _T:
    """Marks a test that reads ../shared and skips it when that folder is absent."""
    return pytest.mark.shared(pytest.mark.skipif(not SHARED.exists(), reason="no ../shared")(test))


# -- building pages and contexts -----------------------------------------------------------


def make_page(number: int, blocks: Sequence[Sequence[str]]) -> Page:
    """A page laid out like pdf.read's: words by " ", lines by "\\n", blocks by "\\n\\n".

    Every character is 5 pt wide and every line 12 pt high, so boxes are easy to predict.
    """
    parts: list[str] = []
    words: list[Word] = []
    pos, y = 0, 50.0
    for b, block in enumerate(blocks):
        for ln, line in enumerate(block):
            sep = "" if not parts else ("\n" if ln else "\n\n")
            parts.append(sep)
            pos += len(sep)
            for m in re.finditer(r"\S+", line):
                x0 = 50.0 + 5 * m.start()
                words.append(
                    Word((x0, y, x0 + 5 * len(m.group()), y + 10), pos + m.start(), pos + m.end())
                )
            parts.append(line)
            pos += len(line)
            y += 12
        y += 12 * (b < len(blocks) - 1)
    return Page(number, "".join(parts), 595, 842, tuple(words))


def make_chunk(
    pages: Sequence[Page], spans: Sequence[Span], paper: str = "p1", i: int = 0
) -> Chunk:
    by_number = {p.number: p for p in pages}
    text = "\n".join(by_number[s.page].text[s.start : s.end] for s in spans)
    return Chunk(paper, f"{paper}:{i}", i, text, tuple(spans))


def ctx(n: int, chunk: Chunk) -> Context:
    return Context(n, Hit(chunk, 1.0, "A paper"))


def whole(page: Page) -> Span:
    return Span(page.number, 0, len(page.text))


P1 = make_page(
    1,
    [
        ["2 Methods"],
        [
            "We used the Faster R-CNN architecture implemented in PyTorch 1.4. The",
            "network was trained with stochastic gradient descent, a learning rate of",
            "0.0025 and a batch size of 4 for 40 epochs on one NVIDIA Tesla V100 GPU.",
        ],
        [
            "Images were augmented by horizontal ﬂipping and random rotation. The ﬁnal",
            "dataset of 653 annotated sheets was split into 80% training, 10% valida-",
            "tion and 10% test images.",
        ],
    ],
)
P2 = make_page(
    2,
    [
        ["3 Results"],
        [
            "Leaves were detected most reliably, with an average precision of 0.82, whereas",
            "fruits were hardest at 0.44. Errors were concentrated on overlapping organs and",
        ],
    ],
)
P3 = make_page(
    3,
    [
        ["continued on the next page of the results section. The code is available on GitHub."],
        ["4 Data availability", "The annotated images are deposited on Zenodo under CC BY 4.0."],
    ],
)
PAPER = {"p1": (P1, P2, P3)}


def library(papers: dict[str, Sequence[Page]]) -> Callable[[str], Sequence[Page]]:
    """The ``pages`` door verify() reads through: paper id -> its pages."""
    return papers.__getitem__


pages_of = library(PAPER)


# [1]: the methods paragraph (page 1, block 2); [2]: augmentation (page 1, block 3);
# [3]: results, running onto page 3.
C1 = ctx(
    1, make_chunk(PAPER["p1"], [Span(1, P1.text.index("We used"), P1.text.index("Images") - 2)])
)
C2 = ctx(2, make_chunk(PAPER["p1"], [Span(1, P1.text.index("Images"), len(P1.text))], i=1))
C3 = ctx(
    3,
    make_chunk(
        PAPER["p1"],
        [Span(2, P2.text.index("Leaves"), len(P2.text)), Span(3, 0, P3.text.index(" The code"))],
        i=2,
    ),
)
CONTEXTS = [C1, C2, C3]


def check(
    text: str,
    n: int | None,
    contexts: Sequence[Context] = CONTEXTS,
    papers: dict[str, Sequence[Page]] = PAPER,
) -> Quote:
    (quote,) = verify([QuoteCandidate(text, n)], contexts, library(papers))
    return quote


# -- normalisation -----------------------------------------------------------------------------

NORMALIZE = [
    ("Plain text", "plain text"),
    ("  spaced\t\tout \n\n text  ", "spaced out text"),
    ("the ﬁrst ﬂow", "the first flow"),
    ("“curly” ‘single’ quotes", "\"curly\" 'single' quotes"),
    ("a‐b a‑b a‒b a–b a—b a−b", "a-b a-b a-b a-b a-b a-b"),
    ("soft\u00adhyphen", "softhyphen"),
    ("learn-\ning", "learning"),
    ("learn- \n  ing", "learning"),
    ("learn\u00ad\ning", "learning"),
    ("learn–\ning", "learning"),  # an en dash at the line end is a hyphen too
    ("2019-\n2020", "2019- 2020"),  # not between letters: kept
    ("state-of-the-\nart", "state-of-theart"),
    ("self-attention", "self-attention"),
    ("zero\u200bwidth", "zerowidth"),
    ("non\u00a0breaking", "non breaking"),
    ("café vs cafe\u0301", "café vs café"),
    ("ÅNGSTRÖM", "ångström"),
    ("x²", "x2"),
    ("", ""),
    ("   ", ""),
]


@pytest.mark.parametrize(("text", "expected"), NORMALIZE)
def test_normalize(text: str, expected: str) -> None:
    norm, index = normalize(text)
    assert norm == expected
    assert_index_ok(text, norm, index)


def assert_index_ok(text: str, norm: str, index: list[int]) -> None:
    assert len(index) == len(norm)
    assert index == sorted(index)
    assert all(0 <= i < len(text) for i in index)
    for ch, i in zip(norm, index, strict=True):
        j = i + 1
        while j < len(text) and unicodedata.combining(text[j]):
            j += 1
        source = unicodedata.normalize("NFKC", text[i:j]).lower()
        if ch == " ":
            assert text[i].isspace() or source.isspace()
        elif ch == "-":
            assert text[i] in "-‐‑‒–—―−"
        elif ch in "\"'":
            assert text[i] in "\"'“”„‟″‘’‚‛′"
        else:
            assert ch in source


ALPHABET = [
    "a", "B", "z", "q", "0", "7", ".", ",", "%", " ", "  ", "\n", "\n\n", "\t", "-", "-\n",
    "\u00ad", "ﬁ", "ﬂ", "“", "”", "—", "−", "é", "e\u0301", "İ", "\u200b", "Ä", "\u00a0", "x²",
]  # fmt: skip


def test_normalize_index_round_trips_on_random_text() -> None:
    """A match found in normalised text maps back to original text that normalises to it."""
    rng = random.Random(20240611)
    for _ in range(600):
        text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 40)))
        norm, index = normalize(text)
        assert_index_ok(text, norm, index)
        for _ in range(5):
            if not norm:
                break
            a = rng.randrange(len(norm))
            b = rng.randrange(a, len(norm)) + 1
            end = index[b - 1] + 1
            while end < len(text) and unicodedata.combining(text[end]):
                end += 1
            piece = norm[a:b].strip()
            assert piece in normalize(text[index[a] : end])[0], (text, a, b)


# -- verification on hand-built pages ----------------------------------------------------------

STATUS = [
    # (quote, cited n, status, found_in)
    ("a learning rate of 0.0025 and a batch size of 4", 1, "verified", 1),
    ("A LEARNING  rate of\n0.0025", 1, "verified", 1),  # case and whitespace
    ("a learning rate of 0.025 and a batch size of 4", 1, "unverified", None),  # 10x the number
    ("a learning rate of 0.00025 and a batch size of 4", 1, "unverified", None),
    ("a learning rate of 0.0025 and a batch size of 8", 1, "unverified", None),
    ("a learning rate of 0.0025 and a batch size of 4 and", 1, "verified", 1),  # 96% covered
    ("trained with stochastic gradient descent, a learning rate", 1, "verified", 1),
    ("trained with Adam optimiser and a cosine schedule over 90 epochs", 1, "unverified", None),
    ("horizontal flipping and random rotation", 2, "verified", 2),  # ligature on the page
    ("split into 80% training, 10% validation and 10% test images", 2, "verified", 2),  # hyphen
    ("The final dataset of 653 annotated sheets was split into 80 %", 2, "verified", 2),
    ("split into 70% training, 10% validation and 10% test images", 2, "unverified", None),
    ("horizontal flipping and random rotation", 1, "misattributed", 2),
    ("an average precision of 0.82", 1, "misattributed", 3),
    ("an average precision of 0.82", None, "verified", 3),
    ("concentrated on overlapping organs and continued on the next page", 3, "verified", 3),
    ("The network was trained with stochastic", 9, "misattributed", 1),  # no context [9]
    ("Faster R-CNN architecture", 1, "verified", 1),
    ("Faster R‐CNN architecture", 1, "verified", 1),  # U+2010 hyphen in the quote
    ("“Faster R-CNN architecture”", 1, "verified", 1),
]


@pytest.mark.parametrize(("text", "n", "status", "found_in"), STATUS)
def test_verify_status(text: str, n: int | None, status: str, found_in: int | None) -> None:
    quote = check(text, n)
    assert (quote.status, quote.found_in, quote.context_n, quote.text) == (
        status,
        found_in,
        n,
        text,
    )
    if status == "unverified":
        assert (quote.page, quote.boxes, quote.spans, quote.paper_id) == (None, (), (), None)
    else:
        assert quote.paper_id == "p1" and quote.page is not None and quote.boxes
        assert quote.page == quote.spans[0].page


NUMBERS_PAGE = make_page(
    1,
    [
        [
            "We used a weight decay of 1e-4 and observed a change of −3.5% over 10,000 steps,",
            "reaching 95 % accuracy with a learning rate of 0.001 in the end. The compound Lucene-",
            "BM25 baseline was weaker.",
        ]
    ],
)
NUMBERS = [
    ("a weight decay of 1e-4 and observed a change of -3.5% over 10,000 steps", "verified"),
    ("a weight decay of 1e-5 and observed a change of -3.5% over 10,000 steps", "unverified"),
    ("a weight decay of 1e-4 and observed a change of -3.5% over 10.000 steps", "unverified"),
    (
        "a weight decay of 1e-4 and observed a change of -3.5% over 10,000 steps, reaching 95%",
        "verified",
    ),
    ("3.5% over 10,000 steps, reaching 95 % accuracy", "unverified"),  # the sign is dropped
    ("5% over 10,000 steps, reaching 95 % accuracy", "unverified"),  # half a number
    ("with a learning rate of 0.001 in the end", "verified"),
    ("with a learning rate of 0.01 in the end", "unverified"),
    ("with a learning rate of 0.0010 in the end", "unverified"),
    ("with a learning rate of 0.001", "verified"),
    ("The compound Lucene-BM25 baseline was weaker", "verified"),  # compound split at line end
    ("The compound LuceneBM25 baseline was weaker", "verified"),
]


@pytest.mark.parametrize(("text", "status"), NUMBERS)
def test_numbers_must_match_exactly(text: str, status: str) -> None:
    page = NUMBERS_PAGE
    c = ctx(1, make_chunk([page], [whole(page)], paper="n"))
    assert check(text, 1, [c], {"n": [page]}).status == status


def test_short_and_repeated_quotes_are_dropped() -> None:
    quotes = verify(
        [
            QuoteCandidate("PyTorch 1.4", 1),  # 11 characters: too short to check
            QuoteCandidate("Faster R-CNN architecture", 1),
            QuoteCandidate("faster r-cnn  architecture", 1),
            QuoteCandidate("Faster R-CNN architecture", 2),
        ],
        CONTEXTS,
        pages_of,
    )
    assert [(q.context_n, q.status) for q in quotes] == [(1, "verified"), (2, "misattributed")]


def test_found_quote_has_real_page_spans_and_boxes_per_line() -> None:
    quote = check("stochastic gradient descent, a learning rate of 0.0025 and a batch", 1)
    (span,) = quote.spans  # one range of the page text, across the line break
    assert quote.page == span.page == 1
    assert P1.text[span.start : span.end] == (
        "stochastic gradient descent, a learning rate of\n0.0025 and a batch"
    )
    # one box per line, spanning the matched words exactly
    words = [w for w in P1.words if span.start <= w.start < span.end]
    line2, line3 = words[:7], words[7:]
    assert P1.text[line3[0].start : line3[0].end] == "0.0025"
    assert quote.boxes == (
        (line2[0].box[0], line2[0].box[1], line2[-1].box[2], line2[-1].box[3]),
        (line3[0].box[0], line3[0].box[1], line3[-1].box[2], line3[-1].box[3]),
    )


def test_quote_across_a_page_break() -> None:
    quote = check("overlapping organs and continued on the next page", 3)
    assert quote.status == "verified" and quote.page == 2
    assert [s.page for s in quote.spans] == [2, 3]
    assert P3.text[quote.spans[1].start : quote.spans[1].end] == "continued on the next page"
    assert len(quote.boxes) == 1  # Quote.boxes are on Quote.page only ...
    light, dark = page_highlights(C3.hit.chunk, quote, P3)  # ... the UI gets the rest
    assert len(dark) == 1 and light


def test_quote_on_the_page_but_outside_every_chunk_stays_with_its_context() -> None:
    # "2 Methods" heading is on page 1 but in no chunk; page 3's last block neither.
    assert check("deposited on Zenodo under CC BY 4.0", 3).status == "verified"
    quote = check("deposited on Zenodo under CC BY 4.0", 1)
    assert (quote.status, quote.found_in, quote.page) == ("misattributed", 3, 3)


def test_quote_in_another_paper_is_misattributed() -> None:
    other = make_page(1, [["Our baseline used a learning rate of 0.1 throughout training."]])
    c4 = ctx(4, make_chunk([other], [whole(other)], paper="p2"))
    papers = {**PAPER, "p2": [other]}
    quote = check("a learning rate of 0.1 throughout training", 1, [*CONTEXTS, c4], papers)
    assert (quote.status, quote.found_in, quote.paper_id) == ("misattributed", 4, "p2")


def test_ligature_and_decomposed_accent_in_the_page() -> None:
    page = make_page(1, [["The ﬁnal model was deﬁned by Sche\u0301ma et al. in 2019."]])
    c = ctx(1, make_chunk([page], [whole(page)], paper="lig"))
    quote = check("the final model was defined by Schéma", 1, [c], {"lig": [page]})
    assert quote.status == "verified"
    assert (
        page.text[quote.spans[0].start : quote.spans[0].end]
        == "The ﬁnal model was deﬁned by Sche\u0301ma"
    )


# -- HTML marks and highlight boxes ------------------------------------------------------------


def test_mark_html_escapes_everything() -> None:
    text = "Before <script>alert('x')</script>\nand & after"
    html = mark_html(text, [(7, 15), (text.index("and"), 99)])
    assert html == (
        "Before <mark>&lt;script&gt;</mark>alert(&#x27;x&#x27;)&lt;/script&gt;<br>"
        "<mark>and &amp; after</mark>"
    )
    assert mark_html("a<b>c", []) == "a&lt;b&gt;c"
    assert mark_html("abcdef", [(3, 5), (1, 2), (4, 6)]) == "a<mark>b</mark>c<mark>def</mark>"


def test_chunk_marks_only_for_found_quotes_in_this_chunk() -> None:
    chunk = C3.hit.chunk
    found = check("overlapping organs and continued on the next page", 3)
    elsewhere = check("horizontal flipping and random rotation", 2)
    missing = Quote("overlapping organs and", 3, "unverified")
    marks = chunk_marks(chunk, [found, elsewhere, missing])
    assert [chunk.text[a:b] for a, b in marks] == [
        "overlapping organs and\ncontinued on the next page"
    ]
    assert "<mark>overlapping organs and<br>continued on the next page</mark>" in mark_html(
        chunk.text, marks
    )


def test_chunk_boxes_cover_the_chunk_lines_on_that_page() -> None:
    chunk = C1.hit.chunk
    assert len(chunk_boxes(chunk, P1)) == 3  # three lines of the methods paragraph
    assert chunk_boxes(chunk, P2) == []
    light, dark = page_highlights(chunk, None, P1)
    assert len(light) == 3 and dark == []
    unverified = Quote("x" * 20, 1, "unverified")
    assert page_highlights(chunk, unverified, P1)[1] == []


# -- extractive answers ------------------------------------------------------------------------


def hashing_embed(texts: Sequence[str]) -> np.ndarray:
    """Bag-of-words hashed into 512 dims, L2-normalised: a deterministic stand-in embedder."""
    out = np.zeros((len(texts), 512), dtype=np.float32)
    for i, text in enumerate(texts):
        for word in re.findall(r"\w+", text.lower()):
            out[i, zlib.crc32(word.encode()) % 512] += 1
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms == 0, 1, norms)


def test_extractive_returns_verified_sentences_with_boxes() -> None:
    question = hashing_embed(["What learning rate and batch size were used for training?"])[0]
    quotes = extractive(question, CONTEXTS, pages_of, hashing_embed, max_sentences=3)
    assert len(quotes) == 3
    top = quotes[0]
    assert top.text.startswith("The network was trained with stochastic gradient descent")
    assert (top.status, top.context_n, top.found_in, top.page) == ("verified", 1, 1, 1)
    assert len(top.boxes) == 3  # the sentence runs over three lines
    for q in quotes:
        assert q.status == "verified" and q.boxes and q.paper_id == "p1"
        # the same locating code finds each sentence where extractive says it is
        assert check(q.text, q.context_n) == q


def test_extractive_splits_sentences_sensibly() -> None:
    page = make_page(
        1,
        [
            [
                "Results are shown in Fig. 3 and Table 2, e.g. ImageNet accuracy was 76.1 per",
                "cent as in Smith et al. (2019) and J. Doe. A second sentence follows here.",
            ]
        ],
    )
    c = ctx(1, make_chunk([page], [whole(page)], paper="s"))
    quotes = extractive(hashing_embed(["results"])[0], [c], library({"s": [page]}), hashing_embed)
    assert sorted(q.text for q in quotes) == [
        "A second sentence follows here.",
        "Results are shown in Fig. 3 and Table 2, e.g. ImageNet accuracy was 76.1 per cent as in "
        "Smith et al. (2019) and J. Doe.",
    ]


def test_extractive_with_nothing_to_say() -> None:
    assert extractive(np.ones(512), [], pages_of, hashing_embed) == []


def test_align_finds_supporting_sentences_for_a_quote_free_answer() -> None:
    body = "The detector was trained with stochastic gradient descent for 40 epochs. It was good."
    cands = align(body, CONTEXTS)
    assert [c.context_n for c in cands] == [1]
    assert cands[0].text.startswith("The network was trained with stochastic gradient descent")
    assert verify(cands, CONTEXTS, pages_of)[0].status == "verified"


# -- real PDFs through pdf.read ----------------------------------------------------------------


def read_generated(build: Callable[[pymupdf.Document], None]) -> tuple[Page, ...]:
    """Pages of a PDF drawn by ``build``, read back through pdf.read."""
    doc = pymupdf.open()
    build(doc)
    data = doc.tobytes()
    doc.close()
    return pdf.read(data).pages


def one_context_per_page(pages: Sequence[Page]) -> list[Context]:
    return [ctx(i + 1, make_chunk(pages, [whole(p)], paper="x", i=i)) for i, p in enumerate(pages)]


def test_generated_pdf_hyphenation_and_page_break() -> None:
    def build(doc: pymupdf.Document) -> None:
        p1 = doc.new_page(width=595, height=842)
        p1.insert_text((72, 100), "The network was trained with a small learn-", fontsize=11)
        p1.insert_text((72, 114), "ing rate of 0.0025 for forty epochs.", fontsize=11)
        p1.insert_text((72, 800), "This sentence starts on page one and", fontsize=11)
        p2 = doc.new_page(width=595, height=842)
        p2.insert_text((72, 72), "continues on page two without a break.", fontsize=11)

    pages = read_generated(build)
    contexts, papers = one_context_per_page(pages), {"x": pages}
    hyph = check("trained with a small learning rate of 0.0025", 1, contexts, papers)
    wrong = check("trained with a small learning rate of 0.025", 1, contexts, papers)
    cross = check("starts on page one and continues on page two", 1, contexts, papers)
    assert hyph.status == "verified" and hyph.page == 1 and len(hyph.boxes) == 2
    assert wrong.status == "unverified"
    assert (cross.status, cross.page, [s.page for s in cross.spans]) == ("verified", 1, [1, 2])
    assert len(cross.boxes) == 1 and cross.boxes[0][1] > 700  # bottom of page 1


def test_generated_two_column_page() -> None:
    def build(doc: pymupdf.Document) -> None:
        page = doc.new_page(width=595, height=842)
        left = (
            "Column one opens the paper. We trained the detector for forty epochs and the final "
            "sentence of this column continues"
        )
        right = "in the second column where the rate of 0.0025 was kept. More words follow here."
        page.insert_textbox(pymupdf.Rect(50, 60, 290, 400), left, fontsize=11)
        page.insert_textbox(pymupdf.Rect(305, 60, 545, 400), right, fontsize=11)

    pages = read_generated(build)
    quote = check(
        "the final sentence of this column continues in the second column",
        1,
        one_context_per_page(pages),
        {"x": pages},
    )
    assert quote.status == "verified"
    assert any(b[2] < 297 for b in quote.boxes) and any(b[0] > 297 for b in quote.boxes)


@shared
def test_real_two_column_paper() -> None:
    pages = pdf.read((SHARED / "corpus/pdfs/hard/us_multi-column-2p.pdf").read_bytes()).pages
    contexts, papers = one_context_per_page(pages), {"x": pages}
    hyph = check(
        "retrieval can be practically implemented using dense representations alone",
        1,
        contexts,
        papers,
    )
    cols = check("More specifically, we assume the extractive QA setting", 2, contexts, papers)
    # "Lucene-\nBM25": a compound split at a line end still matches "Lucene-BM25"
    wrong = check("outperforms a strong Lucene-BM25 system greatly by 9%-29%", 1, contexts, papers)
    right = check("outperforms a strong Lucene-BM25 system greatly by 9%-19%", 1, contexts, papers)
    assert hyph.status == "verified" and hyph.page == 1 and len(hyph.boxes) == 2
    # the end of column 1, then the top of column 2
    assert (cols.status, cols.page, len(cols.boxes)) == ("verified", 2, 2)
    assert cols.boxes[0][2] < pages[1].width / 2 < cols.boxes[1][0]
    assert cols.boxes[0][1] > cols.boxes[1][3]
    assert wrong.status == "unverified" and right.status == "verified"


@shared
def test_verify_on_a_real_two_column_paper() -> None:
    doc = pdf.read((SHARED / "corpus/pdfs/papers/pm_2020.acl-main.447.pdf").read_bytes())
    chunks = chunking.split(doc, "s2orc", size=300, overlap=0)
    picked = chunks[:: max(1, len(chunks) // 8)][:8]
    contexts = [ctx(i + 1, c) for i, c in enumerate(picked)]
    rng = random.Random(7)
    cands = []
    for c in contexts:  # per context: 8 true quotes, 1 with invented words, 1 citing another
        words = re.sub(r"(?<=[a-z])-\n(?=[a-z])", "", c.hit.chunk.text).split()
        for kind in range(10):
            k = rng.randint(6, 14)
            a = rng.randrange(max(1, len(words) - k))
            piece = words[a : a + k]
            if kind == 8:
                piece[k // 2 : k // 2] = ["which", "we", "never", "observed", "anywhere", "else"]
            cands.append(QuoteCandidate(" ".join(piece), c.n % 8 + 1 if kind == 9 else c.n))
    pages = library({"s2orc": doc.pages})
    page_norm.cache_clear()  # the first verify() of a paper normalises its pages
    cold = verify(cands, contexts, pages)
    warm = verify(cands, contexts, pages)  # from the page cache: the same answer
    assert cold == warm
    statuses = {
        s: sum(q.status == s for q in cold) for s in ("verified", "misattributed", "unverified")
    }
    assert statuses["verified"] >= 60 and statuses["misattributed"] >= 6
    assert statuses["unverified"] >= 8
