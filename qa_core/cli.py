"""``python -m qa_core`` / ``margin``: the command-line contract other tools drive.

Errors are one line on stderr and a non-zero exit (a traceback only with ``--debug``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from qa_core import matrix
from qa_core.answering.serialization import answer_json, hit_json
from qa_core.errors import MarginError
from qa_core.evaluation import experiment, qasper
from qa_core.ingest.library import IngestResult
from qa_core.service import Service, build
from qa_core.settings import Settings

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="margin", description="Ask questions about papers.")
    p.add_argument("--data-dir", type=Path, help="data folder (default: $MARGIN_DATA_DIR)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True)

    ing = sub.add_parser("ingest", help="index PDFs or folders of PDFs")
    ing.add_argument("paths", nargs="+", type=Path)
    ing.add_argument("--json", action="store_true")

    pap = sub.add_parser("papers", help="list the library")
    pap.add_argument("--json", action="store_true")

    sea = sub.add_parser("search", help="retrieve passages")
    sea.add_argument("query", nargs="?")
    sea.add_argument("--queries", type=Path, help="JSONL file: {id, query, papers?} per line")
    sea.add_argument("--paper", action="append", dest="papers")
    sea.add_argument("-k", type=int, default=None)
    sea.add_argument("--json", action="store_true")

    dele = sub.add_parser("delete", help="remove a paper")
    dele.add_argument("paper_id")

    ask = sub.add_parser("ask", help="answer a question with verified evidence")
    ask.add_argument("question")
    ask.add_argument("--paper", action="append", dest="papers")
    ask.add_argument("--template", help="template name or .txt file")
    ask.add_argument("--model", help="chat model (overrides MARGIN_CHAT_MODEL)")
    ask.add_argument("--json", action="store_true")

    ext = sub.add_parser("extract", help="answer a question set about papers with several models")
    _matrix_args(ext)
    ext.add_argument("--out", type=Path, required=True, help="FILE.csv or FILE.json")
    ext.add_argument("--long", action="store_true", help="one row per cell and model")

    evl = sub.add_parser("eval", help="measure Margin against reference data")
    evs = evl.add_subparsers(dest="eval_command", required=True)
    agr = evs.add_parser("agreement", help="matrix yes/no against human y/n labels")
    _matrix_args(agr)
    agr.add_argument("--labels", type=Path, required=True, help="CSV: a paper per row, y/n")
    agr.add_argument("--map", type=Path, help="JSON/CSV: label variable -> question ids")
    agr.add_argument("--json", action="store_true")
    for name, text in (
        ("retrieval", "QASPER evidence recall@k and MRR of the configured pipeline"),
        ("answers", "QASPER Answer-F1 and abstention on unanswerable questions (needs an LLM)"),
        ("templates", "compare two templates on a pilot set of QASPER questions (needs an LLM)"),
    ):
        q = evs.add_parser(name, help=text)
        if name == "templates":
            q.add_argument("a", help="template name or .txt file")
            q.add_argument("b", help="template name or .txt file")
        q.add_argument("--qasper", type=Path, required=True, help="QASPER folder or JSON file")
        q.add_argument("--papers", type=int, default=20, help="first N papers by id; 0 = all")
        if name != "retrieval":
            q.add_argument("--template", help="template name or .txt file (answers)")
            q.add_argument("--pilot", type=int, help="at most N questions")
    return p


def _matrix_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--questions", default=matrix.BUILTIN_NAME, help="question set name or .csv")
    p.add_argument("--paper", action="append", dest="papers", help="paper id (default: all)")
    p.add_argument(
        "--model",
        action="append",
        dest="models",
        default=[],
        help="NAME (on the configured endpoint) or NAME=MODEL@BASE_URL (key from "
        "$MARGIN_API_KEY_<NAME>); repeat for several models",
    )
    p.add_argument("--template", help="template name or .txt file")
    p.add_argument("--binary", metavar="MODEL", help="yes/no by the seed paper's prompt")
    p.add_argument("--concurrency", type=int, default=4, help="requests at once per endpoint")
    p.add_argument("--retry-failed", action="store_true", help="recompute failed cells")


def _ingest(svc: Service, args: argparse.Namespace, out: TextIO) -> int:
    def show(path: Path, n: int, total: int, stage: str, done: float) -> None:
        line = f"[{n}/{total}] {path.name}: {stage} {done:.0%}"
        print(f"\r\033[K{line[:120]}", end="", file=sys.stderr, flush=True)

    failed = 0
    tty = sys.stderr.isatty()
    for result in svc.ingest_paths(args.paths, progress=show if tty else None):
        failed += result.status == "failed"
        if tty:
            print("\r\033[K", end="", file=sys.stderr, flush=True)
        out.write(_ingest_line(result, args.json) + "\n")
        out.flush()
    return 1 if failed else 0


def _ingest_line(r: IngestResult, as_json: bool) -> str:
    if as_json:
        return json.dumps(dataclasses.asdict(r), ensure_ascii=False)
    if r.status == "failed":
        return f"failed     {r.file}: {r.error}"
    line = f"{r.status:<10} {r.file}  {r.paper_id}  {r.pages} pages, {r.chunks} chunks  {r.title}"
    return line + "".join(f"\n  warning: {w}" for w in r.warnings)


def _search(svc: Service, args: argparse.Namespace, out: TextIO) -> int:
    if args.queries:
        for line in args.queries.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                query = str(item["query"])
            except (ValueError, KeyError, TypeError) as exc:
                raise MarginError(f"Bad line in {args.queries}: {line[:60]!r} ({exc}).") from None
            hits = svc.search(query, papers=item.get("papers"), k=args.k)
            out.write(
                json.dumps(
                    {"id": item.get("id"), "hits": [hit_json(h) for h in hits]}, ensure_ascii=False
                )
                + "\n"
            )
        return 0
    if not args.query:
        raise MarginError("Give a query, or --queries FILE.jsonl.")
    hits = svc.search(args.query, papers=args.papers, k=args.k)
    if args.json:
        out.write(json.dumps([hit_json(h) for h in hits], ensure_ascii=False, indent=1) + "\n")
    for i, h in enumerate(hits if not args.json else [], start=1):
        pages = f"p. {h.chunk.page_start}" + (
            f"-{h.chunk.page_end}" if h.chunk.page_end != h.chunk.page_start else ""
        )
        out.write(f"{i}. {h.title} — {pages} — {h.chunk.section or '-'} ({h.score:.4f})\n")
        out.write("   " + " ".join(h.chunk.text.split())[:300] + "\n")
    return 0


def _ask(svc: Service, args: argparse.Namespace, out: TextIO) -> int:
    def write(delta: str) -> None:
        out.write(delta)
        out.flush()

    streaming = not args.json and (svc.chat is not None or args.model is not None)
    answer = svc.ask(
        args.question,
        papers=args.papers,
        template=args.template,
        model=args.model,
        on_delta=write if streaming else None,
    )
    if args.json:
        out.write(json.dumps(answer_json(answer), ensure_ascii=False, indent=1) + "\n")
        return 0
    if answer.notice:
        out.write(answer.notice + "\n\n")
    if not streaming or not answer.prompt:  # nothing was streamed
        out.write(answer.answer + "\n")
    out.write(f"\n[{answer.status}]\n")
    for q in answer.quotes:
        where = f"{q.paper_id} p. {q.page}" if q.page else "not found in the paper"
        out.write(f'- {q.status:<13} "{q.text}" ({where})\n')
    return 0


def _matrix(
    svc: Service, args: argparse.Namespace, questions: matrix.QuestionSet, papers: list[str] | None
) -> matrix.Matrix:
    models = matrix.resolve_models(svc, args.models)
    binary = matrix.resolve_models(svc, [args.binary]).popitem()[1] if args.binary else None
    tty = sys.stderr.isatty()

    def progress(p: matrix.CellProgress) -> None:
        left = f", about {p.eta:.0f} s left" if p.eta is not None else ""
        print(f"\r\033[K[{p.done}/{p.total}] cells{left}", end="", file=sys.stderr, flush=True)

    with matrix.MatrixCache.for_settings(svc.settings) as cache:
        try:
            return matrix.run_matrix(
                svc,
                papers,
                questions,
                models,
                cache=cache,
                template=args.template,
                concurrency=args.concurrency,
                on_cell=progress if tty else None,
                binary=binary,
                retry_failed=args.retry_failed,
            )
        finally:
            if tty:
                print("\r\033[K", end="", file=sys.stderr, flush=True)


def _extract(svc: Service, args: argparse.Namespace, out: TextIO) -> int:
    if args.out.suffix.lower() not in (".csv", ".json"):
        raise MarginError(f"--out must end in .csv or .json, not {args.out.name!r}.")
    questions = matrix.QuestionSetStore(svc.settings.data_dir).get(args.questions)
    grid = _matrix(svc, args, questions, args.papers)
    matrix.export(grid, args.out, shape="long" if args.long else "wide")
    failed = grid.failed
    for cell in failed[:5]:
        print(
            f"margin: {cell.paper_id} {cell.question_id} {cell.model}: {cell.error}",
            file=sys.stderr,
        )
    if len(failed) > 5:
        print(f"margin: … and {len(failed) - 5} more failed cells.", file=sys.stderr)
    out.write(
        f"wrote {args.out}: {len(grid.cells)} of {grid.total} cells, "
        f"{grid.computed} computed, {len(failed)} failed\n"
    )
    return 1 if failed or grid.cancelled else 0


def _eval_qasper(svc: Service, args: argparse.Namespace, out: TextIO) -> int:
    s = svc.settings
    papers = qasper.load_qasper(args.qasper, limit_papers=args.papers or None)
    exp = experiment.Experiment(papers, svc.embedder)
    if args.eval_command == "retrieval":
        label = f"hybrid {s.dense_weight:g}:{s.sparse_weight:g}, {s.chunk_tokens}/{s.chunk_overlap}"
        way = experiment.Retrieval(
            label, dense_weight=s.dense_weight, sparse_weight=s.sparse_weight
        )
        splitter = experiment.token_splitter(s.chunk_tokens, s.chunk_overlap)
        out.write(exp.report(exp.run(splitter, [way])).table() + "\n")
        return 0
    if svc.chat is None:
        raise MarginError("This evaluation needs an LLM; set OPENAI_BASE_URL / OPENAI_API_KEY.")
    names = [args.a, args.b] if args.eval_command == "templates" else [args.template]
    templates = [svc.templates.get(n) if n else svc.templates.active() for n in names]
    scores = exp.answers(svc.chat, templates, s, limit=args.pilot)
    out.write(experiment.ANSWER_TABLE_HEAD + "\n" + "\n".join(x.row() for x in scores) + "\n")
    return 0


def _eval(svc: Service, args: argparse.Namespace, out: TextIO) -> int:
    if args.eval_command != "agreement":
        return _eval_qasper(svc, args, out)
    labels = matrix.load_labels(args.labels)
    mapping = matrix.load_label_map(args.map)
    questions = matrix.QuestionSetStore(svc.settings.data_dir).get(args.questions)
    questions = questions.subset([q for ids in mapping.values() for q in ids])
    papers = args.papers or [p.paper_id for p in svc.papers() if any(r.matches(p) for r in labels)]
    if not papers:
        raise MarginError(
            "No paper in the library matches a row of the labels by DOI or title; "
            "ingest the labelled papers first."
        )
    grid = _matrix(svc, args, questions, papers)
    report = matrix.score_labels(grid, labels, mapping)
    rows = [*report.variables, report.overall]
    if args.json:
        out.write(json.dumps([_score_json(s) for s in rows], indent=1) + "\n")
    else:
        out.write(f"{'variable':<40} {'n':>3} {'accuracy':>8} {'kappa':>6}  questions\n")
        for s in rows:
            acc = "-" if s.accuracy is None else f"{s.accuracy:.2f}"
            kappa = "-" if s.kappa is None else f"{s.kappa:.2f}"
            ids = " ".join(s.questions) if s.variable != "overall" else ""
            out.write(f"{s.variable[:40]:<40} {s.n:>3} {acc:>8} {kappa:>6}  {ids}\n")
    for row in report.unmatched:
        print(
            f"margin: line {row.line} of the labels matches no paper: {row.title}", file=sys.stderr
        )
    return 1 if grid.failed else 0


def _score_json(s: matrix.Score) -> dict[str, Any]:
    return dataclasses.asdict(s) | {"accuracy": s.accuracy}


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the CLI; returns the exit code."""
    args = _parser().parse_args(argv)
    out = out or sys.stdout
    try:
        overrides: dict[str, Any] = {"data_dir": args.data_dir} if args.data_dir else {}
        svc = build(Settings(**overrides))
        try:
            if args.command == "ingest":
                return _ingest(svc, args, out)
            if args.command == "papers":
                rows = svc.papers()
                if args.json:
                    out.write(json.dumps([dataclasses.asdict(p) for p in rows], indent=1) + "\n")
                for p in rows if not args.json else []:
                    out.write(f"{p.paper_id}  {p.pages:>3} pages {p.chunks:>4} chunks  {p.title}\n")
                return 0
            if args.command == "search":
                return _search(svc, args, out)
            if args.command == "extract":
                return _extract(svc, args, out)
            if args.command == "eval":
                return _eval(svc, args, out)
            if args.command == "delete":
                svc.delete(args.paper_id)
                out.write(f"deleted {args.paper_id}\n")
                return 0
            return _ask(svc, args, out)
        finally:
            svc.close()
    except MarginError as exc:
        if args.debug:
            raise
        print(f"margin: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        if args.debug:
            raise
        print(
            f"margin: unexpected error ({type(exc).__name__}: {exc}); rerun with --debug.",
            file=sys.stderr,
        )
        return 3
    except KeyboardInterrupt:
        print("margin: interrupted.", file=sys.stderr)
        return 130
