"""Both store engines, run through the same cases: they must rank identically.

The embedded engine runs in ``tmp_path``; qdrant-client's local mode stands in for a server.
Vectors are seeded random unit vectors (no embedding model), text is seeded prose.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pytest
from qdrant_client import QdrantClient, models

from qa_core.errors import ConfigError, EmbeddingMismatch, StoreError
from qa_core.models import Chunk, Span
from qa_core.settings import Settings
from qa_core.store import EdgeStore, SearchQuery, ServerStore, VectorStore, open_store

DIM = 32
EMBEDDING = "test:random-32"
WORDS = """
abstract accuracy activation adaptive algorithm alignment amplitude analysis annotation anomaly
approximation architecture assay asymmetric attention baseline batch bayesian benchmark bias
binding biomarker boundary calibration capacity carbon catalyst causal cell channel classifier
climate clinical cluster coefficient cohort compression concentration confidence convergence
correlation cortex covariance crystal cytokine dataset decay decoder density deposition
diffusion dimension dispersion distribution dopamine dynamics ecosystem efficiency eigenvalue
electrode emission encoder energy entropy enzyme equilibrium error estimator evaluation
evolution excitation experiment exposure feedback fermentation fidelity filter fluorescence
flux forecast fragment frequency function gene genome gradient graph habitat heterogeneity
hypothesis imaging immune incidence inference inhibitor instability interaction interval
isotope kernel kinetics label lattice layer ligand likelihood lineage longitudinal magnetic
marker matrix measurement mechanism membrane metabolism metric microbial migration model
molecule momentum morphology mortality mutation network neuron noise nonlinear nucleus
observation optimization orbital oscillation outcome oxidation parameter particle pathway
perturbation phase phenotype photon plasma polymer population posterior precipitation precision
prediction pressure prior probability protein protocol pulse quantum radiation random reaction
receptor recurrence regression regulation reinforcement relaxation replication residual
resistance resolution resonance response robustness sample sampling scattering sediment segment
sensitivity sequence signal simulation soil solvent spectrum stability stimulus strain stress
substrate surface survival symmetry synapse synthesis temperature tensor threshold tissue
trajectory transcription transfer transition treatment turbulence uncertainty validation
variance velocity viscosity voltage wavelength yield
""".split()  # noqa: SIM905
FILLER = "the of and in a to with was for that by we were on as from is this these".split()  # noqa: SIM905
Mode = Literal["dense", "sparse", "hybrid"]
RARE = "zymurgical"  # appears in exactly one chunk


def _prose(rng: np.random.Generator, words: int) -> str:
    picks = [
        str(rng.choice(WORDS)) if rng.random() < 0.6 else str(rng.choice(FILLER))
        for _ in range(words)
    ]
    return " ".join(picks).capitalize() + "."


def make_paper(paper_id: str, n: int, seed: int) -> tuple[list[Chunk], npt.NDArray[np.float32]]:
    """``n`` chunks (the last two are references) and their unit vectors."""
    rng = np.random.default_rng(seed)
    chunks = []
    for i in range(n):
        back = i >= n - 2
        text = _prose(rng, int(rng.integers(40, 90)))
        chunks.append(
            Chunk(
                paper_id=paper_id,
                chunk_id=f"{paper_id}:{i:03d}",
                index=i,
                text=text,
                spans=(Span(1 + i // 3, 0, len(text) // 2), Span(2 + i // 3, 0, len(text) // 2)),
                section="References" if back else f"Section {i // 5}",
                back_matter=back,
            )
        )
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return chunks, vectors


PAPERS = {f"paper{p}": make_paper(f"paper{p}", 40, seed=p) for p in range(8)}
# Plant the rare word in one body chunk.
_c = PAPERS["paper3"][0][17]
PAPERS["paper3"][0][17] = Chunk(
    _c.paper_id, _c.chunk_id, _c.index, f"{_c.text} A {RARE} assay.", _c.spans, _c.section
)
OTHER = {"paper0": make_paper("paper0", 40, seed=100), "paperX": make_paper("paperX", 40, seed=7)}
ALL = [(c, v) for chunks, vectors in PAPERS.values() for c, v in zip(chunks, vectors, strict=True)]


def fill(store: VectorStore) -> None:
    for paper_id, (chunks, vectors) in PAPERS.items():
        store.add(chunks, vectors, workspace="default", title=f"Title of {paper_id}")
    for paper_id, (chunks, vectors) in OTHER.items():
        store.add(chunks, vectors, workspace="other", title=f"Other {paper_id}")


Opener = Callable[[Path, str, int], EdgeStore | ServerStore]
OPENERS: dict[str, Opener] = {
    "edge": lambda path, name, dim: EdgeStore(path / "edge", embedding_name=name, dim=dim),
    "server": lambda path, name, dim: ServerStore(
        "margin", embedding_name=name, dim=dim, path=path / "local"
    ),
}


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, VectorStore]]:
    """Both engines holding the same corpus (read-only tests)."""
    stores: dict[str, VectorStore] = {
        "edge": EdgeStore(tmp_path_factory.mktemp("edge"), embedding_name=EMBEDDING, dim=DIM),
        "server": ServerStore("margin", embedding_name=EMBEDDING, dim=DIM, url=":memory:"),
    }
    for store in stores.values():
        fill(store)
    yield stores
    for store in stores.values():
        store.close()


@pytest.fixture(params=["edge", "server"])
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(filled: dict[str, VectorStore], engine: str) -> VectorStore:
    return filled[engine]


@pytest.fixture
def fresh(tmp_path: Path, engine: str) -> Iterator[VectorStore]:
    """An empty store of the engine, for tests that write."""
    if engine == "edge":
        opened: VectorStore = EdgeStore(tmp_path, embedding_name=EMBEDDING, dim=DIM)
    else:  # in memory: local mode's on-disk writes are slow and tested separately
        opened = ServerStore("margin", embedding_name=EMBEDDING, dim=DIM, url=":memory:")
    yield opened
    opened.close()


def near(vector: npt.NDArray[np.float32], seed: int = 0) -> npt.NDArray[np.float32]:
    noise = np.random.default_rng(seed).normal(size=DIM).astype(np.float32) * 0.05
    out: npt.NDArray[np.float32] = vector + noise
    return out / np.linalg.norm(out)


def ids(store: VectorStore, **kwargs: Any) -> list[str]:
    return [h.chunk.chunk_id for h in store.search(SearchQuery(**kwargs))]


# -- retrieval -----------------------------------------------------------------------------


def test_dense_top_k_matches_brute_force(store: VectorStore) -> None:
    body = [(c, v) for c, v in ALL if not c.back_matter]
    matrix = np.stack([v for _, v in body])
    query = near(PAPERS["paper5"][1][9])
    expected = [body[i][0].chunk_id for i in np.argsort(-(matrix @ query))[:10]]
    assert expected[0] == "paper5:009"
    assert ids(store, text="", vector=query, k=10, mode="dense") == expected


def test_sparse_rare_word_ranks_its_chunk_first(store: VectorStore) -> None:
    hits = store.search(SearchQuery(text=f"{RARE}", vector=near(ALL[0][1]), mode="sparse"))
    assert hits[0].chunk.chunk_id == "paper3:017"
    assert len(hits) == 1  # no other chunk contains the word
    # Stemming: the plural finds it too.
    assert ids(store, text=f"{RARE}s", vector=ALL[0][1], mode="sparse") == ["paper3:017"]


def test_hit_carries_the_stored_chunk_and_title(store: VectorStore) -> None:
    chunk, vector = PAPERS["paper2"][0][4], PAPERS["paper2"][1][4]
    hit = store.search(SearchQuery(text="", vector=vector, k=1, mode="dense"))[0]
    assert hit.chunk == chunk
    assert hit.title == "Title of paper2"
    assert hit.score == pytest.approx(1 / 61)


def test_hybrid_is_weighted_rrf_of_dense_and_sparse(store: VectorStore) -> None:
    text, vector = f"{RARE} enzyme kinetics", near(PAPERS["paper6"][1][3])
    n = 50  # hybrid fetches max(50, 4k) candidates from each retriever
    dense = ids(store, text=text, vector=vector, k=n, mode="dense")
    sparse = ids(store, text=text, vector=vector, k=n, mode="sparse")
    expected: dict[str, float] = {}
    for ranking, weight in ((dense, 2.0), (sparse, 1.0)):
        for rank, chunk_id in enumerate(ranking, start=1):
            expected[chunk_id] = expected.get(chunk_id, 0.0) + weight / (60 + rank)
    best = sorted(expected, key=lambda c: (-expected[c], c))[:8]
    hits = store.search(SearchQuery(text=text, vector=vector, k=8))
    assert [h.chunk.chunk_id for h in hits] == best
    assert [h.score for h in hits] == pytest.approx([expected[c] for c in best])
    assert hits[0].chunk.chunk_id == "paper6:003"  # dense top-1 with weight 2


@pytest.mark.parametrize(
    ("papers", "allowed"),
    [(["paper1"], {"paper1"}), (["paper1", "paper4", "paper7"], {"paper1", "paper4", "paper7"})],
)
@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
def test_paper_filter(store: VectorStore, papers: list[str], allowed: set[str], mode: Mode) -> None:
    query = SearchQuery(
        text="protein binding energy", vector=PAPERS["paper5"][1][0], k=20, papers=papers
    )
    hits = store.search(replace(query, mode=mode))
    assert len(hits) == 20 if mode != "sparse" else hits  # BM25 returns only matching chunks
    assert {h.chunk.paper_id for h in hits} <= allowed


def test_empty_paper_list_selects_nothing(store: VectorStore) -> None:
    assert store.search(SearchQuery(text="protein", vector=ALL[0][1], papers=[])) == []


def test_workspaces_are_isolated(store: VectorStore) -> None:
    other_vector = OTHER["paper0"][1][5]
    query = SearchQuery(text="", vector=other_vector, k=30, workspace="other", mode="dense")
    hits = store.search(query)
    assert {h.chunk.paper_id for h in hits} <= {"paper0", "paperX"}
    assert hits[0].chunk.chunk_id == "paper0:005"
    assert hits[0].chunk.text == OTHER["paper0"][0][5].text  # not default's paper0:005
    assert hits[0].title == "Other paper0"
    assert ids(store, text=RARE, vector=other_vector, workspace="other", mode="sparse") == []
    assert store.search(SearchQuery(text="protein", vector=other_vector, workspace="nobody")) == []


def test_back_matter_excluded_unless_asked(store: VectorStore) -> None:
    vector = PAPERS["paper2"][1][39]  # a reference chunk
    assert "paper2:039" not in ids(store, text="", vector=vector, k=20, mode="dense")
    with_refs = ids(store, text="", vector=vector, k=20, mode="dense", include_back_matter=True)
    assert with_refs[0] == "paper2:039"


def test_paper_ids(store: VectorStore) -> None:
    assert store.paper_ids("default") == set(PAPERS)
    assert store.paper_ids("other") == {"paper0", "paperX"}
    assert store.paper_ids("nobody") == set()


@pytest.mark.parametrize(
    "query",
    [
        SearchQuery(text="", vector=near(ALL[17][1], 1), k=10, mode="dense"),
        SearchQuery(text="gradient descent convergence", vector=ALL[0][1], k=10, mode="sparse"),
        SearchQuery(text="enzyme kinetics of the substrate", vector=near(ALL[99][1], 2), k=10),
        SearchQuery(text="neuron synapse", vector=near(ALL[5][1], 3), k=10, papers=["paper0"]),
        SearchQuery(
            text="climate soil carbon flux",
            vector=near(ALL[200][1], 4),
            k=15,
            papers=["paper2", "paper5"],
            include_back_matter=True,
            dense_weight=1.0,
            sparse_weight=3.0,
        ),
        SearchQuery(text="signal noise", vector=near(ALL[7][1], 5), k=10, workspace="other"),
    ],
    ids=["dense", "sparse", "hybrid", "one-paper", "weighted+refs", "other-workspace"],
)
def test_engines_rank_identically(filled: dict[str, VectorStore], query: SearchQuery) -> None:
    edge, server = (filled[name].search(query) for name in ("edge", "server"))
    assert [h.chunk.chunk_id for h in edge] == [h.chunk.chunk_id for h in server]
    assert [h.score for h in edge] == pytest.approx([h.score for h in server])
    assert len(edge) == query.k


def test_zero_weights_are_a_config_error(store: VectorStore) -> None:
    query = SearchQuery(text="x", vector=ALL[0][1], dense_weight=0, sparse_weight=0)
    with pytest.raises(ConfigError):
        store.search(query)


def test_wrong_query_dimension(store: VectorStore) -> None:
    with pytest.raises(StoreError, match="expects 32"):
        store.search(SearchQuery(text="x", vector=np.ones(8, dtype=np.float32)))


# -- writing -------------------------------------------------------------------------------


def test_delete_removes_every_point_of_the_paper(fresh: VectorStore) -> None:
    fill(fresh)
    fresh.delete("paper0", workspace="default")
    assert fresh.paper_ids("default") == set(PAPERS) - {"paper0"}
    query = SearchQuery(text=RARE, vector=PAPERS["paper0"][1][3], k=100, include_back_matter=True)
    assert fresh.search(replace(query, papers=["paper0"])) == []
    assert all(h.chunk.paper_id != "paper0" for h in fresh.search(query))
    # The same paper id in another workspace is untouched.
    assert fresh.paper_ids("other") == {"paper0", "paperX"}


def test_re_adding_overwrites(fresh: VectorStore) -> None:
    chunks, vectors = PAPERS["paper1"]
    fresh.add(chunks, vectors, workspace="default", title="Old")
    fresh.add(chunks, vectors, workspace="default", title="New")
    hits = fresh.search(
        SearchQuery(text="", vector=vectors[0], k=100, mode="dense", include_back_matter=True)
    )
    assert len(hits) == len(chunks)
    assert {h.title for h in hits} == {"New"}


def test_add_nothing_and_mismatched_vectors(fresh: VectorStore) -> None:
    fresh.add([], np.zeros((0, DIM), dtype=np.float32), workspace="default", title="")
    chunks, vectors = PAPERS["paper1"]
    with pytest.raises(ValueError, match="expected 40 vectors"):
        fresh.add(chunks, vectors[:3], workspace="default", title="")
    with pytest.raises(StoreError, match="expects 32"):
        fresh.add(chunks, np.ones((40, 8), dtype=np.float32), workspace="default", title="")
    assert fresh.paper_ids("default") == set()


def test_idf_is_computed_within_the_workspace(fresh: VectorStore) -> None:
    def paper(paper_id: str, texts: list[str]) -> tuple[list[Chunk], npt.NDArray[np.float32]]:
        chunks = [
            Chunk(paper_id, f"{paper_id}:{i}", i, text, (Span(1, 0, len(text)),))
            for i, text in enumerate(texts)
        ]
        return chunks, np.ones((len(texts), DIM), dtype=np.float32)

    fresh.add(*paper("a", ["alpha", "beta", "beta gamma"]), workspace="A", title="")
    query = SearchQuery("alpha beta", np.ones(DIM, np.float32), mode="sparse", workspace="A")
    assert fresh.search(query)[0].chunk.chunk_id == "a:0"  # the rarer term wins
    # Flooding another workspace with "alpha" would flip the order under collection-wide IDF.
    fresh.add(*paper("b", ["alpha delta"] * 20), workspace="B", title="")
    assert fresh.search(query)[0].chunk.chunk_id == "a:0"


def test_concurrent_adds_and_searches(fresh: VectorStore) -> None:
    def add(paper_id: str) -> None:
        chunks, vectors = PAPERS[paper_id]
        fresh.add(chunks, vectors, workspace="default", title=paper_id)

    def search(seed: int) -> None:
        for chunk, vector in ALL[seed::40]:
            fresh.search(SearchQuery(text=chunk.text[:40], vector=vector))

    with ThreadPoolExecutor(4) as pool:  # searches run while papers are being written
        jobs = [pool.submit(add, p) for p in PAPERS] + [pool.submit(search, i) for i in range(4)]
        for job in jobs:
            job.result()
    assert fresh.paper_ids("default") == set(PAPERS)
    query = SearchQuery(text="", vector=ALL[0][1], k=1000, mode="dense", include_back_matter=True)
    assert len(fresh.search(query)) == len(ALL)


# -- persistence, identity, locking --------------------------------------------------------


@pytest.mark.parametrize("kind", ["edge", "server"])
def test_reopen_persists(tmp_path: Path, kind: str) -> None:
    with OPENERS[kind](tmp_path, EMBEDDING, DIM) as first:
        for paper_id in ("paper0", "paper3"):
            first.add(*PAPERS[paper_id], workspace="default", title="")
    with OPENERS[kind](tmp_path, EMBEDDING, DIM) as again:
        assert again.paper_ids("default") == {"paper0", "paper3"}
        assert ids(again, text=RARE, vector=ALL[0][1], mode="sparse") == ["paper3:017"]


@pytest.mark.parametrize("kind", ["edge", "server"])
@pytest.mark.parametrize(("name", "dim"), [("openai:text-embedding-3-small", DIM), (EMBEDDING, 16)])
def test_other_embedding_is_refused(tmp_path: Path, kind: str, name: str, dim: int) -> None:
    OPENERS[kind](tmp_path, EMBEDDING, DIM).close()
    with pytest.raises(EmbeddingMismatch) as error:
        OPENERS[kind](tmp_path, name, dim)
    assert str(error.value) == (
        f"The index was built with embedding '{EMBEDDING}' ({DIM} dims) but '{name}' "
        f"({dim} dims) is configured; re-index the library or switch back."
    )
    OPENERS[kind](tmp_path, EMBEDDING, DIM).close()  # the right one still opens


_HOLD = """
import sys, time
from qa_core.store import EdgeStore, ServerStore
path = sys.argv[2]
if sys.argv[1] == "edge":
    store = EdgeStore(path, embedding_name="test:random-32", dim=32)
else:
    store = ServerStore("margin", embedding_name="test:random-32", dim=32, path=path)
print("open", flush=True)
sys.stdin.read()
store.close()
"""


@pytest.mark.parametrize("kind", ["edge", "server"])
def test_second_process_is_refused(tmp_path: Path, kind: str) -> None:
    path = tmp_path / ("edge" if kind == "edge" else "local")
    root = Path(__file__).resolve().parents[1]
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_HOLD), kind, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": ""},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        with pytest.raises(StoreError) as error:
            OPENERS[kind](tmp_path, EMBEDDING, DIM)
        assert str(error.value) == (
            f"The library at {path} is open in another Margin process; close it first."
        )
    finally:
        holder.communicate("", timeout=30)
    OPENERS[kind](tmp_path, EMBEDDING, DIM).close()  # free again once the holder exits


_ADD_THEN_DIE = """
import os, signal, sys
import numpy as np
from qa_core.models import Chunk, Span
from qa_core.store import EdgeStore
store = EdgeStore(sys.argv[1], embedding_name="test:random-32", dim=32)
chunk = Chunk("survivor", "survivor:0", 0, "durable text", (Span(1, 0, 12),))
store.add([chunk], np.ones((1, 32), dtype=np.float32), workspace="default", title="T")
os.kill(os.getpid(), signal.SIGKILL)  # no close, no atexit
"""


def test_edge_add_survives_a_killed_process(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    subprocess.run(
        [sys.executable, "-c", _ADD_THEN_DIE, str(tmp_path)],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": ""},
        check=False,
        timeout=60,
    )
    with EdgeStore(tmp_path, embedding_name=EMBEDDING, dim=DIM) as store:
        assert store.paper_ids("default") == {"survivor"}


def test_closed_edge_store_says_so(tmp_path: Path) -> None:
    store = EdgeStore(tmp_path, embedding_name=EMBEDDING, dim=DIM)
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreError, match="is closed"):
        store.paper_ids("default")


def test_foreign_collection_is_refused(tmp_path: Path) -> None:
    client = QdrantClient(path=str(tmp_path))
    client.create_collection("margin", models.VectorParams(size=DIM, distance=models.Distance.DOT))
    client.close()
    with pytest.raises(StoreError, match="not created by Margin"):
        ServerStore("margin", embedding_name=EMBEDDING, dim=DIM, path=tmp_path)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:9", r"^Cannot reach the Qdrant server at http://127\.0\.0\.1:9: "),
        ("ftp://example.org", r"^Cannot open Qdrant at ftp://example\.org: Unknown scheme"),
    ],
)
def test_bad_server_url(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        ServerStore("margin", embedding_name=EMBEDDING, dim=DIM, url=url)


class _Refuses(BaseHTTPRequestHandler):
    """Answers every request the way Qdrant does for a wrong API key."""

    def do_GET(self) -> None:
        body = b'{"status":{"error":"Invalid api-key"}}'
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection")
def test_rejected_api_key() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refuses)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        with pytest.raises(StoreError) as error:
            ServerStore("margin", embedding_name=EMBEDDING, dim=DIM, url=url, api_key="wrong")
        assert str(error.value) == (
            f"The Qdrant server at {url} refused the API key (HTTP 403); check QDRANT_API_KEY."
        )
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("url", "kind"),
    [(None, EdgeStore), (":memory:", ServerStore), ("local:{tmp}/q", ServerStore)],
)
def test_open_store_routes_on_qdrant_url(tmp_path: Path, url: str | None, kind: type) -> None:
    settings = Settings(
        data_dir=tmp_path, qdrant_url=url.format(tmp=tmp_path) if url else None, collection="c"
    )
    store = open_store(settings, EMBEDDING, DIM)
    try:
        assert isinstance(store, kind)
        if url is None:
            assert (tmp_path / "qdrant" / "embedding.json").exists()
    finally:
        store.close()
