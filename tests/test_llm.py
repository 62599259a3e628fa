"""qa_core.answering.llm against the loopback server: the real openai client over real HTTP."""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

import numpy as np
import pytest

from qa_core import tokens
from qa_core.answering.llm import OpenAIChat, from_settings
from qa_core.embeddings import BATCH, OpenAIEmbeddings
from qa_core.errors import ConfigError, LLMError, PromptTooLong
from qa_core.settings import Settings
from tests.fakes import QueueModel
from tests.llm_server import CONTEXT_LENGTH_BODY, Behaviour, LLMServer

CHAT = "/v1/chat/completions"
KEY = "sk-test-SECRET-0123456789"


@pytest.fixture(autouse=True)
def _no_env_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings read the environment; only what a test passes may count."""
    for name in list(os.environ):
        if name.startswith("MARGIN_") or name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
            monkeypatch.delenv(name)


def settings(server: LLMServer | str, **overrides: Any) -> Settings:
    url = server if isinstance(server, str) else server.base_url
    values: dict[str, Any] = {"openai_base_url": url, "chat_model": "test-model"}
    values |= {"max_retries": 2, "request_timeout": 5.0} | overrides
    return Settings(**values)


def chat(server: LLMServer | str, **overrides: Any) -> OpenAIChat:
    return OpenAIChat(settings(server, **overrides), backoff=0.01)


def ask(model: OpenAIChat, stream: bool, prompt: str = "hi", max_tokens: int = 50) -> Any:
    deltas: list[str] = []
    done = model.complete(prompt, max_tokens=max_tokens, on_delta=deltas.append if stream else None)
    if stream:
        assert "".join(deltas) == done.text and deltas
    return done


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- answers -------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_answer_text_usage_and_request(llm_server: LLMServer, stream: bool) -> None:
    llm_server.script("test-model", "The optimizer was Adam with warm-up.")
    done = ask(chat(llm_server), stream, prompt="antidisestablishmentarianism")
    assert done.text == "The optimizer was Adam with warm-up."
    # The server counts words: 1 prompt word, 6 reply words (tiktoken would count more).
    assert (done.prompt_tokens, done.completion_tokens) == (1, 6)
    assert (done.model, done.finish_reason) == ("test-model", "stop")
    body = llm_server.requests[-1].body
    assert body["temperature"] == 0 and body["max_tokens"] == 50
    assert body["messages"] == [{"role": "user", "content": "antidisestablishmentarianism"}]
    assert body.get("stream_options") == ({"include_usage": True} if stream else None)
    assert llm_server.requests[-1].headers["authorization"] == "Bearer not-needed"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_missing_usage_is_counted_with_tiktoken(stream: bool) -> None:
    with LLMServer(send_usage=False, default_reply="Short reply.") as server:
        done = ask(chat(server), stream, prompt="antidisestablishmentarianism")
    encoding = tokens.encoding_for("test-model")
    assert done.prompt_tokens == tokens.count("antidisestablishmentarianism", encoding) > 1
    assert done.completion_tokens == tokens.count("Short reply.", encoding)


def test_max_tokens_cut_reports_length(llm_server: LLMServer) -> None:
    llm_server.script("test-model", "one two three four five")
    done = chat(llm_server).complete("count", max_tokens=2)
    assert (done.text, done.finish_reason) == ("one two", "length")


@pytest.mark.parametrize(
    ("rejected", "stream", "absent", "present"),
    [
        ("stream_options", True, "stream_options", "stream"),
        ("max_tokens", False, "max_tokens", "max_completion_tokens"),
        ("temperature", False, "temperature", "max_tokens"),
    ],
)
def test_rejected_parameter_is_dropped_once(
    rejected: str, stream: bool, absent: str, present: str
) -> None:
    with LLMServer(reject_params=[rejected], default_reply="Fine then.") as server:
        model = chat(server)
        assert ask(model, stream).text == "Fine then."
        assert server.count(CHAT) == 2  # the rejected request, then one without the parameter
        assert ask(model, stream).text == "Fine then."
        assert server.count(CHAT) == 3  # remembered: no second rejection
    assert rejected in server.requests[0].body
    assert absent not in server.requests[-1].body and present in server.requests[-1].body


# -- retries ---------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize(
    ("fault", "min_wait"),
    [
        (("status", 429, {"Retry-After": "0.3"}), 0.3),
        (("status", 429, {"retry-after-ms": "300"}), 0.3),
        (("status", 500), 0.0),
        (("status", 503), 0.0),
        (("close",), 0.0),
    ],
    ids=["429-retry-after", "429-retry-after-ms", "500", "503", "closed"],
)
def test_transient_failure_then_success(
    llm_server: LLMServer, fault: Behaviour, min_wait: float, stream: bool
) -> None:
    llm_server.script("test-model", fault, "Recovered in full.")
    started = time.monotonic()
    assert ask(chat(llm_server), stream).text == "Recovered in full."
    assert time.monotonic() - started >= min_wait  # backoff is 0.01 s: only the header explains it
    assert llm_server.count(CHAT) == 2


# -- failures: one sentence each ---------------------------------------------------------------

FAILURES: list[tuple[str, list[Behaviour], dict[str, Any], str, str, int]] = [
    # id, script, settings overrides, kind, phrase, chat requests
    ("429-forever", [("status", 429)] * 3, {}, "rate_limited", "(429) after 2 retries", 3),
    ("500-forever", [("status", 500)] * 3, {}, "server", "server error (500) after 2 retries", 3),
    ("500-no-retries", [("status", 500)], {"max_retries": 0}, "server", "server error (500):", 1),
    ("401", [("status", 401)], {}, "auth", "rejected the API key (401); check OPENAI_API_KEY.", 1),
    ("403", [("status", 403)], {}, "auth", "refused access to model 'test-model' (403)", 1),
    ("404-listed", [("status", 404)], {}, "error", "answered 404 for model 'test-model'", 1),
    ("context-length", [("status", 400, CONTEXT_LENGTH_BODY)], {}, "too_long", "context window", 1),
    ("other-400", [("status", 400)], {}, "error", "rejected the request (400): Bad request.", 1),
    ("timeout", [("sleep", 3.0)], {"request_timeout": 0.5}, "timeout", "within 0.5 s", 1),
    ("malformed", [("malformed",)], {}, "bad_reply", "not valid OpenAI JSON.", 1),
    ("wrong-shape", [("json", {"id": "x"})], {}, "bad_reply", "not valid OpenAI JSON.", 1),
    ("closed", [("close",)] * 3, {}, "unreachable", "closed the connection", 3),
]  # fmt: skip


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize(
    ("script", "overrides", "kind", "phrase", "requests"),
    [case[1:] for case in FAILURES],
    ids=[case[0] for case in FAILURES],
)
def test_failure_is_one_clear_sentence(
    llm_server: LLMServer,
    stream: bool,
    script: list[Behaviour],
    overrides: dict[str, Any],
    kind: str,
    phrase: str,
    requests: int,
) -> None:
    llm_server.script("test-model", *script)
    with pytest.raises(LLMError) as caught:
        ask(chat(llm_server, openai_api_key=KEY, **overrides), stream)
    err = caught.value
    assert err.kind == kind and phrase in str(err)
    assert isinstance(err, PromptTooLong) == (kind == "too_long")
    assert "\n" not in str(err) and KEY not in str(err)
    assert kind == "too_long" or llm_server.base_url in str(err)
    assert llm_server.count(CHAT) == requests


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_answer_cut_off_midway(llm_server: LLMServer, stream: bool) -> None:
    llm_server.script("test-model", *[("truncate", "one two three four five six")] * 3)
    deltas: list[str] = []
    with pytest.raises(LLMError) as caught:
        chat(llm_server).complete("hi", max_tokens=50, on_delta=deltas.append if stream else None)
    assert caught.value.kind == "unreachable" and "closed the connection" in str(caught.value)
    # Once deltas are shown a retry would repeat them, so a cut stream is not retried.
    assert (deltas, llm_server.count(CHAT)) == (
        (["one ", "two ", "three "], 1) if stream else ([], 3)
    )


def test_unknown_model_names_the_setting_and_lists_models(llm_server: LLMServer) -> None:
    with pytest.raises(LLMError) as caught:
        chat(llm_server, chat_model="llama9").complete("hi", max_tokens=5)
    assert caught.value.kind == "model"
    assert str(caught.value) == (
        f"The endpoint at {llm_server.base_url} has no model 'llama9'; "
        "check MARGIN_CHAT_MODEL (available: test-model, test-embed)."
    )


def test_wrong_path_without_model_listing_hints_at_v1() -> None:
    with LLMServer(list_models=False) as server:
        url = server.base_url.removesuffix("/v1")
        with pytest.raises(LLMError) as caught:
            chat(url).complete("hi", max_tokens=5)
    assert caught.value.kind == "model" and "OPENAI_BASE_URL ends in /v1" in str(caught.value)


def test_nothing_listening_is_unreachable_and_names_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(LLMError) as caught:
        chat(url, max_retries=1).complete("hi", max_tokens=5)
    assert caught.value.kind == "unreachable"
    assert str(caught.value) == f"Cannot reach the LLM endpoint at {url}; is the server running?"


@pytest.mark.parametrize("status", [403, 422, 500])
def test_key_echoed_by_the_server_is_scrubbed(llm_server: LLMServer, status: int) -> None:
    echo = {"error": {"message": f"Key {KEY} is not\nallowed here.", "type": "x"}}
    llm_server.script("test-model", ("status", status, echo))
    with pytest.raises(LLMError) as caught:
        chat(llm_server, openai_api_key=KEY, max_retries=0).complete("hi", max_tokens=5)
    assert KEY not in str(caught.value) and "\n" not in str(caught.value)
    assert llm_server.requests[-1].headers["authorization"] == f"Bearer {KEY}"


# -- health ----------------------------------------------------------------------------------


def test_health_ok_and_wrong_model(llm_server: LLMServer) -> None:
    assert chat(llm_server).health() == f"OK: model 'test-model' at {llm_server.base_url}"
    assert llm_server.count(CHAT) == 0  # listing the models was enough
    with pytest.raises(LLMError) as caught:
        chat(llm_server, chat_model="nope").health()
    assert caught.value.kind == "model" and "(available: test-model, test-embed)" in str(
        caught.value
    )


def test_health_without_models_endpoint_sends_one_token() -> None:
    with LLMServer(list_models=False) as server:
        assert chat(server).health().endswith("(answered a 1-token test)")
        assert server.count(CHAT) == 1 and server.requests[-1].body["max_tokens"] == 1


def test_health_accepts_ollama_latest_tag() -> None:
    with LLMServer(models=["llama3.2:latest"]) as server:
        assert chat(server, chat_model="llama3.2").health().startswith("OK: model 'llama3.2'")


def test_health_unreachable() -> None:
    with pytest.raises(LLMError) as caught:
        chat(f"http://127.0.0.1:{free_port()}/v1", max_retries=0).health()
    assert caught.value.kind == "unreachable"


# -- configuration ---------------------------------------------------------------------------


def test_from_settings() -> None:
    assert from_settings(Settings()) is None
    with pytest.raises(ConfigError) as caught:
        from_settings(Settings(openai_base_url="http://localhost:11434/v1"))
    assert str(caught.value) == (
        "Set MARGIN_CHAT_MODEL to the model name served at http://localhost:11434/v1."
    )
    model = from_settings(Settings(openai_api_key=KEY))
    assert isinstance(model, OpenAIChat)
    assert (model.name, model.url) == ("gpt-4o-mini", "https://api.openai.com/v1")
    with pytest.raises(ConfigError):
        from_settings(Settings(chat_model="gpt-4o"))  # nowhere to send it
    credentials = OpenAIChat(Settings(openai_base_url="http://user:pw@h:1/v1", chat_model="m"))
    assert credentials.url == "http://h:1/v1"


# -- embeddings ------------------------------------------------------------------------------


def test_embeddings_shapes_normalisation_and_order(llm_server: LLMServer) -> None:
    embedder = OpenAIEmbeddings(settings(llm_server), "test-embed", backoff=0.01)
    assert embedder.name == "openai:test-embed"
    texts = [f"passage number {i} about topic {i % 7}" for i in range(300)]
    vectors = embedder.embed_passages(texts)
    assert vectors.shape == (300, 64) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert llm_server.count("/v1/embeddings") == -(-300 // BATCH)  # one request per batch
    query = embedder.embed_query(texts[280])
    assert query.shape == (64,) and np.allclose(query, vectors[280], atol=1e-6)
    assert (
        embedder.dim == 64 and llm_server.count("/v1/embeddings") == -(-300 // BATCH) + 1
    )  # no probe
    assert embedder.embed_passages([]).shape == (0, 64)
    assert embedder.health().endswith("(64 dimensions)")


def test_embeddings_dim_is_discovered_lazily() -> None:
    with LLMServer(dim=24) as server:
        embedder = OpenAIEmbeddings(settings(server), "test-embed")
        assert server.count() == 0
        assert embedder.dim == 24 and server.count("/v1/embeddings") == 1


def test_embeddings_share_retries_and_sentences(llm_server: LLMServer) -> None:
    llm_server.script("test-embed", ("status", 500))
    embedder = OpenAIEmbeddings(settings(llm_server), "test-embed", backoff=0.01)
    assert embedder.embed_query("retry me").shape == (64,)
    assert llm_server.count("/v1/embeddings") == 2
    with pytest.raises(LLMError) as caught:
        OpenAIEmbeddings(settings(llm_server), "e5-huge").embed_query("x")
    assert caught.value.kind == "model" and "check MARGIN_EMBEDDING" in str(caught.value)
    llm_server.script("test-embed", ("json", {"object": "list", "data": []}))
    with pytest.raises(LLMError) as caught:
        embedder.embed_query("x")
    assert caught.value.kind == "bad_reply"


# -- the fake and the server itself ------------------------------------------------------------


def test_queue_model() -> None:
    boom = LLMError("Scripted failure.", "timeout")
    fake = QueueModel(["First answer, streamed.", boom, ""])
    deltas: list[str] = []
    done = fake.complete("prompt one", max_tokens=10, on_delta=deltas.append)
    assert done.text == "".join(deltas) == "First answer, streamed." and len(deltas) > 1
    assert (done.model, done.finish_reason, fake.name) == ("queue", "stop", "queue")
    with pytest.raises(LLMError) as caught:
        fake.complete("prompt two", max_tokens=10)
    assert caught.value is boom
    assert fake.complete("prompt three", max_tokens=10).text == ""
    with pytest.raises(LLMError):
        fake.complete("prompt four", max_tokens=10)
    assert fake.prompts == ["prompt one", "prompt two", "prompt three", "prompt four"]
    assert fake.health().startswith("OK")


def test_server_serves_concurrent_requests() -> None:
    with LLMServer(latency=0.2, default_reply="ok") as server:
        model = chat(server)
        started = time.monotonic()
        threads = [
            threading.Thread(target=model.complete, args=("q",), kwargs={"max_tokens": 5})
            for _ in range(16)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
        elapsed = time.monotonic() - started
    assert server.count(CHAT, "test-model") == 16
    assert elapsed < 1.5  # 16 x 0.2 s = 3.2 s if the server answered one at a time
