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

from qa_core.errors import MarginError
from qa_core.library import IngestResult
from qa_core.models import Answer, Hit
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
    return p


def _hit_json(hit: Hit) -> dict[str, Any]:
    c = hit.chunk
    return {
        "paper_id": c.paper_id,
        "title": hit.title,
        "chunk_id": c.chunk_id,
        "text": c.text,
        "page_start": c.page_start,
        "page_end": c.page_end,
        "section": c.section,
        "score": round(hit.score, 6),
    }


def answer_json(answer: Answer) -> dict[str, Any]:
    """The ``ask --json`` object (also what the app offers as a download)."""
    return {
        "question": answer.question,
        "answer": answer.answer,
        "status": answer.status,
        "model": answer.model,
        "template": {"name": answer.template_name, "hash": answer.template_hash},
        "prompt": answer.prompt,
        "usage": answer.usage,
        "timings": {k: round(v, 4) for k, v in answer.timings.items()},
        "notice": answer.notice,
        "contexts": [{"n": c.n, **_hit_json(c.hit)} for c in answer.contexts],
        "quotes": [
            {
                "text": q.text,
                "context_n": q.context_n,
                "status": q.status,
                "paper_id": q.paper_id,
                "page": q.page,
                "boxes": [[round(v, 2) for v in box] for box in q.boxes],
            }
            for q in answer.quotes
        ],
    }


def _ingest(svc: Service, args: argparse.Namespace, out: TextIO) -> int:
    failed = 0
    tty = sys.stderr.isatty()
    for n, result in enumerate(svc.ingest_paths(args.paths), start=1):
        failed += result.status == "failed"
        if tty:
            print(f"\r[{n}] {result.file}", end="", file=sys.stderr, flush=True)
            print("\r\033[K", end="", file=sys.stderr)
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
                    {"id": item.get("id"), "hits": [_hit_json(h) for h in hits]}, ensure_ascii=False
                )
                + "\n"
            )
        return 0
    if not args.query:
        raise MarginError("Give a query, or --queries FILE.jsonl.")
    hits = svc.search(args.query, papers=args.papers, k=args.k)
    if args.json:
        out.write(json.dumps([_hit_json(h) for h in hits], ensure_ascii=False, indent=1) + "\n")
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
