"""The openai SDK behind one retry loop and one set of error sentences (private).

Used by :mod:`qa_core.answering.llm` for chat and embeddings. The SDK's own retries are off: we
retry 429, 5xx and connection failures ourselves, so that every failure ends in one sentence naming
the endpoint (:attr:`LLMError.kind` says which cause), and the API key never appears in it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import openai

from qa_core.errors import BadReply, ConfigError, LLMError, PromptTooLong
from qa_core.settings import Settings

__all__ = ["Endpoint", "rejected_param"]

log = logging.getLogger(__name__)
_T = TypeVar("_T")
_OPENAI_URL = "https://api.openai.com/v1"

_BACKOFF_CAP = 8.0  # seconds, our exponential backoff
_RETRY_AFTER_CAP = 30.0  # seconds, however long the server asks us to wait
_TOO_LONG = ("context length", "context_length", "maximum context", "too long", "context window")
_RETRYABLE = (openai.RateLimitError, openai.InternalServerError, openai.APIConnectionError)


# Failure -> LLMError.kind; the first matching class wins (subclasses come first).
_KINDS: tuple[tuple[type[Exception], str], ...] = (
    (openai.APITimeoutError, "timeout"),
    (openai.APIConnectionError, "unreachable"),
    (json.JSONDecodeError, "bad_reply"),
    (BadReply, "bad_reply"),
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


class Endpoint:
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
            except (openai.OpenAIError, json.JSONDecodeError, BadReply) as err:
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
            raise BadReply
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
        except (openai.OpenAIError, json.JSONDecodeError, BadReply):
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


def rejected_param(err: openai.BadRequestError, sent: dict[str, Any], dropped: set[str]) -> str:
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
