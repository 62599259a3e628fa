"""Search latency of both store engines against the floor of one numpy matrix-vector product.

Synthetic library: papers of 50 chunks, ~120 Zipf-distributed pseudo-words per chunk, random
384-d unit vectors (fixed seed). Modes: dense, hybrid, hybrid filtered to one paper (k=8).

    PYTHONPATH=. .venv/bin/python bench/store.py [--quick]

``--quick`` runs 10k chunks only. qdrant-client's local mode is pure Python; it runs at 100k
only when its 10k numbers say that would finish in reasonable time.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

from qa_core.models import Chunk, Span
from qa_core.store import EdgeStore, SearchQuery, ServerStore, VectorStore

DIM = 384
PAPER = 50  # chunks per paper
SEED = 1234
K = 8
MAX_SLOW_QUERY_S = 0.25  # local mode at 100k is skipped above this (estimated) latency
MAX_SLOW_LOAD_S = 120.0  # ... or above this (estimated) load time

Floats = npt.NDArray[np.float32]


def vocabulary(rng: np.random.Generator, size: int = 20_000) -> list[str]:
    """Pronounceable pseudo-words, so the stemmer and stopword list see word-like tokens."""
    consonants = list("bcdfghklmnprstvz")
    vowels = list("aeiou")
    words: set[str] = set()
    while len(words) < size:
        syllables = int(rng.integers(2, 5))
        words.add(
            "".join(str(rng.choice(consonants)) + str(rng.choice(vowels)) for _ in range(syllables))
        )
    return sorted(words)


def corpus(n: int) -> tuple[list[list[Chunk]], Floats, list[str], npt.NDArray[np.float64]]:
    """Papers of chunks, their vectors, the vocabulary and its Zipf word probabilities."""
    rng = np.random.default_rng(SEED)
    words = vocabulary(rng)
    weights: npt.NDArray[np.float64] = 1.0 / np.arange(1, len(words) + 1, dtype=np.float64) ** 1.07
    weights /= weights.sum()
    lengths = rng.integers(80, 160, size=n)
    picks = rng.choice(len(words), size=int(lengths.sum()), p=weights)
    papers: list[list[Chunk]] = []
    at = 0
    for i in range(n):
        text = " ".join(words[j] for j in picks[at : at + lengths[i]])
        at += int(lengths[i])
        paper_id = f"p{i // PAPER:05d}"
        if i % PAPER == 0:
            papers.append([])
        papers[-1].append(
            Chunk(
                paper_id, f"{paper_id}:{i % PAPER:03d}", i % PAPER, text, (Span(1, 0, len(text)),)
            )
        )
    vectors = rng.standard_normal((n, DIM), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return papers, vectors, words, weights


def queries(
    count: int, n: int, words: list[str], weights: npt.NDArray[np.float64]
) -> list[tuple[str, Floats, str]]:
    """(text, vector, a paper to filter on) triples; words drawn from the middle of the Zipf."""
    rng = np.random.default_rng(SEED + 1)
    out = []
    for _ in range(count):
        text = " ".join(words[j] for j in rng.choice(len(words), size=5, p=weights) + 50)
        vector = rng.standard_normal(DIM).astype(np.float32)
        paper = f"p{int(rng.integers(0, n // PAPER)):05d}"
        out.append((text, vector / np.linalg.norm(vector), paper))
    return out


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p95, in milliseconds."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p95 * 1000


def floor(vectors: Floats, qs: list[tuple[str, Floats, str]]) -> list[float]:
    """The least any search must do: one matrix-vector product over every vector."""
    samples = []
    for _, vector, _ in qs:
        start = time.perf_counter()
        vectors @ vector
        samples.append(time.perf_counter() - start)
    return samples


def load(store: VectorStore, papers: list[list[Chunk]], vectors: Floats, per_add: int) -> float:
    """Add ``per_add`` papers per call (ingest adds one); returns points per second."""
    start = time.perf_counter()
    at = 0
    for i in range(0, len(papers), per_add):
        chunks = [c for paper in papers[i : i + per_add] for c in paper]
        store.add(chunks, vectors[at : at + len(chunks)], workspace="default", title="T")
        at += len(chunks)
    return at / (time.perf_counter() - start)


def add_one_paper_ms(store: VectorStore, papers: list[list[Chunk]], vectors: Floats) -> float:
    """p50 of adding one more paper to the full store, as ingest does (then removed again)."""
    samples = []
    for i, paper in enumerate(papers[:10]):
        extra = [Chunk(f"extra{i}", f"extra{i}:{c.index}", c.index, c.text, c.spans) for c in paper]
        start = time.perf_counter()
        store.add(extra, vectors[: len(extra)], workspace="default", title="T")
        samples.append(time.perf_counter() - start)
        store.delete(f"extra{i}", workspace="default")
    return statistics.median(samples) * 1000


def measure(
    store: VectorStore, qs: list[tuple[str, Floats, str]]
) -> dict[str, tuple[float, float]]:
    """p50/p95 per mode over the queries (after a few warm-up queries)."""
    modes: dict[str, Callable[[str, Floats, str], SearchQuery]] = {
        "dense": lambda t, v, p: SearchQuery(text=t, vector=v, k=K, mode="dense"),
        "hybrid": lambda t, v, p: SearchQuery(text=t, vector=v, k=K),
        "hybrid, 1 paper": lambda t, v, p: SearchQuery(text=t, vector=v, k=K, papers=[p]),
    }
    results = {}
    for mode, make in modes.items():
        built = [make(*q) for q in qs]
        for query in built[:5]:
            store.search(query)
        samples = []
        for query in built:
            start = time.perf_counter()
            store.search(query)
            samples.append(time.perf_counter() - start)
        results[mode] = percentiles(samples)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k chunks only")
    args = parser.parse_args()
    sizes = [10_000] if args.quick else [10_000, 100_000]
    rows: list[tuple[str, int, str, float, float, float]] = []
    notes: list[str] = []
    slow_query_s = slow_load_s = 0.0
    for n in sizes:
        papers, vectors, words, weights = corpus(n)
        qs = queries(200, n, words, weights)
        floor_samples = floor(vectors, qs)
        floor_p50, floor_p95 = percentiles(floor_samples)
        rows.append(("numpy floor", n, "matvec", floor_p50, floor_p95, floor_p95 / floor_p50))
        # Ingest adds one paper at a time; at 100k the bulk load groups 20 papers per call
        # (each add flushes, which costs more as the segment grows) and the per-paper cost
        # is measured separately on the full store.
        per_add = 1 if n <= 10_000 else 20
        with tempfile.TemporaryDirectory() as tmp:
            for name in ("edge", "client local"):
                engine_qs = qs
                if name == "client local":
                    scale = n / 10_000
                    if scale > 1 and (
                        slow_query_s * scale > MAX_SLOW_QUERY_S
                        or slow_load_s * scale > MAX_SLOW_LOAD_S
                    ):
                        notes.append(
                            f"client local at {n:,}: skipped (too slow: measured "
                            f"{slow_query_s:.3f} s/query (hybrid p50) and {slow_load_s:.0f} s "
                            "load at 10k)"
                        )
                        continue
                    engine_qs = qs[:30]  # pure Python: fewer queries
                    store: VectorStore = ServerStore(
                        "bench", embedding_name="bench", dim=DIM, url=":memory:"
                    )
                else:
                    store = EdgeStore(Path(tmp) / "edge", embedding_name="bench", dim=DIM)
                started = time.perf_counter()
                rate = load(store, papers, vectors, per_add)
                load_s = time.perf_counter() - started
                one = add_one_paper_ms(store, papers, vectors)
                notes.append(
                    f"{name} at {n:,}: upsert {rate:,.0f} points/s in adds of {per_add * PAPER} "
                    f"chunks ({load_s:.1f} s); adding one {PAPER}-chunk paper to the full "
                    f"store: {one:.0f} ms (p50)"
                )
                for mode, (p50, p95) in measure(store, engine_qs).items():
                    rows.append((name, n, mode, p50, p95, p95 / floor_p50))
                    if name == "client local" and mode == "hybrid":
                        slow_query_s, slow_load_s = p50 / 1000, load_s
                store.close()
                print(f"... {name} at {n:,} done", flush=True)
    print()
    print(
        f"k={K}; hybrid fuses the top {max(50, 4 * K)} of each retriever; papers of {PAPER} chunks."
    )
    print()
    print("| engine | n | mode | p50 ms | p95 ms | ratio p95/floor |")
    print("|---|---:|---|---:|---:|---:|")
    for engine, n, mode, p50, p95, ratio in rows:
        print(f"| {engine} | {n:,} | {mode} | {p50:.2f} | {p95:.2f} | {ratio:.1f} |")
    print()
    for note in notes:
        print(f"- {note}")


if __name__ == "__main__":
    main()
