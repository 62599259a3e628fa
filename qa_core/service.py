"""The façade the app and the CLI call. :func:`build` is the one place real clients are made."""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Literal

from qa_core import embeddings, store, tokens
from qa_core.answering import evidence, llm, prompts, replies, sentences
from qa_core.answering.llm import ChatModel
from qa_core.answering.prompts import Template, TemplateStore
from qa_core.embeddings import Embedder
from qa_core.errors import MarginError
from qa_core.ingest import pdf
from qa_core.ingest.library import IngestResult, Library, Progress
from qa_core.models import Answer, Box, Context, Hit, Page, Paper
from qa_core.settings import Settings
from qa_core.store import SearchQuery

__all__ = ["NO_LLM_NOTICE", "Service", "build"]

NO_LLM_NOTICE = (
    "No LLM configured — showing the most relevant passages; "
    "set OPENAI_BASE_URL / OPENAI_API_KEY to get written answers."
)
Mode = Literal["hybrid", "dense", "sparse"]


class Service:
    """Everything Margin does, for one workspace. Cheap to copy per workspace."""

    def __init__(
        self,
        settings: Settings,
        library: Library,
        embedder: Embedder,
        chat: ChatModel | None,
        templates: TemplateStore,
        workspace: str = "default",
    ) -> None:
        self.settings = settings
        self.library = library
        self.embedder = embedder
        self.chat = chat
        self.templates = templates
        self.workspace = workspace

    def for_workspace(self, workspace: str) -> Service:
        """The same clients, another workspace (public deployments: one per visitor).

        Its papers, saved templates (and which one is active) and question sets are its own.
        """
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", workspace):
            raise MarginError("A workspace name is 1-64 letters, digits, '-' or '_'.")
        service = Service(
            self.settings, self.library, self.embedder, self.chat, self.templates, workspace
        )
        if workspace != "default":
            service.templates = TemplateStore(service.user_dir)
        return service

    @property
    def user_dir(self) -> Path:
        """Where this workspace keeps its own files (templates, question sets)."""
        if self.workspace == "default":
            return self.settings.data_dir
        return self.settings.data_dir / "workspaces" / self.workspace

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
        self._parsed.cache_clear()

    def pdf_bytes(self, paper_id: str) -> bytes:
        return self.library.pdf_bytes(self.workspace, paper_id)

    def pages(self, paper_id: str) -> tuple[Page, ...]:
        """The parsed pages of a paper (parsed once, then cached)."""
        return self._parsed(self.workspace, paper_id)

    def page_png(
        self,
        paper_id: str,
        page: int,
        light: Sequence[Box] = (),
        dark: Sequence[Box] = (),
        zoom: float = 1.5,
    ) -> bytes:
        return pdf.page_png(self.pdf_bytes(paper_id), page, light=light, dark=dark, zoom=zoom)

    @functools.lru_cache(maxsize=32)  # noqa: B019 - one Service per process; bounded
    def _parsed(self, workspace: str, paper_id: str) -> tuple[Page, ...]:
        return pdf.read(self.library.pdf_bytes(workspace, paper_id)).pages

    # -- retrieval -------------------------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        papers: Sequence[str] | None = None,
        k: int | None = None,
        mode: Mode = "hybrid",
    ) -> list[Hit]:
        """Hybrid retrieval over ready papers (optionally a subset), best first."""
        ready = self.library.ready_ids(self.workspace)
        scope = ready if papers is None else [p for p in papers if p in set(ready)]
        if not scope:
            return []
        return self.library.store.search(
            SearchQuery(
                text=query,
                vector=self.embedder.embed_query(query),
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
        tpl = self._template(template)
        chat = self._chat(model)
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        hits = self.search(question, papers=papers)
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
                self.embedder.embed_query(question),
                contexts,
                self.pages,
                self.embedder.embed_passages,
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
        blocks = [
            prompts.format_context(
                c.n,
                c.hit.title,
                c.hit.chunk.page_start,
                c.hit.chunk.page_end,
                c.hit.chunk.text,
                c.hit.chunk.section,
            )
            if tpl.numbered
            else c.hit.chunk.text
            for c in answer.contexts
        ]
        encoding = tokens.encoding_for(chat.name, self.settings.encoding)
        prompt, used, prompt_tokens = prompts.fit(
            tpl,
            answer.question,
            blocks,
            encoding=encoding,
            context_window=self.settings.context_window,
            answer_tokens=self.settings.answer_tokens,
            instructions=instructions,
        )
        answer.contexts = answer.contexts[:used]
        answer.prompt = prompt
        answer.timings["prompt"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        completion = chat.complete(
            prompt, max_tokens=self.settings.answer_tokens, on_delta=on_delta
        )
        answer.timings["llm"] = time.perf_counter() - t2
        answer.usage = {
            "prompt_tokens": completion.prompt_tokens or prompt_tokens,
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

    def _template(self, template: str | Template | None) -> Template:
        if isinstance(template, Template):
            prompts.validate(template.text)
            return template
        return self.templates.get(template) if template else self.templates.active()

    def _chat(self, model: str | None) -> ChatModel | None:
        if model is None or (self.chat is not None and model == self.chat.name):
            return self.chat
        return llm.from_settings(self.settings.model_copy(update={"chat_model": model}))

    def close(self) -> None:
        self.library.store.close()
        self.library.close()


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
        templates = TemplateStore(settings.data_dir)
    except BaseException:
        vectors.close()
        raise
    return Service(settings, library, emb, model, templates, workspace)
