"""Throughput of ``margin search --queries FILE.jsonl`` after start-up.

Runs the real CLI twice on the same library: with 1 query (start-up: imports, model load,
store open) and with N queries; throughput = (N - 1) / (t_N - t_1). Target: >= 20 queries/s
on 2 cores with the embedded defaults. Usage: python bench/search_cli.py [-n 200]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAPERS = ROOT.parent / "shared" / "corpus" / "pdfs" / "papers"
QUESTIONS = ROOT / "qa_core" / "data" / "competency_questions.txt"


def cli(data: Path, *args: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "qa_core", "--data-dir", str(data), *args],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=200)
    args = parser.parse_args()
    source = PAPERS if PAPERS.exists() else ROOT / "tests" / "data"
    questions = [q.strip() for q in QUESTIONS.read_text().splitlines() if q.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        print(f"indexing {source} ...", file=sys.stderr)
        cli(data, "ingest", str(source))
        files = {}
        for n in (1, args.n):
            path = Path(tmp) / f"q{n}.jsonl"
            path.write_text(
                "".join(
                    json.dumps({"id": i, "query": f"{questions[i % len(questions)]} ({i})"}) + "\n"
                    for i in range(n)
                )
            )
            files[n] = path
        t1 = min(cli(data, "search", "--queries", str(files[1]), "-k", "8") for _ in range(2))
        tn = cli(data, "search", "--queries", str(files[args.n]), "-k", "8")
    rate = (args.n - 1) / (tn - t1)
    print("| run | queries | wall s |")
    print("|---|---:|---:|")
    print(f"| start-up (1 query) | 1 | {t1:.2f} |")
    print(f"| batch | {args.n} | {tn:.2f} |")
    print(f"\nafter start-up: {rate:.1f} queries/s (target >= 20: {rate / 20:.1f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
