"""The façade the app and the CLI call. :func:`build` is the one place real clients are made."""

from __future__ import annotations

import dataclasses
import functools
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from qa_core import embeddings, store, tokens
from qa_core.answering import evidence, llm, prompts, replies, sentences
from qa_core.answering.llm import ChatModel
from qa_core.answering.prompts import Template
from qa_core.answering.template_store import TemplateStore
from qa_core.embeddings import Embedder, Vectors
from qa_core.errors import MarginError
from qa_core.ingest import pdf
from qa_core.ingest.library import IngestResult, Library, Progress
from qa_core.models import Answer, Box, Context, Hit, Page, Paper
from qa_core.settings import Settings
from qa_core.store import SearchQuery, VectorStore

__all__ = ["NO_LLM_NOTICE", "Service", "build"]

NO_LLM_NOTICE = (
    "No LLM configured — showing the most relevant passages; "
    "set OPENAI_BASE_URL / OPENAI_API_KEY to get written answers."
)
Mode = Literal["hybrid", "dense", "sparse"]


class PageCache:
    """Parsed pages of the library's papers: each parsed once, the most recent kept.

    Thread-safe: concurrent callers for the same paper wait for one parse (MuPDF parses one
    document at a time, so parsing twice would stall the matrix's workers).
    """

    def __init__(self, library: Library, size: int = 32) -> None:
        self._library = library
        self._size = size
        self._pages: OrderedDict[tuple[str, str], tuple[Page, ...]] = OrderedDict()
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._lock = threading.Lock()

    def __call__(self, workspace: str, paper_id: str) -> tuple[Page, ...]:
        key = (workspace, paper_id)
        with self._lock:
            once = self._locks.setdefault(key, threading.Lock())
        with once:
            with self._lock:
                if key in self._pages:
                    self._pages.move_to_end(key)
                    return self._pages[key]
            pages = pdf.read(self._library.pdf_bytes(workspace, paper_id)).pages
            with self._lock:
                self._pages[key] = pages
                while len(self._pages) > self._size:
                    old, _ = self._pages.popitem(last=False)
                    self._locks.pop(old, None)
            return pages

    def forget(self, workspace: str, paper_id: str) -> None:
        with self._lock:
            self._pages.pop((workspace, paper_id), None)


@dataclass(frozen=True, slots=True)
class Service:
    """Everything Margin does, for one workspace. Made by :func:`build`; varied by
    :meth:`replace` (another chat model, embedder or workspace) sharing the same clients."""

    settings: Settings
    library: Library
    store: VectorStore
    embedder: Embedder
    chat: ChatModel | None
    templates: TemplateStore
    page_cache: PageCache
    workspace: str = "default"

    def replace(self, **changes: Any) -> Service:
        """A copy with some fields changed (the clients not named are shared)."""
        return dataclasses.replace(self, **changes)

    def for_workspace(self, workspace: str) -> Service:
        """The same clients, another workspace (public deployments: one per visitor).

        Its papers, saved templates (and which one is active) and question sets are its own.
        """
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", workspace):
            raise MarginError("A workspace name is 1-64 letters, digits, '-' or '_'.")
        return self.replace(
            workspace=workspace, templates=TemplateStore(_user_dir(self.settings, workspace))
        )

    @property
    def user_dir(self) -> Path:
        """Where this workspace keeps its own files (templates, question sets)."""
        return _user_dir(self.settings, self.workspace)

    # -- library ---------------------------------------------------------------------------

    def ingest(
        self,
        data: bytes,
        filename: str,
        *,
        password: str | None = None,
        progress: Progress | None = None,
    ) -> IngestResult:
        """Index one PDF; the result says indexed / duplicate / failed (never raises)."""
        return self.library.ingest(
            data, filename, self.workspace, password=password, progress=progress
        )

    def ingest_paths(
        self,
        paths: Iterable[Path],
        progress: Callable[[Path, int, int, str, float], None] | None = None,
    ) -> Iterator[IngestResult]:
        """Index PDFs and folders of PDFs (recursively), one result per file.

        ``progress(file, n, total, stage, done)`` follows each file through its stages.
        """
        files = list(_pdf_files(paths))
        for n, path in enumerate(files, start=1):
            try:
                data = path.read_bytes()
            except OSError as exc:
                yield IngestResult(
                    str(path), "failed", error=f"Cannot read {path}: {exc.strerror}."
                )
                continue
            stages = functools.partial(progress, path, n, len(files)) if progress else None
            result = self.ingest(data, path.name, progress=stages)
            result.file = str(path)
            yield result

    def papers(self) -> list[Paper]:
        return self.library.papers(self.workspace)

    def delete(self, paper_id: str) -> None:
        self.library.delete(self.workspace, paper_id)
        self.page_cache.forget(self.workspace, paper_id)

    def pdf_bytes(self, paper_id: str) -> bytes:
        return self.library.pdf_bytes(self.workspace, paper_id)

    def pages(self, paper_id: str) -> tuple[Page, ...]:
        """The parsed pages of a paper (parsed once, then cached)."""
        return self.page_cache(self.workspace, paper_id)

    def page_png(
        self,
        paper_id: str,
        page: int,
        light: Sequence[Box] = (),
        dark: Sequence[Box] = (),
        zoom: float = 1.5,
    ) -> bytes:
        return pdf.page_png(self.pdf_bytes(paper_id), page, light=light, dark=dark, zoom=zoom)

    # -- retrieval -------------------------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        papers: Sequence[str] | None = None,
        k: int | None = None,
        mode: Mode = "hybrid",
        vector: Vectors | None = None,
    ) -> list[Hit]:
        """Hybrid retrieval over ready papers (optionally a subset), best first.

        ``vector`` is the query's embedding when the caller already has it.
        """
        ready = self.library.ready_ids(self.workspace)
        scope = ready if papers is None else [p for p in papers if p in set(ready)]
        if not scope:
            return []
        return self.store.search(
            SearchQuery(
                text=query,
                vector=self.embedder.embed_query(query) if vector is None else vector,
                k=k or self.settings.top_k,
                papers=scope,
                workspace=self.workspace,
                include_back_matter=self.settings.include_back_matter,
                mode=mode,
                dense_weight=self.settings.dense_weight,
                sparse_weight=self.settings.sparse_weight,
            )
        )

    # -- answers ---------------------------------------------------------------------------

    def template(self, template: str | Template | None = None) -> Template:
        """The template to answer with: given, named (preset, saved or .txt), or the active one.

        Every caller resolves templates here, so every one is validated the same way.
        """
        if template is None:
            tpl = self.templates.active()
        elif isinstance(template, Template):
            tpl = template
        else:
            tpl = self.templates.get(template)
        tpl.validate()
        return tpl

    def preview(
        self,
        question: str,
        *,
        papers: Sequence[str] | None = None,
        template: str | Template | None = None,
        model: str | None = None,
        instructions: str = "",
    ) -> tuple[prompts.Prompt, list[Hit]]:
        """The exact prompt :meth:`ask` would send, and the hits it was made from."""
        tpl = self.template(template)
        hits = self.search(question, papers=papers)
        contexts = [Context(n, hit) for n, hit in enumerate(hits, start=1)]
        name = model or (self.chat.name if self.chat else self.settings.chat_model)
        return self._prompt(tpl, question, contexts, name, instructions), hits

    def _prompt(
        self,
        tpl: Template,
        question: str,
        contexts: Sequence[Context],
        model: str | None,
        instructions: str,
    ) -> prompts.Prompt:
        s = self.settings
        return prompts.assemble(
            tpl,
            question,
            contexts,
            encoding=tokens.encoding_for(model, s.encoding),
            context_window=s.context_window,
            answer_tokens=s.answer_tokens,
            instructions=instructions,
        )

    def ask(
        self,
        question: str,
        *,
        papers: Sequence[str] | None = None,
        template: str | Template | None = None,
        model: str | None = None,
        instructions: str = "",
        on_delta: Callable[[str], None] | None = None,
    ) -> Answer:
        """Answer ``question`` from the library with verified evidence.

        Raises :class:`~qa_core.errors.MarginError` (e.g. LLMError) when the endpoint fails.
        """
        question = question.strip()
        if not question:
            raise MarginError("Type a question first.")
        tpl = self.template(template)
        chat = self._chat(model)
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        vector = self.embedder.embed_query(question)  # once: retrieval and extractive share it
        hits = self.search(question, papers=papers, vector=vector)
        timings["retrieve"] = time.perf_counter() - t0
        contexts = [Context(n, hit) for n, hit in enumerate(hits, start=1)]
        answer = Answer(
            question=question,
            answer="",
            status="not_found",
            model=chat.name if chat else None,
            template_name=tpl.name,
            template_hash=tpl.hash,
            prompt="",
            contexts=contexts,
            timings=timings,
        )
        if not hits:
            answer.answer = (
                "The library is empty; add papers first."
                if not self.library.ready_ids(self.workspace)
                else "No passage in the selected papers matches this question."
            )
            return answer
        if chat is None:
            t1 = time.perf_counter()
            answer.quotes = sentences.extractive(
                vector, contexts, self.pages, self.embedder.embed_passages
            )
            timings["verify"] = time.perf_counter() - t1
            answer.status = "extractive"
            # A list of quotes, so it can never be mistaken for a written answer.
            answer.answer = "\n".join(f'- "{q.text}" [{q.context_n}]' for q in answer.quotes)
            answer.notice = NO_LLM_NOTICE
            return answer
        return self._generate(answer, tpl, chat, instructions, on_delta)

    def _generate(
        self,
        answer: Answer,
        tpl: Template,
        chat: ChatModel,
        instructions: str,
        on_delta: Callable[[str], None] | None,
    ) -> Answer:
        t1 = time.perf_counter()
        prompt = self._prompt(tpl, answer.question, answer.contexts, chat.name, instructions)
        answer.contexts = list(prompt.contexts)
        answer.prompt = prompt.text
        answer.timings["prompt"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        completion = chat.complete(
            prompt.text, max_tokens=self.settings.answer_tokens, on_delta=on_delta
        )
        answer.timings["llm"] = time.perf_counter() - t2
        answer.usage = {
            "prompt_tokens": completion.prompt_tokens or prompt.tokens,
            "completion_tokens": completion.completion_tokens,
        }
        t3 = time.perf_counter()
        parsed = replies.parse(completion.text, sentinel=prompts.NOT_REPORTED_SENTINEL)
        answer.answer = parsed.body
        answer.status = parsed.status
        if parsed.status == "answered":
            # Answers without quotes get each sentence's best-matching passage sentence.
            candidates = list(parsed.quotes) or sentences.align(parsed.body, answer.contexts)
            answer.quotes = evidence.verify(candidates, answer.contexts, self.pages)
        answer.timings["verify"] = time.perf_counter() - t3
        return answer

    def _chat(self, model: str | None) -> ChatModel | None:
        if model is None or (self.chat is not None and model == self.chat.name):
            return self.chat
        return llm.from_settings(self.settings.model_copy(update={"chat_model": model}))

    def close(self) -> None:
        self.store.close()
        self.library.close()


def _user_dir(settings: Settings, workspace: str) -> Path:
    if workspace == "default":
        return settings.data_dir
    return settings.data_dir / "workspaces" / workspace


def _pdf_files(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix.lower() == ".pdf")
        else:
            yield path


def build(
    settings: Settings | None = None,
    *,
    workspace: str = "default",
    chat: ChatModel | Literal["settings"] | None = "settings",
    embedder: Embedder | None = None,
) -> Service:
    """Make the real clients from ``settings`` (the only place that does).

    ``chat`` and ``embedder`` may be injected (tests pass a scripted ChatModel).
    """
    settings = settings or Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    emb = embedder or embeddings.from_settings(settings)
    vectors = store.open_store(settings, emb.name, emb.dim)
    try:
        library = Library(
            settings.data_dir,
            vectors,
            emb,
            chunk_tokens=settings.chunk_tokens,
            chunk_overlap=settings.chunk_overlap,
        )
        model = llm.from_settings(settings) if chat == "settings" else chat
    except BaseException:
        vectors.close()
        raise
    service = Service(
        settings, library, vectors, emb, model, TemplateStore(settings.data_dir), PageCache(library)
    )
    return service if workspace == "default" else service.for_workspace(workspace)
