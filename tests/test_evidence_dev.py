"""The ecology evidence dev set: well-formed, and every quote on the page it names."""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import pymupdf
import pytest

DATA = Path(__file__).resolve().parent / "data" / "evidence_dev.jsonl"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "pdfs"
ITEMS = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line]


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).replace("\xad", "")
    return re.sub(r"\s+", " ", text).strip()


def test_items_are_well_formed() -> None:
    keys = [(d["paper"], d["cq"]) for d in ITEMS]
    assert len(keys) == len(set(keys))
    for d in ITEMS:
        assert 1 <= d["cq"] <= 28 and d["question"].strip() == d["question"]
        assert bool(d["quotes"]) == d["reported"], d
        assert all(len(q["text"]) >= 20 and q["page"] >= 1 for q in d["quotes"])


@pytest.mark.shared
@pytest.mark.skipif(not SHARED.exists(), reason="../shared is absent")
def test_every_quote_is_on_its_page() -> None:
    pages: dict[str, list[str]] = {}
    for d in ITEMS:
        if d["paper"] not in pages:
            path = next(SHARED.glob(f"*/{d['paper']}"))
            with pymupdf.open(path) as doc:
                texts = [pg.get_text() for pg in doc]
            joined = [re.sub(r"(\w)-[ \t]*\n\s*(\w)", r"\1\2", t) for t in texts]
            pages[d["paper"]] = [
                _fold(a) + "\0" + _fold(b) for a, b in zip(texts, joined, strict=True)
            ]
        for q in d["quotes"]:
            assert _fold(q["text"]) in pages[d["paper"]][q["page"] - 1], (d["paper"], d["cq"])
