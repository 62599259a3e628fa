"""The Streamlit app through AppTest, from the entry point, with real parts behind it.

One data folder per module (ingest is the slow part); the app's cached Service is dropped
between tests so each test's environment (LLM endpoint, public mode, keys) takes effect.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import pymupdf
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from qa_core import build, matrix
from qa_core.answering.prompts import DEFAULT_TEMPLATE_NAME
from qa_core.answering.serialization import answer_from_json, answer_json
from qa_core.answering.template_store import TemplateStore
from qa_core.service import NO_LLM_NOTICE
from qa_core.settings import Settings
from tests.llm_server import LLMServer
from tests.pdfmaker import METHODS_PAPER, make_pdf

ROOT = Path(__file__).resolve().parents[1]
TITLE = "Detecting plant organs in herbarium scans"
PAPER = make_pdf(METHODS_PAPER, title=TITLE)
QUOTE = "a learning rate of 0.0025 and a batch size of 4"
REPLY = 'The network was trained with stochastic gradient descent, "' + QUOTE + '" [{n}].'
SECRET = "sk-test-SECRET123"
PAGES = [
    "pages/ask.py",
    "pages/library.py",
    "pages/matrix.py",
    "pages/templates.py",
    "pages/settings.py",
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A library holding the two-page methods paper, shared by the module's tests."""
    path = tmp_path_factory.mktemp("app")
    svc = build(Settings(data_dir=path), chat=None)
    try:
        assert svc.ingest(PAPER, "organs.pdf").status == "indexed"
    finally:
        svc.close()
    return path


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> Iterator[pytest.MonkeyPatch]:
    """A clean environment pointing at the module's library; the cached Service is rebuilt."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "QDRANT_URL", "QDRANT_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name in ("MARGIN_CHAT_MODEL", "MARGIN_PUBLIC", "MARGIN_EMBEDDING"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MARGIN_DATA_DIR", str(data_dir))
    st.cache_resource.clear()
    st.cache_data.clear()
    yield monkeypatch
    st.cache_resource.clear()  # closes the Service (and its store) via on_release


def app(page: str | None = None) -> AppTest:
    at = AppTest.from_file(ROOT / "streamlit_app.py", default_timeout=90)
    at.secrets["margin_tests"] = "1"  # stands in for st.secrets: a local secrets.toml is ignored
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def rendered(at: AppTest) -> str:
    """Everything the app sent to the browser, as text."""
    out: list[str] = []

    def walk(node: object) -> None:
        out.append(str(getattr(node, "proto", "")))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at.main)
    walk(at.sidebar)
    return "\n".join(out)


def ask(at: AppTest, question: str) -> AppTest:
    at.text_area(key="ask_question").set_value(question).run()  # the Ask button enables
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders(page: str) -> None:
    at = app(page)
    assert at.title[0].value == page.removeprefix("pages/").removesuffix(".py").title()
    assert not at.error


@pytest.mark.parametrize("page", PAGES)
def test_a_configuration_error_is_one_line_on_every_page(
    env: pytest.MonkeyPatch, page: str
) -> None:
    env.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # no MARGIN_CHAT_MODEL
    [error] = app(page).error
    assert error.value == "Set MARGIN_CHAT_MODEL to the model name served at http://127.0.0.1:9/v1."


def test_upload_reports_each_file_and_unlocks_an_encrypted_pdf(data_dir: Path) -> None:
    doc = pymupdf.open(stream=make_pdf(["Locked methods. " * 20]), filetype="pdf")
    locked = doc.tobytes(encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="pw", owner_pw="pw")
    at = app("pages/library.py")
    uploader = at.file_uploader[0]
    assert uploader.accept_multiple_files and uploader.allowed_type == [".pdf"]
    uploader.set_value(
        [
            ("organs.pdf", PAPER, "application/pdf"),
            ("locked.pdf", locked, "application/pdf"),
            ("notes.pdf", b"plain text", "application/pdf"),
        ]
    )
    at.button(key="FormSubmitter:upload-Add to library").click().run()
    assert not at.exception
    labels = [s.label for s in at.status]
    assert "organs.pdf: already in the library" in labels
    assert any(lb.startswith("locked.pdf: failed") and "password" in lb for lb in labels)
    assert any(lb.startswith("notes.pdf: failed") and "not a PDF" in lb for lb in labels)

    at.text_input(key="pw-locked.pdf").set_value("pw")
    at.button(key="FormSubmitter:unlock-locked.pdf-Unlock and add").click().run()
    assert "locked.pdf: indexed" in [s.label for s in at.status]
    table = at.dataframe[0].value
    assert sorted(table["File"]) == ["locked.pdf", "organs.pdf"]
    assert at.image, "the page viewer shows the first page"

    at.selectbox[1].set_value(table[table["File"] == "locked.pdf"]["Id"].iloc[0]).run()
    [delete] = [b for b in at.button if b.label == "Delete"]
    assert delete.disabled, "deleting needs the confirmation first"
    at.checkbox[0].check().run()
    [delete] = [b for b in at.button if b.label == "Delete"]
    delete.click().run()
    assert not at.exception
    assert list(at.dataframe[0].value["File"]) == ["organs.pdf"]


def test_ask_streams_the_answer_with_verified_highlighted_evidence(
    env: pytest.MonkeyPatch, llm_server: LLMServer
) -> None:
    env.setenv("OPENAI_BASE_URL", llm_server.base_url)
    env.setenv("MARGIN_CHAT_MODEL", "test-model")
    llm_server.set_default("test-model", REPLY.format(n=1))
    at = app()  # Ask is the default page
    at.selectbox(key="ask_preset").set_value(at.selectbox(key="ask_preset").options[12]).run()
    question = at.text_area(key="ask_question").value
    assert question.startswith("What are the hyperparameters")
    ask(at, question)
    assert all(r.body["stream"] for r in llm_server.requests if "chat" in r.path)
    [quote] = at.session_state["ask_history"][0].quotes
    if quote.status == "misattributed":  # the passage holding it did not rank first
        assert any(
            f"⚠ “{QUOTE}” — found in [{quote.found_in}], cited as [1]" in m.value
            for m in at.markdown
        )
        llm_server.set_default("test-model", REPLY.format(n=quote.found_in))
        ask(at, question)

    text = rendered(at)
    assert ":green-badge[answered]" in text
    assert any(m.value.startswith(f"✓ “{QUOTE}” [") for m in at.markdown)
    assert any(f"<mark>{QUOTE}</mark>" in h.value for h in at.html)
    assert at.image, "the page with the highlighted quote"
    assert at.download_button, "the JSON download"
    assert question[:60] in [b.label for b in at.sidebar.button]


def test_ask_without_llm_is_extractive_with_the_notice_and_kept_in_history() -> None:
    first, second = "Which hardware was used for training?", "Where is the code?"
    at = ask(app("pages/ask.py"), first)
    assert [i.value for i in at.info] == [NO_LLM_NOTICE]
    assert ":blue-badge[extractive]" in rendered(at)
    assert any("<mark>" in h.value for h in at.html)

    ask(at, second)
    assert [b.label for b in at.sidebar.button] == [second, first]
    at.sidebar.button[1].click().run()
    assert f"**{first}**" in [m.value for m in at.markdown]


def test_llm_failure_is_one_line(env: pytest.MonkeyPatch, llm_server: LLMServer) -> None:
    env.setenv("OPENAI_BASE_URL", llm_server.base_url)
    env.setenv("MARGIN_CHAT_MODEL", "test-model")
    llm_server.script("test-model", ("status", 401))
    at = ask(app("pages/ask.py"), "Which framework was used?")
    [error] = at.error
    assert "\n" not in error.value and "Traceback" not in error.value
    assert "key" in error.value.lower()


def test_template_errors_are_shown_and_the_saved_template_is_unchanged(data_dir: Path) -> None:
    good = "Passages:\n{context}\n\nQuestion: {question}\nAnswer briefly."
    at = app("pages/templates.py")
    at.text_area(key="tpl_text").set_value(good).run()
    at.text_input[0].set_value("Mine").run()
    [save] = [b for b in at.button if b.label == "Save"]
    save.click().run()
    assert TemplateStore(data_dir).get("Mine").text == good
    assert at.selectbox(key="tpl_pick").value == "Mine"

    at.text_area(key="tpl_text").set_value("No passages here: {question} {answer}").run()
    assert "Unknown placeholder {answer}" in at.error[0].value
    [save] = [b for b in at.button if b.label == "Save"]
    save.click().run()
    assert not at.exception and any("{answer}" in e.value for e in at.error)
    assert TemplateStore(data_dir).get("Mine").text == good

    [diff] = [c for c in at.code if c.language == "diff"]
    assert "+No passages here" in diff.value

    [activate] = [b for b in at.button if b.label == "Make 'Mine' active"]
    activate.click().run()
    assert TemplateStore(data_dir).active().text == good
    TemplateStore(data_dir).set_active(DEFAULT_TEMPLATE_NAME)


def test_template_preview_renders_the_prompt_with_its_token_count() -> None:
    at = app("pages/templates.py")
    at.toggle[0].set_value(True).run()
    assert not at.exception
    prompt = next(c.value for c in at.code if c.language != "diff")
    assert "Question: What methods are utilized" in prompt and "[1] " + TITLE in prompt
    assert any("tokens" in c.value and "passages fit" in c.value for c in at.caption)


def test_settings_never_show_secrets(env: pytest.MonkeyPatch, llm_server: LLMServer) -> None:
    env.setenv("OPENAI_API_KEY", SECRET)
    env.setenv("QDRANT_API_KEY", SECRET + "-qdrant")
    env.setenv("OPENAI_BASE_URL", llm_server.base_url.replace("//", f"//user:{SECRET}@"))
    env.setenv("MARGIN_CHAT_MODEL", "test-model")
    at = app("pages/settings.py")
    [test] = [b for b in at.button if b.label == "Test connection"]
    test.click().run()
    assert at.success[0].value.startswith("OK: model 'test-model'")
    [embeddings] = [b for b in at.button if b.label == "Test embeddings"]
    embeddings.click().run()
    assert at.success[0].value.startswith("OK: local:e5-small (384 dimensions)")
    text = rendered(at)
    assert "SECRET123" not in text
    assert "OPENAI_API_KEY: **set**" in text


def test_public_mode_gives_each_session_its_own_workspace(env: pytest.MonkeyPatch) -> None:
    env.setenv("MARGIN_PUBLIC", "true")
    first = app("pages/library.py")
    token = first.session_state["margin_workspace"]
    assert len(token) >= 16
    assert "No papers yet" in first.info[0].value  # the default workspace's paper is not listed
    second = app("pages/library.py")
    assert second.session_state["margin_workspace"] != token
    back = AppTest.from_file(ROOT / "streamlit_app.py", default_timeout=90)
    back.query_params["ws"] = token
    back.run()
    assert back.session_state["margin_workspace"] == token


# -- Matrix -----------------------------------------------------------------------------------

TWO_QUESTIONS = (
    "id,name,question\n"
    "hp,Hyperparameters,What are the hyperparameters of the model?\n"
    "hw,Hardware,Which hardware was used for training?\n"
)


def matrix_page(env: pytest.MonkeyPatch, llm_server: LLMServer, models: str) -> AppTest:
    """The Matrix page on the loopback endpoint, with the two-question set imported."""
    env.setenv("OPENAI_BASE_URL", llm_server.base_url)
    env.setenv("MARGIN_CHAT_MODEL", "model-a")
    at = app("pages/matrix.py")
    at.file_uploader[0].set_value(("two.csv", TWO_QUESTIONS.encode(), "text/csv")).run()
    assert at.success[0].value == "Imported 2 questions as 'two'."
    assert at.selectbox(key="mx_set").value == "two"
    at.text_area[0].set_value(models.format(url=llm_server.base_url)).run()
    return at


def finish(at: AppTest, button: str) -> AppTest:
    """Press Start/Resume/Retry failed and wait for the run's thread; the next run draws it."""
    [press] = [b for b in at.button if b.label == button]
    press.click().run()
    job = at.session_state["mx_job"]
    deadline = time.monotonic() + 60
    while job.running and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not job.running and job.error is None, job.error
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_matrix_shows_where_models_disagree_and_every_models_evidence(
    env: pytest.MonkeyPatch, llm_server: LLMServer
) -> None:
    llm_server.set_default("model-a", REPLY.format(n=1))
    llm_server.set_default("model-c", REPLY.format(n=1))
    llm_server.set_default("model-b", "NOT REPORTED")
    at = finish(matrix_page(env, llm_server, "model-a\nc=model-c@{url}\nb=model-b@{url}"), "Start")
    assert llm_server.count("/v1/chat/completions") == 6  # 2 questions x 3 models, 1 paper

    grid = at.dataframe[0].value
    assert list(grid.columns) == ["hp Hyperparameters", "hw Hardware"]
    assert list(grid.index) == [TITLE]
    assert set(grid.iloc[0]) == {"yes 2/3 ⚠"}
    kappas = at.dataframe[1].value["Cohen's κ"]
    assert kappas["model-a · c"] == 1.0 and kappas["model-a · b"] == 0.0
    assert at.image, "the agreement heatmap"
    labels = [b.label for b in at.download_button]
    assert {"Wide CSV", "Wide JSON", "Long CSV", "Long JSON"} <= set(labels)

    at.selectbox(key="mx_question").set_value("hw").run()  # open a cell: every model's answer
    assert not at.exception
    assert [t.label for t in at.tabs] == ["model-a", "c", "b"]
    verdicts = [m.value for m in at.markdown if m.value.startswith("Reported:")]
    assert [v.split("**")[1] for v in verdicts] == ["yes", "yes", "no"]
    assert any(m.value == "NOT REPORTED" for m in at.markdown)
    assert sum(f"<mark>{QUOTE}</mark>" in h.value for h in at.html) >= 2
    assert len(at.image) >= 3, "the heatmap and a highlighted page per answering model"
    text = rendered(at)
    assert ":green-badge[answered]" in text and ":orange-badge[not reported]" in text

    at.toggle[0].set_value(True).run()  # disagreements only: every cell disagrees here
    assert at.dataframe[0].value.shape == (1, 2)

    out = io.StringIO()  # what the export buttons serve (AppTest cannot press a download)
    matrix.export(at.session_state["mx_job"].result, out, shape="wide", fmt="csv")
    header = out.getvalue().splitlines()[0]
    assert header.startswith("paper_id,title,doi,question_id,question_name,question,majority")
    assert header.endswith("model:model-a,model:c,model:b")

    finish(at, "Start")  # again: every cell comes from the cache
    assert llm_server.count("/v1/chat/completions") == 6
    assert at.caption[-1].value.startswith("6 of 6 cells; 0 computed now")


def test_matrix_cancel_keeps_finished_cells_and_resume_runs_only_the_rest(
    env: pytest.MonkeyPatch, llm_server: LLMServer
) -> None:
    llm_server.script("slow", ("sleep", 3.0, REPLY.format(n=1)))
    llm_server.set_default("slow", REPLY.format(n=1))
    at = matrix_page(env, llm_server, "s=slow@{url}")
    at.slider[0].set_value(1).run()  # one request at a time: the second cell waits
    [start] = [b for b in at.button if b.label == "Start"]
    start.click().run()
    [cancel] = [b for b in at.button if b.label == "Cancel"]
    cancel.click().run()
    job = at.session_state["mx_job"]
    deadline = time.monotonic() + 60
    while job.running and time.monotonic() < deadline:
        time.sleep(0.1)
    at.run()
    grid = job.result
    assert grid.cancelled and len(grid.cells) < 2
    assert "Cancelled" in at.warning[0].value
    assert "—" in set(at.dataframe[0].value.iloc[0]), "the cell never run"

    finish(at, "Resume")
    resumed = at.session_state["mx_job"].result
    assert not resumed.cancelled and len(resumed.cells) == 2
    assert llm_server.count("/v1/chat/completions") == 2, "no cell was asked twice"


def test_matrix_without_llm_says_it_needs_an_endpoint() -> None:
    at = app("pages/matrix.py")
    assert [i.value for i in at.info] == [
        "The matrix needs a chat model: set OPENAI_BASE_URL and MARGIN_CHAT_MODEL."
    ]
    [start] = [b for b in at.button if b.label == "Start"]
    assert start.disabled
    assert at.selectbox(key="mx_set").value == matrix.BUILTIN_NAME
    assert any(matrix.CITATION in c.value for c in at.caption)


def test_public_matrix_asks_only_the_configured_model_and_keeps_sets_per_session(
    env: pytest.MonkeyPatch, llm_server: LLMServer
) -> None:
    env.setenv("MARGIN_PUBLIC", "true")
    env.setenv("OPENAI_BASE_URL", llm_server.base_url)
    env.setenv("MARGIN_CHAT_MODEL", "model-a")
    first = app("pages/matrix.py")
    assert not first.text_area, "no visitor-chosen models, endpoints or API keys"
    first.file_uploader[0].set_value(("two.csv", TWO_QUESTIONS.encode(), "text/csv")).run()
    assert "two" in first.selectbox(key="mx_set").options
    second = app("pages/matrix.py")
    assert second.selectbox(key="mx_set").options == [matrix.BUILTIN_NAME]


def test_a_stored_answer_shows_the_same_evidence_again(
    data_dir: Path, llm_server: LLMServer
) -> None:
    llm_server.set_default(
        "m", f'"{QUOTE}" [1], "implemented in PyTorch 1.4" [2], "not in it" [1].'
    )
    settings = Settings(data_dir=data_dir, openai_base_url=llm_server.base_url, chat_model="m")
    svc = build(settings)
    try:
        answer = svc.ask("Which hyperparameters were used?")
        again = answer_from_json(answer_json(answer), svc.pages)
    finally:
        svc.close()
    assert [c.hit.chunk for c in again.contexts] == [c.hit.chunk for c in answer.contexts]
    assert again.quotes == answer.quotes and answer.quotes
