"""Matrix throughput: 28 competency questions × 10 papers against a loopback LLM with fixed latency.

Run: ``.venv/bin/python bench/matrix.py [--latency 0.2] [--concurrency 8] [--generated-only]``.
Prints a markdown table.

- papers: the PDFs in ../shared/corpus/pdfs/papers plus generated ones up to ``--papers`` (all
  generated when ../shared is absent or with ``--generated-only``). Ingest is not measured.
- the LLM: tests/llm_server.py in its own process (as a real server would be), every request
  answered after ``--latency`` seconds with one reply quoting the generated methods paper.
- ideal = calls × latency / concurrency: the wall time if nothing but the LLM took time.
  Target: first run ≤ 1.1 × ideal; second run (all cells cached) ≤ 2 s with 0 calls.
- Margin's CPU: the benchmark process's CPU time during the run (all threads; the LLM server
  runs in another process).
- per-cell CPU: Margin's own work per answer (retrieval incl. the e5 query embedding, prompt
  fitting, reading and verifying the reply), from each answer's timings, with the load average
  of the machine (shared cores make these numbers noisy).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa_core import build, matrix  # noqa: E402
from qa_core.answering.llm import OpenAIChat  # noqa: E402
from qa_core.settings import Settings  # noqa: E402
from tests.pdfmaker import METHODS_PAPER, make_pdf  # noqa: E402

SHARED = ROOT.parent / "shared" / "corpus" / "pdfs" / "papers"
CHAT = "/v1/chat/completions"
REPLY = (
    'The model is a "Faster R-CNN architecture implemented in PyTorch 1.4" [1], trained "with '
    'stochastic gradient descent, a learning rate of 0.0025" [1].'
)
SERVER = """
import sys
from tests.llm_server import LLMServer
server = LLMServer(latency=float(sys.argv[1]), default_reply=sys.argv[2]).start()
print(server.base_url, flush=True)
for line in sys.stdin:
    print(server.count(path=sys.argv[3]), flush=True)
server.stop()
"""


class Server:
    """The loopback LLM in a child process; ``calls()`` asks it how many chats it answered."""

    def __init__(self, latency: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(latency), REPLY, CHAT],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdin and self.proc.stdout
        self.stdin, self.stdout = self.proc.stdin, self.proc.stdout
        self.base_url = self.stdout.readline().strip()

    def calls(self) -> int:
        self.stdin.write("count\n")
        self.stdin.flush()
        return int(self.stdout.readline())

    def close(self) -> None:
        self.stdin.close()
        self.proc.wait(timeout=10)


def papers(count: int, generated_only: bool) -> list[tuple[str, bytes]]:
    real = [] if generated_only else sorted(SHARED.glob("*.pdf"))[:count]
    found = [(p.name, p.read_bytes()) for p in real]
    for n in range(count - len(found)):
        pages = [
            METHODS_PAPER[0] + f"\n\nThis is generated study number {n + 1}.",
            *METHODS_PAPER[1:],
        ]
        found.append((f"generated_{n + 1}.pdf", make_pdf(pages, title=f"Generated study {n + 1}")))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--papers", type=int, default=10)
    parser.add_argument("--generated-only", action="store_true")
    args = parser.parse_args()
    server = Server(args.latency)
    with tempfile.TemporaryDirectory() as tmp:
        svc = build(Settings(data_dir=Path(tmp)), chat=None)
        try:
            t0 = time.perf_counter()
            for name, data in papers(args.papers, args.generated_only):
                result = svc.ingest(data, name)
                assert result.status == "indexed", result.error
            print(
                f"ingested {args.papers} papers in {time.perf_counter() - t0:.0f} s (not measured)"
            )
            chat = OpenAIChat(
                Settings(openai_base_url=server.base_url, chat_model="test-model", max_retries=0)
            )
            questions = matrix.builtin_questions()
            svc.embedder.embed_query("warm up")  # load the weights outside the measurement
            load = os.getloadavg()[0]
            rows = []
            with matrix.MatrixCache(Path(tmp) / matrix.CACHE_FILE) as cache:
                for _ in range(2):
                    before = server.calls()
                    start, cpu = time.perf_counter(), time.process_time()
                    grid = matrix.run_matrix(
                        svc,
                        None,
                        questions,
                        {"m": chat},
                        cache=cache,
                        concurrency=args.concurrency,
                    )
                    wall = time.perf_counter() - start
                    cpu = time.process_time() - cpu
                    rows.append((wall, cpu, server.calls() - before, grid))
        finally:
            svc.close()
            server.close()
    (wall1, cpu1, calls1, first), (wall2, cpu2, calls2, _) = rows
    ideal = calls1 * args.latency / args.concurrency
    assert not first.failed, first.failed[0].error
    timings = [c.answer["timings"] for c in first.cells.values() if c.answer]
    print()
    print(
        f"{len(first.papers)} papers × {len(questions.questions)} questions, latency "
        f"{args.latency * 1000:.0f} ms, concurrency {args.concurrency}, "
        f"load average {load:.1f} on {os.cpu_count()} cores"
    )
    print()
    print("| run | calls | wall s | ideal s | ratio | target | Margin's CPU s |")
    print("|---|---:|---:|---:|---:|---|---:|")
    print(
        f"| first | {calls1} | {wall1:.2f} | {ideal:.2f} | {wall1 / ideal:.2f} | ≤ 1.10 "
        f"| {cpu1:.2f} |"
    )
    print(f"| second (cached) | {calls2} | {wall2:.2f} | 0 | - | ≤ 2 s, 0 calls | {cpu2:.2f} |")
    print()
    print("| per cell, ms | median | p90 | total s (sum over cells) |")
    print("|---|---:|---:|---:|")
    for stage in ("retrieve", "prompt", "llm", "verify"):
        values = sorted(t.get(stage, 0.0) * 1000 for t in timings)
        p90 = values[int(0.9 * (len(values) - 1))]
        total = sum(values) / 1000
        print(f"| {stage} | {statistics.median(values):.1f} | {p90:.1f} | {total:.1f} |")
    statuses = {s: sum(c.status == s for c in first.cells.values()) for s in ("answered",)}
    print(f"\nstatuses: {statuses}, cells: {len(first.cells)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
