"""The façade end to end with real parts: PyMuPDF, the bundled embedder, Qdrant Edge."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from qa_core import build
from qa_core.errors import EmbeddingMismatch, MarginError
from qa_core.ingest.library import Library
from qa_core.models import Chunk, Span
from qa_core.service import NO_LLM_NOTICE, Service
from qa_core.settings import Settings
from qa_core.store import ServerStore
from tests.fakes import QueueModel
from tests.netguard import loopback_only
from tests.pdfmaker import METHODS_PAPER, make_pdf

PAPER = make_pdf(METHODS_PAPER, title="Detecting plant organs in herbarium scans")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = build(Settings(data_dir=tmp_path_factory.mktemp("lib")), chat=None)
    result = service.ingest(PAPER, "organs.pdf")
    assert result.status == "indexed", result.error
    yield service
    service.close()


def test_ingest_lists_the_paper_and_rejects_a_duplicate(svc: Service) -> None:
    [paper] = svc.papers()
    assert paper.title == "Detecting plant organs in herbarium scans"
    assert (paper.pages, paper.file) == (2, "organs.pdf")
    again = svc.ingest(PAPER, "copy.pdf")
    assert again.status == "duplicate" and again.paper_id == paper.paper_id
    assert len(svc.papers()) == 1


def test_search_finds_the_passage_with_its_page(svc: Service) -> None:
    hits = svc.search("What learning rate and optimizer were used?", k=3)
    top = hits[0].chunk
    assert "learning rate of 0.0025" in top.text
    assert top.page_start == 1 and top.section.endswith("Methods")
    code = svc.search("Where is the code repository?", k=1)[0].chunk
    assert "github.com/example" in code.text and code.page_start == 2


def test_references_are_excluded_from_retrieval(svc: Service) -> None:
    hits = svc.search("Ren Girshick region proposal networks", k=10)
    assert all(not h.chunk.back_matter for h in hits)


def test_extractive_answer_without_llm_is_labelled(svc: Service) -> None:
    answer = svc.ask("Which framework was used to implement the model?")
    assert answer.status == "extractive" and answer.notice == NO_LLM_NOTICE
    assert answer.quotes and all(q.status == "verified" for q in answer.quotes)
    assert any("PyTorch" in q.text for q in answer.quotes)
    assert all(q.page and q.boxes for q in answer.quotes)


def _ask_with(svc: Service, reply: str, question: str = "What optimizer was used?") -> object:
    chat = QueueModel([reply])
    scripted = svc.replace(chat=chat)
    answer = scripted.ask(question)
    assert chat.prompts and "[1]" in chat.prompts[0]
    return answer


def test_llm_answer_quotes_are_verified_on_the_page(svc: Service) -> None:
    answer = _ask_with(
        svc,
        'They used SGD: "trained with stochastic gradient descent, a learning rate of 0.0025" [1]. '
        'It also "used the Transformer-XL backbone on TPUs" [1].',
    )
    good, bad = answer.quotes  # type: ignore[attr-defined]
    assert (good.status, good.page) == ("verified", 1) and good.boxes
    assert (bad.status, bad.page, bad.boxes) == ("unverified", None, ())
    assert answer.status == "answered"  # type: ignore[attr-defined]


def test_number_changed_quote_is_unverified(svc: Service) -> None:
    answer = _ask_with(
        svc, 'The rate was "stochastic gradient descent, a learning rate of 0.025" [1].'
    )
    assert [q.status for q in answer.quotes] == ["unverified"]  # type: ignore[attr-defined]


def test_not_reported_sentinel(svc: Service) -> None:
    answer = _ask_with(svc, "NOT REPORTED", "Which random seed was used?")
    assert answer.status == "not_reported" and not answer.quotes  # type: ignore[attr-defined]


def test_empty_scope_is_not_found(svc: Service) -> None:
    answer = svc.ask("What datasets?", papers=["0000000000000000"])
    assert answer.status == "not_found" and not answer.contexts
    with pytest.raises(MarginError):
        svc.ask("   ")


def test_ingest_and_search_never_leave_loopback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with loopback_only(monkeypatch) as attempts:
        service = build(Settings(data_dir=tmp_path), chat=None)
        try:
            assert service.ingest(PAPER, "p.pdf").status == "indexed"
            assert service.search("dataset split", k=2)
            assert service.ask("dataset split").status == "extractive"
        finally:
            service.close()
    assert attempts == []


class _OtherEmbedder:
    name = "test:other"
    dim = 16

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return np.ones((len(texts), self.dim), dtype=np.float32) / 4

    def embed_query(self, text: str) -> np.ndarray:
        return np.ones(self.dim, dtype=np.float32) / 4

    def health(self) -> str:
        return "OK: constant vectors"


def test_reopening_with_another_embedding_is_a_clear_error(tmp_path: Path) -> None:
    build(Settings(data_dir=tmp_path), chat=None).close()
    with pytest.raises(EmbeddingMismatch, match="local:e5-small"):
        build(Settings(data_dir=tmp_path), chat=None, embedder=_OtherEmbedder())


def test_delete_removes_points_and_the_pdf(tmp_path: Path) -> None:
    service = build(Settings(data_dir=tmp_path), chat=None, embedder=_OtherEmbedder())
    pid = service.ingest(PAPER, "p.pdf").paper_id
    assert pid and (tmp_path / "pdfs" / f"{pid}.pdf").exists()
    service.delete(pid)
    assert service.papers() == [] and service.library.store.paper_ids("default") == set()
    assert not (tmp_path / "pdfs" / f"{pid}.pdf").exists()
    service.close()


CRASH = textwrap.dedent(
    """
    import os, sys
    from qa_core import build
    from qa_core.settings import Settings
    from tests.test_service import PAPER, _OtherEmbedder
    svc = build(Settings(data_dir=sys.argv[1]), chat=None, embedder=_OtherEmbedder())
    real_add = svc.library.store.add
    def add_then_die(*args, **kwargs):
        real_add(*args, **kwargs)
        os._exit(9)  # the process dies after the points are written, before 'ready'
    svc.library.store.add = add_then_die
    svc.ingest(PAPER, "p.pdf")
    """
)


def test_a_crash_mid_ingest_leaves_no_partial_paper(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", CRASH, str(tmp_path)], cwd=ROOT, check=False)
    assert proc.returncode == 9
    service = build(Settings(data_dir=tmp_path), chat=None, embedder=_OtherEmbedder())
    try:
        assert service.papers() == []
        assert service.library.store.paper_ids("default") == set()
        assert list((tmp_path / "pdfs").iterdir()) == []
        assert service.ingest(PAPER, "p.pdf").status == "indexed"
    finally:
        service.close()


def test_quote_free_answer_gets_aligned_source_sentences(svc: Service) -> None:
    answer = _ask_with(
        svc, "The network was trained with stochastic gradient descent for 40 epochs [1]."
    )
    assert answer.quotes  # type: ignore[attr-defined]
    assert all(q.status == "verified" and q.page == 1 for q in answer.quotes)  # type: ignore[attr-defined]


def test_workspaces_keep_their_own_templates(svc: Service) -> None:
    alice, bob = svc.for_workspace("alice-ws"), svc.for_workspace("bob-ws")
    alice.templates.save("mine", "Q: {question}\n{context}")
    alice.templates.set_active("mine")
    assert alice.templates.active().name == "mine"
    assert bob.templates.active().name == svc.templates.active().name != "mine"
    assert "mine" not in [t.name for t in bob.templates.list()]
    with pytest.raises(MarginError):
        svc.for_workspace("../escape")


@pytest.mark.parametrize("exclusive", [True, False])
def test_orphan_points_are_swept_only_from_a_store_we_own(tmp_path: Path, exclusive: bool) -> None:
    emb = _OtherEmbedder()
    store = ServerStore("c", embedding_name=emb.name, dim=emb.dim, path=tmp_path / "q")
    store.exclusive = exclusive  # False: as a Qdrant server that other instances share
    theirs = Chunk("0123456789abcdef", "0123456789abcdef:0", 0, "their text", (Span(1, 0, 10),))
    store.add([theirs], emb.embed_passages(["x"]), workspace="default", title="theirs")
    library = Library(tmp_path / "mine", store, emb, chunk_tokens=300, chunk_overlap=0)
    assert (store.paper_ids("default") == set()) is exclusive
    library.close()
    store.close()
