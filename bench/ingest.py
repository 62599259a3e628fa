"""Ingest speed per stage against a floor measured in the same run.

floor = parse (pdf.read) + one raw embedding call over the same chunk texts;
total = Library.ingest end to end (parse, chunk, embed, index into Qdrant Edge).
Target: total <= 1.5 x floor. Usage: python bench/ingest.py [PDF or folder ...]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from qa_core.embeddings import LocalE5
from qa_core.ingest import chunking, pdf
from qa_core.ingest.library import Library
from qa_core.settings import Settings
from qa_core.store import open_store

SHARED = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "pdfs" / "papers"


def main(args: list[str]) -> int:
    paths = [Path(a) for a in args] or [SHARED]
    files = sorted(p for a in paths for p in ([a] if a.is_file() else a.rglob("*.pdf")))
    if not files:
        print(f"no PDFs (is ../shared present? looked in {SHARED})", file=sys.stderr)
        return 1
    settings = Settings()
    embedder = LocalE5()
    embedder.embed_query("warm up")  # load the weights outside the measurement
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Settings(data_dir=Path(tmp)), embedder.name, embedder.dim)
        library = Library(
            Path(tmp),
            store,
            embedder,
            chunk_tokens=settings.chunk_tokens,
            chunk_overlap=settings.chunk_overlap,
        )
        for path in files:
            data = path.read_bytes()
            # floor: parse + raw embedding of the same chunks
            t0 = time.perf_counter()
            doc = pdf.read(data)
            t_parse = time.perf_counter() - t0
            chunks = chunking.split(
                doc, "x", size=settings.chunk_tokens, overlap=settings.chunk_overlap
            )
            t1 = time.perf_counter()
            embedder.embed_passages([c.text for c in chunks])
            t_embed = time.perf_counter() - t1
            # the real thing, with stage marks from the progress callback
            marks: dict[str, float] = {}

            def mark(stage: str, done: float, marks: dict[str, float] = marks) -> None:
                marks.setdefault(stage, time.perf_counter())

            start = time.perf_counter()
            result = library.ingest(data, path.name, "bench", progress=mark)
            end = time.perf_counter()
            assert result.status == "indexed", result.error
            stages = {
                "parse": marks["chunk"] - marks["parse"],
                "chunk": marks["embed"] - marks["chunk"],
                "embed": marks["index"] - marks["embed"],
                "index": end - marks["index"],
            }
            total = end - start
            floor = t_parse + t_embed
            rows.append((path.name, len(doc.pages), len(chunks), stages, total, floor))
            print(f"{path.name}: {total:.1f}s", file=sys.stderr)
        store.close()
        library.close()

    print(
        "| paper | pages | chunks | parse s | chunk s | embed s | index s | total s "
        "| floor s | total/floor |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    sums = [0.0] * 6
    for name, pages, n, st, total, floor in rows:
        vals = [st["parse"], st["chunk"], st["embed"], st["index"], total, floor]
        sums = [a + b for a, b in zip(sums, vals, strict=True)]
        cells = " | ".join(f"{v:.2f}" for v in vals)
        print(f"| {name} | {pages} | {n} | {cells} | {total / floor:.2f} |")
    pages = sum(r[1] for r in rows)
    chunks = sum(r[2] for r in rows)
    cells = " | ".join(f"{v:.2f}" for v in sums)
    print(f"| **all** | {pages} | {chunks} | {cells} | **{sums[4] / sums[5]:.2f}** |")
    print(
        f"\ntarget: total/floor <= 1.5; throughput {chunks / sums[4]:.1f} chunks/s, "
        f"{pages / sums[4]:.1f} pages/s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
