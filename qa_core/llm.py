"""Chat and embedding models behind any OpenAI-compatible endpoint (OpenAI, Ollama, vLLM, …).

All use of the openai SDK lives in this module. The SDK's own retries are off: we retry 429,
5xx and connection failures ourselves, so that every failure ends in one sentence naming the
endpoint (:attr:`LLMError.kind` says which cause), and the API key never appears in it.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import numpy.typing as npt
import openai

from qa_core import tokens
from qa_core.errors import ConfigError, LLMError, PromptTooLong
from qa_core.settings import Settings

__all__ = [
    "DEFAULT_CHAT_MODEL",
    "ChatModel",
    "Completion",
    "OpenAIChat",
    "OpenAIEmbeddings",
    "QueueModel",
    "from_settings",
]

log = logging.getLogger(__name__)
_T = TypeVar("_T")

DEFAULT_CHAT_MODEL = "gpt-4o-mini"
_OPENAI_URL = "https://api.openai.com/v1"
_BACKOFF_CAP = 8.0  # seconds, our exponential backoff
_RETRY_AFTER_CAP = 30.0  # seconds, however long the server asks us to wait
_EMBED_BATCH = 256
_TOO_LONG = ("context length", "context_length", "maximum context", "too long", "context window")
_RETRYABLE = (openai.RateLimitError, openai.InternalServerError, openai.APIConnectionError)


class _BadReply(Exception):
    """The reply parsed but does not have the shape of an OpenAI answer."""


# Failure -> LLMError.kind; the first matching class wins (subclasses come first).
_KINDS: tuple[tuple[type[Exception], str], ...] = (
    (openai.APITimeoutError, "timeout"),
    (openai.APIConnectionError, "unreachable"),
    (json.JSONDecodeError, "bad_reply"),
    (_BadReply, "bad_reply"),
    (openai.APIResponseValidationError, "bad_reply"),
    (openai.AuthenticationError, "auth"),
    (openai.PermissionDeniedError, "forbidden"),
    (openai.RateLimitError, "rate_limited"),
    (Exception, "error"),
)
_SENTENCES = {
    "timeout": "The LLM endpoint at {url} did not answer within {timeout:g} s; "
    "raise MARGIN_REQUEST_TIMEOUT or use a faster model.",
    "unreachable": "Cannot reach the LLM endpoint at {url}; is the server running?",
    "dropped": "The LLM endpoint at {url} closed the connection without a complete answer{after}; "
    "check the server's logs.",
    "bad_reply": "The endpoint at {url} sent a reply that is not valid OpenAI JSON.",
    "auth": "The endpoint at {url} rejected the API key (401); check OPENAI_API_KEY.",
    "forbidden": "The endpoint at {url} refused access to model '{model}' (403); "
    "check the API key's permissions.",
    "rate_limited": "The endpoint at {url} was still rate-limiting (429) after {retries} retries "
    "and {waited:.1f} s of waiting; try again in a minute.",
    "too_long": "The prompt does not fit the context window of model '{model}'; "
    "set MARGIN_CONTEXT_WINDOW to the model's real context size.",
    "server": "The endpoint at {url} failed with a server error ({code}){after}: {detail}",
    "error": "The endpoint at {url} rejected the request ({code}): {detail}",
    "other": "The endpoint at {url} reported an error: {detail}",
}
_PUBLIC_KIND = {"dropped": "unreachable", "forbidden": "auth", "other": "error"}


@dataclass(frozen=True, slots=True)
class Completion:
    """A finished answer and what it cost."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    model: str
    finish_reason: str | None


class ChatModel(Protocol):
    """What the service needs from a chat model."""

    name: str

    def complete(
        self, prompt: str, *, max_tokens: int, on_delta: Callable[[str], None] | None = None
    ) -> Completion:
        """Answer ``prompt``; with ``on_delta``, stream and call it with each text delta."""
        ...

    def health(self) -> str:
        """A one-line 'OK: …' description, or raise :class:`LLMError` with the cause."""
        ...


def _detail(err: openai.APIError) -> str:
    """The server's own error message (the SDK puts the body's ``error`` object in ``body``)."""
    body = err.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return body if isinstance(body, str) and body else err.message


def _is_refused(err: BaseException | None) -> bool:
    """Whether the connection failed to open (as opposed to breaking mid-request)."""
    for _ in range(10):  # exception chains are short; never follow a cycle forever
        if err is None or isinstance(err, ConnectionRefusedError):
            return err is not None
        if type(err).__name__ == "ConnectError":  # httpx's and httpx2's, without importing either
            return True
        err = err.__cause__ or err.__context__
    return False


class _Endpoint:
    """One OpenAI client plus the retry loop and error sentences shared by chat and embeddings."""

    def __init__(self, settings: Settings, model: str, setting: str, backoff: float) -> None:
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
        if not key and not settings.openai_base_url:
            raise ConfigError(
                f"Set OPENAI_API_KEY (or OPENAI_BASE_URL for a local server) to use '{model}'."
            )
        url = settings.openai_base_url or _OPENAI_URL  # explicit: never the SDK's env fallback
        parts = urlsplit(url)
        self.url = urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]))
        self.model = model
        self.setting = setting  # the setting that names the model, for error sentences
        self.max_retries = settings.max_retries
        self.backoff = backoff
        self.timeout = settings.request_timeout
        self._key = key
        # Ollama and most local servers ignore the key but the SDK insists on one.
        self.client = openai.OpenAI(
            api_key=key or "not-needed", base_url=url, timeout=self.timeout, max_retries=0
        )

    def call(self, attempt: Callable[[], _T]) -> _T:
        """Run ``attempt``, retrying 429/5xx/connection failures; map errors to one sentence."""
        waited, tries = 0.0, 0
        while True:
            try:
                return attempt()
            except _RETRYABLE as err:
                if isinstance(err, openai.APITimeoutError) or tries >= self.max_retries:
                    raise self.error(err, waited, tries) from err
                delay = self._delay(err, tries)
                what = f"{type(err).__name__}; retry {tries + 1}/{self.max_retries}"
                log.warning("LLM endpoint %s: %s in %.2f s", self.url, what, delay)
            except (openai.OpenAIError, json.JSONDecodeError, _BadReply) as err:
                raise self.error(err, waited, tries) from err
            time.sleep(delay)
            waited += delay
            tries += 1

    def _delay(self, err: Exception, tries: int) -> float:
        if isinstance(err, openai.APIStatusError):
            for header, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
                try:
                    asked = float(err.response.headers[header]) * scale
                except (KeyError, ValueError):
                    continue  # absent, or an HTTP date: fall back to our own backoff
                return min(max(asked, 0.0), _RETRY_AFTER_CAP)
        return min(self.backoff * 2.0**tries, _BACKOFF_CAP)

    def clean(self, text: str, limit: int = 200) -> str:
        """Server text made safe for a one-line message: no newlines, no key, bounded."""
        flat = " ".join(text.split())
        if self._key:
            flat = flat.replace(self._key, "***")
        return flat if len(flat) <= limit else flat[: limit - 1] + "…"

    def error(self, err: Exception, waited: float = 0.0, retries: int = 0) -> LLMError:
        """The one-sentence :class:`LLMError` for an SDK or parsing failure."""
        if isinstance(err, openai.NotFoundError):
            return self._not_found(err)
        kind = next(kind for cls, kind in _KINDS if isinstance(err, cls))
        code = err.status_code if isinstance(err, openai.APIStatusError) else 0
        detail = self.clean(_detail(err) if isinstance(err, openai.APIError) else str(err))
        if kind == "unreachable" and not _is_refused(err):
            kind = "dropped"
        elif kind == "error" and code == 400 and any(m in detail.lower() for m in _TOO_LONG):
            kind = "too_long"
        elif kind == "error" and code >= 500:
            kind = "server"
        elif kind == "error" and not code:
            kind = "other"
        after = f" after {retries} retries" if retries else ""
        facts = {"url": self.url, "model": self.model, "timeout": self.timeout, "code": code}
        message = _SENTENCES[kind].format(
            **facts, retries=retries, waited=waited, after=after, detail=detail.rstrip(".") + "."
        )
        if kind == "too_long":
            return PromptTooLong(message)
        return LLMError(message, _PUBLIC_KIND.get(kind, kind))

    def listed(self) -> list[str] | None:
        """The model ids the endpoint lists; None when it does not implement /models."""
        try:
            page = self.client.models.list()
        except openai.NotFoundError:
            return None
        data = getattr(page, "data", None)
        if not isinstance(data, list):
            raise _BadReply
        return [str(getattr(item, "id", "")) for item in data]

    def serves(self, ids: Sequence[str]) -> bool:
        """Whether ``ids`` include the model (Ollama lists 'llama3.2' as 'llama3.2:latest')."""
        return self.model in ids or f"{self.model}:latest" in ids

    def missing_model(self, ids: Sequence[str] | None, hint: str = "") -> LLMError:
        """The sentence for a model the endpoint does not serve."""
        if ids:
            shown = ", ".join(ids[:10]) + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")
            hint = f" (available: {shown})"
        return LLMError(
            f"The endpoint at {self.url} has no model '{self.model}'; check {self.setting}{hint}.",
            "model",
        )

    def _not_found(self, err: openai.NotFoundError) -> LLMError:
        try:  # listing the models is one cheap request and makes the sentence actionable
            ids = self.listed()
        except (openai.OpenAIError, json.JSONDecodeError, _BadReply):
            ids = None
        if ids and self.serves(ids):
            return LLMError(
                f"The endpoint at {self.url} answered 404 for model '{self.model}' although it "
                "lists it; check OPENAI_BASE_URL.",
                "error",
            )
        if ids is None and "model" not in _detail(err).lower():
            return self.missing_model(None, " and that OPENAI_BASE_URL ends in /v1")
        return self.missing_model(ids)


def _rejected_param(err: openai.BadRequestError, sent: dict[str, Any], dropped: set[str]) -> str:
    """The request parameter a 400 complains about that we can do without ('' if none)."""
    text = _detail(err).lower()
    if any(marker in text for marker in _TOO_LONG):
        return ""
    candidates = {
        "stream_options": "stream_options" in text,  # Ollama / older vLLM
        "max_tokens": "max_completion_tokens" in text,  # OpenAI reasoning models
        "temperature": "temperature" in text and ("support" in text or "default" in text),
    }
    return next((p for p, hit in candidates.items() if hit and p in sent and p not in dropped), "")


class OpenAIChat(ChatModel):
    """A chat model on an OpenAI-compatible endpoint."""

    def __init__(self, settings: Settings, *, backoff: float = 0.5) -> None:
        model = settings.chat_model
        if not model:
            if settings.openai_base_url:
                raise ConfigError(
                    f"Set MARGIN_CHAT_MODEL to the model name served at {settings.openai_base_url}."
                )
            model = DEFAULT_CHAT_MODEL
        self._api = _Endpoint(settings, model, "MARGIN_CHAT_MODEL", backoff)
        self.name = model
        self.temperature = settings.temperature
        self._encoding_name = settings.encoding
        self._dropped: set[str] = set()  # parameters this server rejected; not sent again

    @property
    def url(self) -> str:
        """The endpoint's base URL (without any credentials)."""
        return self._api.url

    def complete(
        self, prompt: str, *, max_tokens: int, on_delta: Callable[[str], None] | None = None
    ) -> Completion:
        """Answer ``prompt``; with ``on_delta``, stream and call it with each text delta."""
        return self._api.call(lambda: self._adapting(prompt, max_tokens, on_delta))

    def health(self) -> str:
        """One tiny request: list the models, else (no /models) a 1-token completion."""
        ids = self._api.call(self._api.listed)
        if ids:
            if not self._api.serves(ids):
                raise self._api.missing_model(ids)
            return f"OK: model '{self.name}' at {self.url}"
        self.complete("Reply with OK.", max_tokens=1)
        return f"OK: model '{self.name}' at {self.url} (answered a 1-token test)"

    def _params(self, prompt: str, max_tokens: int, stream: bool) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self.name,
            "messages": [{"role": "user", "content": prompt}],
        }
        limit = "max_completion_tokens" if "max_tokens" in self._dropped else "max_tokens"
        params[limit] = max_tokens
        if "temperature" not in self._dropped:
            params["temperature"] = self.temperature
        if stream:
            params["stream"] = True
            if "stream_options" not in self._dropped:
                params["stream_options"] = {"include_usage": True}
        return params

    def _adapting(
        self, prompt: str, max_tokens: int, on_delta: Callable[[str], None] | None
    ) -> Completion:
        # Ends: each pass either returns, raises, or drops one more of three parameters.
        while True:
            params = self._params(prompt, max_tokens, stream=on_delta is not None)
            try:
                if on_delta is None:
                    return self._once(prompt, params)
                return self._stream(prompt, params, on_delta)
            except openai.BadRequestError as err:
                param = _rejected_param(err, params, self._dropped)
                if not param:
                    raise
                log.info("LLM endpoint %s rejects %s; retrying without it", self.url, param)
                self._dropped.add(param)

    def _once(self, prompt: str, params: dict[str, Any]) -> Completion:
        response: Any = self._api.client.chat.completions.create(**params)
        choices = getattr(response, "choices", None)
        if not isinstance(choices, list) or not choices:
            raise _BadReply
        text = getattr(getattr(choices[0], "message", None), "content", None) or ""
        if not isinstance(text, str):
            raise _BadReply
        finish = getattr(choices[0], "finish_reason", None)
        usage, model = getattr(response, "usage", None), getattr(response, "model", None)
        return self._finish(prompt, text, usage, model, finish)

    def _stream(
        self, prompt: str, params: dict[str, Any], on_delta: Callable[[str], None]
    ) -> Completion:
        stream: Any = self._api.client.chat.completions.create(**params)
        parts: list[str] = []
        finish, model, usage = None, None, None
        try:
            with stream:
                for chunk in stream:
                    usage = getattr(chunk, "usage", None) or usage
                    model = getattr(chunk, "model", None) or model
                    choices = getattr(chunk, "choices", None)
                    if not isinstance(choices, list):
                        raise _BadReply
                    for choice in choices[:1]:
                        finish = getattr(choice, "finish_reason", None) or finish
                        text = getattr(getattr(choice, "delta", None), "content", None)
                        if isinstance(text, str) and text:
                            parts.append(text)
                            on_delta(text)
                if finish is None and usage is None:  # every server ends with one or the other
                    response = stream.response
                    if not model and "event-stream" not in response.headers.get("content-type", ""):
                        raise _BadReply  # a 200 that is not a stream at all
                    raise openai.APIConnectionError(message="cut", request=response.request)
        except (openai.OpenAIError, json.JSONDecodeError, _BadReply) as err:
            if not parts:
                raise  # nothing shown yet: the caller may retry
            raise self._api.error(err) from err  # deltas already shown: a retry would repeat them
        return self._finish(prompt, "".join(parts), usage, model, finish)

    def _finish(
        self, prompt: str, text: str, usage: Any, model: Any, finish: str | None
    ) -> Completion:
        sent = getattr(usage, "prompt_tokens", None)
        got = getattr(usage, "completion_tokens", None)
        if not isinstance(sent, int) or not isinstance(got, int):  # some servers omit usage
            encoding = tokens.encoding_for(self.name, self._encoding_name)
            sent, got = tokens.count(prompt, encoding), tokens.count(text, encoding)
        return Completion(text, sent, got, model if isinstance(model, str) else self.name, finish)


class OpenAIEmbeddings:
    """An embedding model on an OpenAI-compatible endpoint; vectors are L2-normalised float32."""

    def __init__(self, settings: Settings, model: str, *, backoff: float = 0.5) -> None:
        self._api = _Endpoint(settings, model, "MARGIN_EMBEDDING", backoff)
        self.name = f"openai:{model}"
        self._dim: int | None = None

    @property
    def dim(self) -> int:
        """Vector size (asks the endpoint once, by embedding one string, if not yet known)."""
        if self._dim is None:
            return int(self.embed_query("dimension probe").shape[0])
        return self._dim

    def embed_passages(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Shape (len(texts), dim), one request per 256 texts."""
        batches = [
            self._api.call(functools.partial(self._embed, texts[start : start + _EMBED_BATCH]))
            for start in range(0, len(texts), _EMBED_BATCH)
        ]
        if not batches:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = np.vstack(batches)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        unit: npt.NDArray[np.float32] = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
        return unit

    def embed_query(self, text: str) -> npt.NDArray[np.float32]:
        """Shape (dim,)."""
        vector: npt.NDArray[np.float32] = self.embed_passages([text])[0]
        return vector

    def health(self) -> str:
        """Embed one string; a one-line description, or :class:`LLMError` with the cause."""
        size = self.embed_query("health check").shape[0]
        return f"OK: embedding model '{self._api.model}' at {self._api.url} ({size} dimensions)"

    def _embed(self, batch: Sequence[str]) -> npt.NDArray[np.float32]:
        response: Any = self._api.client.embeddings.create(
            model=self._api.model, input=list(batch), encoding_format="float"
        )
        data = getattr(response, "data", None)
        if not isinstance(data, list) or len(data) != len(batch):
            raise _BadReply
        try:
            rows = sorted(data, key=lambda item: int(item.index))
            vectors = np.asarray([row.embedding for row in rows], dtype=np.float32)
        except (AttributeError, TypeError, ValueError) as err:
            raise _BadReply from err
        if vectors.ndim != 2 or vectors.shape[1] == 0 or self._dim not in (None, vectors.shape[1]):
            raise _BadReply
        self._dim = int(vectors.shape[1])
        return vectors


class QueueModel(ChatModel):
    """A scripted fake for tests: each call pops the next reply (or raises it if an exception)."""

    name = "queue"

    def __init__(self, replies: Iterable[str | BaseException] = ()) -> None:
        self.replies: deque[str | BaseException] = deque(replies)
        self.prompts: list[str] = []

    def complete(
        self, prompt: str, *, max_tokens: int, on_delta: Callable[[str], None] | None = None
    ) -> Completion:
        """Pop the next reply, streamed in a few deltas when ``on_delta`` is given."""
        self.prompts.append(prompt)
        if not self.replies:
            raise LLMError("The queue model has no scripted reply left.", "bad_reply")
        reply = self.replies.popleft()
        if isinstance(reply, BaseException):
            raise reply
        if on_delta is not None and reply:
            size = math.ceil(len(reply) / 4)
            for start in range(0, len(reply), size):
                on_delta(reply[start : start + size])
        return Completion(reply, tokens.count(prompt), tokens.count(reply), self.name, "stop")

    def health(self) -> str:
        """Always fine."""
        return f"OK: queue model ({len(self.replies)} replies left)"


def from_settings(settings: Settings) -> ChatModel | None:
    """The configured chat model; None when none is configured (answers are then extractive)."""
    if not settings.llm_configured():
        return None
    return OpenAIChat(settings)
