"""Competency-question matrices end to end: the real service (PyMuPDF, the bundled embedder,
Qdrant Edge) and the real openai client against a loopback server, one scripted model each."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image
from pydantic import SecretStr

from qa_core import cli, matrix
from qa_core.answering.llm import ChatModel, Completion, OpenAIChat
from qa_core.answering.prompts import PRESETS
from qa_core.answering.serialization import answer_json
from qa_core.errors import ConfigError, MarginError
from qa_core.matrix import Cell, Matrix, MatrixCache, Question, QuestionSet
from qa_core.models import Paper
from qa_core.service import Service, build
from qa_core.settings import Settings
from tests.cli_runner import margin
from tests.llm_server import LLMServer
from tests.pdfmaker import METHODS_PAPER, make_pdf

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CHAT = "/v1/chat/completions"
BIRDS = [
    "Classifying bird songs with recurrent networks\n\n"
    "Abstract\nWe classify the songs of 12 bird species recorded by autonomous sensors.\n\n"
    "2 Methods\nSpectrograms were computed from the audio files and fed to a long short-term "
    "memory network built with TensorFlow 2.3. We used the Adam optimizer. Accuracy, precision "
    "and recall were computed on a held-out test set of 400 recordings."
]
PAPERS = {
    "organs.pdf": make_pdf(METHODS_PAPER, title="Detecting plant organs in herbarium scans"),
    "birds.pdf": make_pdf(BIRDS, title="Classifying bird songs with recurrent networks"),
}
QUESTIONS = QuestionSet(
    "test set",
    "",
    [
        Question("q1", "Optimizer", "Which optimizer was used to train the model?"),
        Question("q2", "Code", "Where is the code repository?", "Give the URL."),
        Question("q3", "Hardware", "Which hardware was used for training?"),
    ],
)
AGREE = 'They trained "with stochastic gradient descent, a learning rate of 0.0025" [1].'
NOPE = "NOT REPORTED"


@pytest.fixture(scope="module")
def server() -> Iterator[LLMServer]:
    with LLMServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = build(Settings(data_dir=tmp_path_factory.mktemp("lib")), chat=None)
    for name, data in PAPERS.items():
        result = service.ingest(data, name)
        assert result.status == "indexed", result.error
    yield service
    service.close()


@pytest.fixture
def llm(server: LLMServer) -> Iterator[LLMServer]:
    server.reset()
    yield server
    server.reset()


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[MatrixCache]:
    with MatrixCache(tmp_path / matrix.CACHE_FILE) as c:
        yield c


def chat(server: LLMServer, model: str, **overrides: object) -> OpenAIChat:
    settings = Settings(openai_base_url=server.base_url, chat_model=model, max_retries=0)
    return OpenAIChat(settings.model_copy(update=overrides), backoff=0.01)


def run(svc: Service, cache: MatrixCache, models: dict[str, ChatModel], **kwargs: object) -> Matrix:
    return matrix.run_matrix(svc, None, QUESTIONS, models, cache=cache, **kwargs)  # type: ignore[arg-type]


# -- running, caching, resuming ---------------------------------------------------------------


def test_matrix_answers_every_cell_and_a_rerun_makes_no_request(
    svc: Service, llm: LLMServer, cache: MatrixCache
) -> None:
    llm.set_default("agree-a", AGREE)
    llm.set_default("agree-b", AGREE)
    llm.set_default("nope", NOPE)
    models: dict[str, ChatModel] = {n: chat(llm, n) for n in ("agree-a", "agree-b", "nope")}
    seen: list[matrix.CellProgress] = []
    first = run(svc, cache, models, on_cell=seen.append)
    assert first.total == 18 and len(first.cells) == 18 and not first.cancelled
    assert llm.count(path=CHAT) == 18 == first.computed
    assert [p.done for p in seen] == list(range(1, 19)) and seen[-1].eta == 0
    organs = next(p.paper_id for p in first.papers if p.file == "organs.pdf")
    vote = first.consensus(organs, "q1")
    assert (vote.yes, vote.no, vote.majority, vote.disagreement) == (2, 1, "yes", True)
    cell = first.get(organs, "q1", "agree-a")
    assert cell and cell.status == "answered" and cell.reported is True and not cell.cached
    assert cell.answer and cell.answer["quotes"][0]["status"] == "verified"
    assert cell.answer["quotes"][0]["page"] == 1
    nope = first.get(organs, "q1", "nope")
    assert nope and (nope.status, nope.reported) == ("not_reported", False)
    # The code question carries its instructions into the prompt.
    prompts = [r.body["messages"][0]["content"] for r in llm.requests if r.path == CHAT]
    assert sum("Give the URL." in p for p in prompts) == 6

    again = run(svc, cache, models, on_cell=seen.append)
    assert llm.count(path=CHAT) == 18 and again.computed == 0
    assert all(c.cached for c in again.cells.values())
    assert again.get(organs, "q1", "agree-a") == matrix.Cell(**{**_fields(cell), "cached": True})


def _fields(cell: Cell) -> dict[str, object]:
    return {name: getattr(cell, name) for name in Cell.__dataclass_fields__}


def test_changing_a_setting_that_decides_the_answer_recomputes(
    svc: Service, llm: LLMServer, cache: MatrixCache
) -> None:
    llm.set_default("agree-a", AGREE)
    models: dict[str, ChatModel] = {"a": chat(llm, "agree-a")}
    run(svc, cache, models)
    assert llm.count(path=CHAT) == 6
    run(svc, cache, models, template=PRESETS["Seed pipeline (Kommineni et al. 2024)"])
    assert llm.count(path=CHAT) == 12
    tweaked = svc.replace(settings=svc.settings.model_copy(update={"top_k": 3}), chat=None)
    run(tweaked, cache, models)
    assert llm.count(path=CHAT) == 18
    run(tweaked, cache, models)
    assert llm.count(path=CHAT) == 18


def test_failed_cells_are_kept_and_only_they_are_retried(
    svc: Service, llm: LLMServer, cache: MatrixCache
) -> None:
    llm.set_default("agree-a", AGREE)
    llm.script("flaky", *[("status", 500)] * 6)
    models: dict[str, ChatModel] = {"a": chat(llm, "agree-a"), "flaky": chat(llm, "flaky")}
    first = run(svc, cache, models)
    failed = first.failed
    assert len(failed) == 6 and {c.model for c in failed} == {"flaky"}
    assert all(c.status == "error" and "500" in c.error and "\n" not in c.error for c in failed)
    assert all(c.reported is None for c in failed)
    assert llm.count(path=CHAT) == 12

    kept = run(svc, cache, models)  # without retry_failed the errors stand, at no cost
    assert llm.count(path=CHAT) == 12 and len(kept.failed) == 6

    llm.set_default("flaky", NOPE)
    retried = run(svc, cache, models, retry_failed=True)
    assert llm.count(path=CHAT) == 18 and llm.count(path=CHAT, model="agree-a") == 6
    assert not retried.failed and retried.computed == 6
    assert {c.status for c in retried.cells.values() if c.model == "flaky"} == {"not_reported"}


def test_cancel_keeps_finished_cells_and_a_rerun_computes_only_the_rest(
    svc: Service, llm: LLMServer, cache: MatrixCache
) -> None:
    llm.script("slow", *[("sleep", 0.05, AGREE)] * 6)
    models: dict[str, ChatModel] = {"slow": chat(llm, "slow")}
    cancel = threading.Event()

    def stop_after_two(progress: matrix.CellProgress) -> None:
        if progress.done >= 2:
            cancel.set()

    partial = run(svc, cache, models, concurrency=2, cancel=cancel, on_cell=stop_after_two)
    assert partial.cancelled and 2 <= len(partial.cells) < 6
    assert llm.count(path=CHAT) == len(partial.cells)  # in-flight cells finished and were kept
    rest = run(svc, cache, models, concurrency=2)
    assert not rest.cancelled and len(rest.cells) == 6
    assert llm.count(path=CHAT) == 6 and rest.computed == 6 - len(partial.cells)


class Gauge(ChatModel):
    """Wraps a real model to see how many of its requests are in flight at once."""

    def __init__(self, inner: OpenAIChat, counter: Counter[str], lock: threading.Lock) -> None:
        self.inner, self.name = inner, inner.name
        self.counter, self.lock = counter, lock
        self.active: Counter[str] = Counter()

    @property
    def url(self) -> str:
        return self.inner.url

    def complete(
        self, prompt: str, *, max_tokens: int, on_delta: Callable[[str], None] | None = None
    ) -> Completion:
        with self.lock:
            self.counter[self.url] += 1
            self.counter["max:" + self.url] = max(
                self.counter["max:" + self.url], self.counter[self.url]
            )
        try:
            return self.inner.complete(prompt, max_tokens=max_tokens, on_delta=on_delta)
        finally:
            with self.lock:
                self.counter[self.url] -= 1

    def health(self) -> str:
        return self.inner.health()


def test_concurrency_is_bounded_per_endpoint(
    svc: Service, llm: LLMServer, cache: MatrixCache
) -> None:
    counter: Counter[str] = Counter()
    lock = threading.Lock()
    with LLMServer() as other:
        for srv, model in ((llm, "m1"), (llm, "m2"), (other, "m3")):
            srv.script(model, *[("sleep", 0.1, NOPE)] * 6)
        models: dict[str, ChatModel] = {
            "m1": Gauge(chat(llm, "m1"), counter, lock),
            "m2": Gauge(chat(llm, "m2"), counter, lock),
            "m3": Gauge(chat(other, "m3"), counter, lock),
        }
        grid = run(svc, cache, models, concurrency=3)
        url = other.base_url
    assert len(grid.cells) == 18 and not grid.failed
    assert counter["max:" + llm.base_url] == 3  # m1 and m2 share one endpoint's 3 slots
    assert counter["max:" + url] == 3


def test_concurrent_asks_on_one_service_match_sequential_ones(svc: Service, llm: LLMServer) -> None:
    llm.set_default("agree-a", AGREE)
    asking = svc.replace(chat=chat(llm, "agree-a"))
    questions = [q.question for q in matrix.builtin_questions().questions[:6]]
    alone = [asking.ask(q) for q in questions]
    together: list[object] = [None] * len(questions)

    def ask(i: int) -> None:
        together[i] = asking.ask(questions[i])

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(questions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    def shape(a: object) -> object:
        data = answer_json(a)  # type: ignore[arg-type]
        return data["status"], data["prompt"], data["quotes"]

    assert [shape(a) for a in together] == [shape(a) for a in alone]


# -- the seed paper's yes/no conversion -------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Answer:::\nResponse: Yes", True),
        ("Response: No", False),
        ("Response: Yes\nOn reflection:\nResponse: No", False),  # the last one wins
        ("Response: (Yes or No)\nResponse: yes", True),
        ("**Response:** Yes", True),
        ("The answer is no.", False),
        ("Yes, it does.", None),
        ("", None),
    ],
)
def test_binary_reply_parsing(reply: str, expected: bool | None) -> None:
    assert matrix.parse_binary(reply) is expected


def test_binary_prompt_fills_both_placeholders() -> None:
    prompt = matrix.binary_prompt("Which GPU?", "One V100\nfor 40 epochs")
    assert "Question: Which GPU?\nAnswer: One V100 for 40 epochs\n" in prompt
    assert "{Question}" not in prompt and "{Answer}" not in prompt
    assert prompt.startswith('"""\n%INSTRUCTIONS:')  # the authors' file, byte for byte


def test_binary_conversion_decides_reported_and_is_cached(
    svc: Service, llm: LLMServer, cache: MatrixCache
) -> None:
    llm.set_default("agree-a", AGREE)
    llm.set_default("nope", NOPE)
    llm.set_default("judge", "Answer:::\nResponse: No")
    models: dict[str, ChatModel] = {"a": chat(llm, "agree-a"), "n": chat(llm, "nope")}
    plain = run(svc, cache, models)
    assert all(c.reported_by == "status" for c in plain.cells.values())
    judged = run(svc, cache, models, binary=chat(llm, "judge"))
    # Only answered cells are converted; abstentions are 'no' by their status.
    assert llm.count(path=CHAT, model="judge") == 6 and llm.count(path=CHAT) == 18
    answered = [c for c in judged.cells.values() if c.model == "a"]
    assert all(c.reported is False and c.reported_by == "binary" for c in answered)
    assert all(c.binary_reply.endswith("Response: No") for c in answered)
    sent = [r.body["messages"][0]["content"] for r in llm.requests if r.body["model"] == "judge"]
    assert all(AGREE in p and "Question: " in p for p in sent)
    run(svc, cache, models, binary=chat(llm, "judge"))
    assert llm.count(path=CHAT) == 18


# -- agreement --------------------------------------------------------------------------------

Y, N = True, False


@pytest.mark.parametrize(
    ("a", "b", "kappa"),
    [
        ([Y, Y, N, N], [Y, Y, N, N], 1.0),
        ([Y, N, Y, N], [N, Y, N, Y], -1.0),
        ([Y, Y, Y, N], [Y, Y, N, N], 0.5),  # po 3/4, pe 3/4·1/2 + 1/4·1/2 = 1/2
        ([Y, Y, Y], [Y, Y, Y], 1.0),  # pe = po = 1
        ([N, N], [N, N], 1.0),
        ([Y, Y, N], [Y, N, Y], -0.5),  # po 1/3, pe 2/3·2/3 + 1/3·1/3 = 5/9
        # 50 items: 20 both yes, 5 a-yes/b-no, 10 a-no/b-yes, 15 both no -> po .7, pe .5
        ([Y] * 25 + [N] * 25, [Y] * 20 + [N] * 5 + [Y] * 10 + [N] * 15, 0.4),
        ([Y, None, N], [Y, Y, None], 1.0),  # unrated items are left out
        ([None], [Y], None),
        ([], [], None),
    ],
)
def test_cohen_kappa(a: list[bool | None], b: list[bool | None], kappa: float | None) -> None:
    got = matrix.cohen_kappa(a, b)
    assert got == pytest.approx(kappa) if kappa is not None else got is None


@pytest.mark.parametrize(
    ("votes", "winner", "share", "split"),
    [
        ([Y, Y, N], "yes", 2 / 3, True),
        ([N, N, N], "no", 1.0, False),
        ([Y, N], "tie", 0.5, True),
        ([Y, None, None], "yes", 1.0, False),
        ([N, N, Y, Y, None], "tie", 0.5, True),
        ([None, None], "", None, False),
    ],
)
def test_majority(votes: list[bool | None], winner: str, share: float | None, split: bool) -> None:
    vote = matrix.majority(votes)
    assert (vote.majority, vote.disagreement) == (winner, split)
    assert vote.agreement == pytest.approx(share) if share is not None else vote.agreement is None


def hand_matrix(votes: dict[tuple[str, str], list[bool | None]]) -> Matrix:
    """A matrix built from votes: {(paper, question): [model votes]}."""
    papers = sorted({p for p, _ in votes})
    qids = sorted({q for _, q in votes})
    n = len(next(iter(votes.values())))
    grid = Matrix(
        [Paper(p, f"Paper {p}", f"{p}.pdf", 1, 1, "", doi=f"10.1/{p}") for p in papers],
        QuestionSet("hand", "", [Question(q, q, f"Question {q}?") for q in qids]),
        {f"m{i}": f"m{i}@" for i in range(n)},
        PRESETS["Evidence-first"],
    )
    for (p, q), vs in votes.items():
        for i, v in enumerate(vs):
            status = "error" if v is None else "answered" if v else "not_reported"
            recipe = {"template_hash": "h", "retrieval": {}, "generation": {}}
            grid.cells[(p, q, f"m{i}")] = Cell(
                p,
                q,
                f"m{i}",
                "k",
                recipe,
                status,
                {"answer": "x", "quotes": []},
                error="boom" if v is None else "",
                reported=v,
            )
    return grid


def test_pairwise_kappa_over_the_matrix() -> None:
    grid = hand_matrix(
        {
            ("p1", "q1"): [Y, Y, N],
            ("p1", "q2"): [Y, N, N],
            ("p2", "q1"): [N, N, N],
            ("p2", "q2"): [N, None, N],
        }
    )
    kappas = matrix.pairwise_kappa(grid)
    # m0 Y Y N N vs m2 N N N N: po 1/2, pe 1/2·0 + 1/2·1 = 1/2 -> 0
    assert kappas[("m0", "m2")] == pytest.approx(0.0)
    # m0 vs m1 on the three items both rated: Y Y N vs Y N N: po 2/3, pe 4/9 -> 0.4
    assert kappas[("m0", "m1")] == pytest.approx(0.4)
    assert set(kappas) == {("m0", "m1"), ("m0", "m2"), ("m1", "m2")}


def test_scores_against_human_labels() -> None:
    # Majorities: pa q1 yes, q2 no, q3 no | pb q1 no, q2 tie, q3 yes | pc q1 yes, q2 yes, q3 no
    grid = hand_matrix(
        {
            ("pa", "q1"): [Y, Y, N],
            ("pa", "q2"): [N, N, Y],
            ("pa", "q3"): [N, N, N],
            ("pb", "q1"): [N, N, N],
            ("pb", "q2"): [Y, N, None],
            ("pb", "q3"): [Y, Y, Y],
            ("pc", "q1"): [Y, Y, Y],
            ("pc", "q2"): [Y, Y, N],
            ("pc", "q3"): [N, N, Y],
        }
    )
    labels = matrix.load_labels(
        "no,Article_name,DOI,Dataset,Source Code,Level 1\n"
        "1,Paper pa,https://doi.org/10.1/pa,y,y,y\n"
        "2,Whatever,10.1/PB,n,n,n\n"
        "3,paper PC!,,y,n,\n"  # no DOI: matched by title
        "4,Not in the matrix,10.9/zz,y,y,y\n"
    )
    mapping = matrix.load_label_map(
        '{"variables": {"Dataset": ["q1"], "Source Code": ["q2", "q3"]}}'
    )
    report = matrix.score_labels(grid, labels, mapping)
    dataset, code = report.variables
    # Dataset: predicted pa Y, pb N, pc Y vs human y, n, y -> 3/3, κ 1
    assert (dataset.n, dataset.correct, dataset.kappa) == (3, 3, 1.0)
    # Source Code: pa any(no, no) = N vs y; pb any(tie, yes) = Y vs n; pc any(yes, no) = Y vs n
    assert (code.n, code.correct, code.questions) == (3, 0, ("q2", "q3"))
    assert code.kappa == pytest.approx(matrix.cohen_kappa([N, Y, Y], [Y, N, N]))
    assert (report.overall.n, report.overall.correct) == (6, 3)
    assert [row.title for row in report.unmatched] == ["Not in the matrix"]
    csv_map = matrix.load_label_map("variable,questions\nDataset,q1\nSource Code,q2; q3\n")
    assert csv_map == mapping


def test_shipped_label_map_names_real_questions_and_label_columns() -> None:
    mapping = matrix.load_label_map()
    ids = {q.id for q in matrix.builtin_questions().questions}
    assert len(mapping) == 10 and all(set(qs) <= ids for qs in mapping.values())
    labels_csv = SHARED / "data" / "dl-methodology" / "labels.csv"
    if not labels_csv.exists():
        pytest.skip("../shared is absent")
    rows = matrix.load_labels(labels_csv)
    assert [r.doi for r in rows] == [
        "https://doi.org/10.3897/BDJ.8.e57090",
        "https://doi.org/10.1111/2041-210X.13114",
        "https://doi.org/10.3389/fpls.2019.01327",
    ]
    assert set(mapping) <= set(rows[0].values)


def test_heatmap_colours_cells_by_agreement() -> None:
    grid = hand_matrix({("p1", "q1"): [Y, Y, Y], ("p1", "q2"): [Y, N, None]})
    image = Image.open(io.BytesIO(matrix.heatmap_png(grid)))
    assert image.format == "PNG"
    pixels = image.convert("RGB")
    greens = reds = 0
    for x in range(image.width):
        for y in range(image.height):
            r, g, b = pixels.getpixel((x, y))  # type: ignore[misc]
            greens += (r, g, b) == (26, 152, 80)
            reds += (r, g, b) == (215, 48, 39)
    assert greens > 300 and reds > 300  # unanimous q1, tied q2 (plus the legend's swatches)


# -- question sets ----------------------------------------------------------------------------


def test_builtin_set_has_28_named_questions() -> None:
    qs = matrix.builtin_questions()
    assert qs.name == matrix.BUILTIN_NAME and "arXiv:2411.09269" in qs.citation
    assert [q.id for q in qs.questions] == [f"cq{n:02d}" for n in range(1, 29)]
    assert qs.questions[0].name == "Data collection"
    assert qs.questions[-1].name == "Deployment platform"
    assert all(q.name and q.question.endswith("?") for q in qs.questions)


def test_question_csv_round_trip(tmp_path: Path) -> None:
    qs = matrix.builtin_questions()
    again = matrix.load_csv(matrix.to_csv(qs))
    assert again.questions == qs.questions
    odd = QuestionSet("odd", "", [Question("a", "A, b", 'Say "hi"?\nTwo lines', "Be brief.")])
    path = tmp_path / "odd.csv"
    path.write_text(matrix.to_csv(odd), encoding="utf-8")
    loaded = matrix.load_csv(path)
    assert loaded.questions == odd.questions and loaded.name == "odd"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id,name\na,b\n", "Line 1 of the question CSV has no 'question' column"),
        ("name,question\na,b?\n", "Line 1 of the question CSV has no 'id' column"),
        ("id,question\na,What?\nb,\n", "Line 3 of the question CSV (id 'b') has an empty question"),
        ("id,question\na,What?\n\n,Why?\n", "Line 4 of the question CSV has an empty id"),
        (
            "id,question\na,What?\na,Why?\n",
            "Line 3 of the question CSV repeats the id 'a' of line 2",
        ),
        ('id,question\na,"Two\nlines?"\na,Why?\n', "Line 4 of the question CSV repeats the id 'a'"),
        ("id,question\n", "The question CSV has no questions"),
    ],
)
def test_question_csv_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(MarginError) as err:
        matrix.load_csv(text)
    assert str(err.value).startswith(message)


def test_question_csv_accepts_a_bom_and_any_column_order() -> None:
    qs = matrix.load_csv("\ufeffQuestion,ID\nWhat?,x\n")
    assert [(q.id, q.name, q.question, q.instructions) for q in qs.questions] == [
        ("x", "", "What?", "")
    ]


def test_question_set_store(tmp_path: Path) -> None:
    store = matrix.QuestionSetStore(tmp_path)
    assert store.names() == [matrix.BUILTIN_NAME]
    mine = QuestionSet("My set", "Me (2025)", QUESTIONS.questions)
    store.save(mine)
    assert store.names() == [matrix.BUILTIN_NAME, "My set"]
    got = store.get("My set")
    assert (got.name, got.citation, got.questions) == ("My set", "Me (2025)", QUESTIONS.questions)
    assert len(list((tmp_path / "question_sets").glob("*.csv"))) == 1
    store.save(QuestionSet("My set", "", QUESTIONS.questions[:1]))
    assert len(store.get("My set").questions) == 1
    with pytest.raises(MarginError, match="built-in set"):
        store.save(QuestionSet(matrix.BUILTIN_NAME, "", QUESTIONS.questions))
    with pytest.raises(MarginError, match="No question set is named 'nope'"):
        store.get("nope")
    store.delete("My set")
    assert store.names() == [matrix.BUILTIN_NAME]


@pytest.mark.parametrize(
    ("value", "spec"),
    [
        ("gpt-4o-mini", matrix.ModelSpec("gpt-4o-mini", "gpt-4o-mini")),
        (
            "llama=llama3.2@http://localhost:11434/v1",
            matrix.ModelSpec("llama", "llama3.2", "http://localhost:11434/v1"),
        ),
        (
            "q=qwen2.5:7b@https://h.example/v1",
            matrix.ModelSpec("q", "qwen2.5:7b", "https://h.example/v1"),
        ),
    ],
)
def test_model_specs(value: str, spec: matrix.ModelSpec) -> None:
    assert matrix.ModelSpec.parse(value) == spec


@pytest.mark.parametrize("value", ["", "a b", "x=@http://h/v1", "x=m@localhost:1", "=m@http://h"])
def test_bad_model_specs(value: str) -> None:
    with pytest.raises(ConfigError):
        matrix.ModelSpec.parse(value)


def test_another_endpoint_gets_only_its_own_key(
    svc: Service, llm: LLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    llm.set_default("m", NOPE)
    configured = svc.settings.model_copy(
        update={
            "openai_api_key": SecretStr("sk-configured"),
            "openai_base_url": "http://127.0.0.1:9/v1",
        }
    )
    owner = svc.replace(settings=configured, chat=None)
    monkeypatch.setenv("MARGIN_API_KEY_LOCAL_1", "sk-local")
    models = matrix.resolve_models(owner, [f"local-1=m@{llm.base_url}", f"bare=m@{llm.base_url}"])
    for model in models.values():
        model.complete("hi", max_tokens=5)
    keys = [r.headers.get("authorization") for r in llm.requests]
    assert keys == ["Bearer sk-local", "Bearer not-needed"]


# -- exports ----------------------------------------------------------------------------------

WIDE = [
    "paper_id",
    "title",
    "doi",
    "question_id",
    "question_name",
    "question",
    "majority",
    "yes",
    "no",
    "votes",
    "agreement",
    "disagreement",
]
LONG = [
    "paper_id",
    "title",
    "doi",
    "question_id",
    "question_name",
    "question",
    "instructions",
    "model",
    "model_id",
    "status",
    "reported",
    "reported_by",
    "answer",
    "quotes",
    "error",
    "template",
    "template_hash",
    "retrieval",
    "generation",
    "prompt_tokens",
    "completion_tokens",
    "created",
    "cached",
    "key",
]


@pytest.fixture
def exported(svc: Service, llm: LLMServer, cache: MatrixCache) -> Matrix:
    llm.set_default("agree-a", AGREE)
    llm.set_default("nope", NOPE)
    llm.script("flaky", ("status", 500))
    llm.set_default("flaky", NOPE)
    models = {"a": chat(llm, "agree-a"), "n": chat(llm, "nope"), "f": chat(llm, "flaky")}
    return run(svc, cache, models)  # type: ignore[arg-type]


def test_wide_csv_export(exported: Matrix, tmp_path: Path) -> None:
    matrix.export(exported, tmp_path / "m.csv")
    rows = list(csv.DictReader((tmp_path / "m.csv").open(encoding="utf-8")))
    assert list(rows[0]) == [*WIDE, "model:a", "model:n", "model:f"]
    assert len(rows) == 6
    assert {r["model:a"] for r in rows} == {"yes"} and {r["model:n"] for r in rows} == {"no"}
    assert sorted(r["model:f"] for r in rows) == ["error"] + ["no"] * 5
    tie = next(r for r in rows if r["model:f"] == "error")
    assert (tie["majority"], tie["votes"], tie["agreement"], tie["disagreement"]) == (
        "tie",
        "2",
        "0.5",
        "true",
    )


def test_long_csv_export_reproduces_each_cell(
    exported: Matrix, svc: Service, tmp_path: Path
) -> None:
    matrix.export(exported, tmp_path / "m.csv", shape="long")
    rows = list(csv.DictReader((tmp_path / "m.csv").open(encoding="utf-8")))
    assert list(rows[0]) == LONG and len(rows) == 18
    row = next(
        r
        for r in rows
        if r["model"] == "a" and r["question_id"] == "q1" and r["title"].startswith("Detecting")
    )
    assert row["status"] == "answered" and row["reported"] == "yes"
    quotes = json.loads(row["quotes"])
    assert quotes == [
        {
            "page": 1,
            "paper_id": row["paper_id"],
            "status": "verified",
            "text": "with stochastic gradient descent, a learning rate of 0.0025",
        }
    ]
    assert json.loads(row["retrieval"])["top_k"] == svc.settings.top_k
    assert (
        row["template"] == "Evidence-first"
        and row["template_hash"] == PRESETS["Evidence-first"].hash
    )
    assert int(row["prompt_tokens"]) > 0 and row["created"].endswith("+00:00")
    assert row["model_id"].startswith("agree-a@http://127.0.0.1:")
    # Everything the cache key covers is in the row: recompute the key from it.
    recipe = {
        "paper_id": row["paper_id"],
        "question": row["question"],
        "instructions": row["instructions"],
        "template_hash": row["template_hash"],
        "numbered": True,
        "model": row["model_id"],
        "retrieval": json.loads(row["retrieval"]),
        "generation": json.loads(row["generation"]),
    }
    assert hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest() == row["key"]
    failed = [r for r in rows if r["status"] == "error"]
    assert len(failed) == 1 and "500" in failed[0]["error"] and failed[0]["reported"] == ""


@pytest.mark.parametrize("shape", ["wide", "long"])
def test_json_export(exported: Matrix, shape: str) -> None:
    out = io.StringIO()
    matrix.export(exported, out, shape=shape, fmt="json")  # type: ignore[arg-type]
    doc = json.loads(out.getvalue())
    assert doc["question_set"] == "test set" and doc["shape"] == shape and doc["complete"]
    assert doc["template"] == {"name": "Evidence-first", "hash": PRESETS["Evidence-first"].hash}
    assert set(doc["models"]) == {"a", "n", "f"}
    first = doc["rows"][0]
    if shape == "wide":
        assert len(doc["rows"]) == 6 and list(first) == [*WIDE, "model:a", "model:n", "model:f"]
        assert isinstance(first["disagreement"], bool)
    else:
        assert len(doc["rows"]) == 18 and list(first) == [*LONG, "detail"]
        assert isinstance(first["quotes"], list) and isinstance(first["retrieval"], dict)
        assert first["detail"]["prompt"] and first["detail"]["contexts"]


def test_export_needs_a_known_suffix(exported: Matrix, tmp_path: Path) -> None:
    with pytest.raises(MarginError, match=r"\.csv or \.json"):
        matrix.export(exported, tmp_path / "m.xlsx")


# -- the command line -------------------------------------------------------------------------


def test_cli_extract_and_eval_agreement(
    tmp_path: Path,
    llm: LLMServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    llm.set_default("agree-a", AGREE)
    llm.set_default("nope", NOPE)
    env = {
        "OPENAI_BASE_URL": llm.base_url,
        "MARGIN_CHAT_MODEL": "agree-a",
        "MARGIN_MAX_RETRIES": "0",
    }
    data = tmp_path / "data"
    library = build(Settings(data_dir=data), chat=None)  # in-process: one subprocess fewer
    assert library.ingest(PAPERS["organs.pdf"], "organs.pdf").status == "indexed"
    library.close()
    qcsv = tmp_path / "q.csv"
    qcsv.write_text(matrix.to_csv(QUESTIONS), encoding="utf-8")
    out = tmp_path / "m.csv"
    args = [
        "extract",
        "--questions",
        str(qcsv),
        "--model",
        "agree-a",
        "--model",
        f"n=nope@{llm.base_url}",
        "--out",
        str(out),
    ]
    proc = margin(data, *args, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"wrote {out}: 6 of 6 cells, 6 computed, 0 failed\n"
    assert proc.stderr == ""  # no progress when stderr is not a terminal
    assert len(list(csv.DictReader(out.open()))) == 3 and llm.count(path=CHAT) == 6
    for name, value in env.items():  # the rest in-process: a subprocess costs seconds
        monkeypatch.setenv(name, value)
    again = io.StringIO()
    assert cli.main(["--data-dir", str(data), *args, "--long"], out=again) == 0
    assert "0 computed" in again.getvalue()
    assert llm.count(path=CHAT) == 6 and len(list(csv.DictReader(out.open()))) == 6

    llm.script("flaky", *[("status", 500)] * 3)
    out.unlink()
    assert cli.main(["--data-dir", str(data), *args, "--model", "flaky"], out=io.StringIO()) == 1
    assert out.exists()
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 3 and all(e.startswith("margin: ") and "500" in e for e in errors)

    labels = tmp_path / "labels.csv"
    labels.write_text(
        "no,Article_name,DOI,Optimizer,Code\n1,Detecting plant organs in herbarium scans,,y,n\n"
    )
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"Optimizer": ["q1"], "Code": ["q2"]}))
    report = io.StringIO()
    argv = ["--data-dir", str(data), "eval", "agreement", "--questions", str(qcsv)]
    argv += ["--labels", str(labels), "--map", str(mapping), "--model", "agree-a", "--json"]
    assert cli.main(argv, out=report) == 0
    scores = {s["variable"]: s for s in json.loads(report.getvalue())}
    assert scores["Optimizer"]["accuracy"] == 1.0 and scores["Code"]["accuracy"] == 0.0
    assert scores["overall"]["n"] == 2
    assert llm.count(path=CHAT) == 6 + 3  # eval reused the cached cells of 'agree-a'


def test_a_cached_matrix_makes_no_calls(svc: Service, llm: LLMServer, cache: MatrixCache) -> None:
    llm.set_default("agree-a", AGREE)
    models: dict[str, ChatModel] = {"a": chat(llm, "agree-a")}
    questions = matrix.builtin_questions()
    matrix.run_matrix(svc, None, questions, models, cache=cache, concurrency=8)
    calls = llm.count(path=CHAT)
    again = matrix.run_matrix(svc, None, questions, models, cache=cache, concurrency=8)
    assert again.computed == 0 and len(again.cells) == 56
    assert llm.count(path=CHAT) == calls  # the time this takes is bench/matrix.py's business


@pytest.mark.parametrize(
    ("papers", "message"),
    [([], "There are no papers to ask about"), (["0" * 16], "No paper with id '0000000000000000'")],
)
def test_a_matrix_needs_known_papers(
    svc: Service, llm: LLMServer, cache: MatrixCache, papers: list[str], message: str
) -> None:
    with pytest.raises(MarginError, match=message):
        matrix.run_matrix(svc, papers, QUESTIONS, {"a": chat(llm, "agree-a")}, cache=cache)
    assert llm.count() == 0
