"""Margin's overhead around the LLM: retrieval + prompt + verification, per answer.

A loopback OpenAI-compatible server answers with a fixed latency and a reply carrying quotes
(two real, one invented). floor = the same streamed chat request made directly with the
OpenAI-compatible client; total = Service.ask end to end at k = 8. overhead = total - floor.
Target: overhead <= 150 ms per answer on 2 cores. Usage: python bench/answer.py [--latency S]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the loopback server lives with the tests

from qa_core import build  # noqa: E402
from qa_core.answering import prompts  # noqa: E402
from qa_core.answering.llm import OpenAIChat  # noqa: E402
from qa_core.settings import Settings  # noqa: E402
from tests.llm_server import LLMServer  # noqa: E402

PAPER = ROOT / "tests" / "data" / "kg_8.pdf"
REPLY = (
    'The network is a Faster R-CNN: "Faster R-CNN networks have shown state-of-the-art '
    'performances in various object detection" [1]. It was implemented with "the Detectron '
    'framework on a GPU with 48 thousand iterations" [2]. The authors also "fine-tuned a vision '
    'transformer on 10,000 synthetic sheets" [3].'
)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("-n", type=int, default=28, help="questions (the 28 CQs, cycled)")
    args = parser.parse_args()
    questions = prompts.competency_questions()
    questions = (questions * (args.n // len(questions) + 1))[: args.n]
    with (
        LLMServer(("bench-model",), latency=args.latency, default_reply=REPLY) as server,
        tempfile.TemporaryDirectory() as tmp,
    ):
        settings = Settings(
            data_dir=Path(tmp),
            openai_base_url=server.base_url,
            chat_model="bench-model",
            top_k=8,
        )
        svc = build(settings)
        result = svc.ingest(PAPER.read_bytes(), PAPER.name)
        assert result.status == "indexed", result.error
        svc.ask(questions[0])  # warm-up: model weights, encodings, page cache
        direct = OpenAIChat(settings)
        floors, totals, parts = [], [], {"retrieve": [], "prompt": [], "verify": []}
        statuses: dict[str, int] = {}
        for q in questions:
            t0 = time.perf_counter()
            answer = svc.ask(q, on_delta=lambda d: None)
            totals.append(time.perf_counter() - t0)
            for key, values in parts.items():
                values.append(answer.timings.get(key, 0.0))
            for quote in answer.quotes:
                statuses[quote.status] = statuses.get(quote.status, 0) + 1
            t1 = time.perf_counter()
            direct.complete(
                answer.prompt, max_tokens=settings.answer_tokens, on_delta=lambda d: None
            )
            floors.append(time.perf_counter() - t1)
        svc.close()
    overhead = [t - f for t, f in zip(totals, floors, strict=True)]
    ms = 1000.0
    print(
        f"{len(questions)} answers, k = 8, server latency {args.latency * ms:.0f} ms, "
        f"quote statuses {statuses}\n"
    )
    print("| measure | p50 ms | p95 ms |")
    print("|---|---:|---:|")
    for name, values in [
        ("floor: direct LLM call", floors),
        ("total: Service.ask", totals),
        ("overhead (total - floor)", overhead),
        *((f"  of which {k}", v) for k, v in parts.items()),
    ]:
        print(f"| {name} | {statistics.median(values) * ms:.1f} | {pct(values, 0.95) * ms:.1f} |")
    p50 = statistics.median(overhead) * ms
    print(
        f"\ntarget: overhead <= 150 ms per answer -> p50 {p50:.0f} ms "
        f"({p50 / 150:.2f} of the budget)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
