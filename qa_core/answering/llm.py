"""Chat and embedding models behind any OpenAI-compatible endpoint (OpenAI, Ollama, vLLM, …).

Chat's use of the openai SDK lives here; :mod:`qa_core._openai` holds the retry loop and the
one-sentence errors that chat and embeddings share. Test doubles implement :class:`ChatModel`
(the tests' queue model) and come in through the same door as the real client.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import openai

from qa_core import tokens
from qa_core._openai import Endpoint, rejected_param
from qa_core.errors import BadReply, ConfigError
from qa_core.settings import Settings

__all__ = [
    "DEFAULT_CHAT_MODEL",
    "ChatModel",
    "Completion",
    "OpenAIChat",
    "from_settings",
]

log = logging.getLogger(__name__)
DEFAULT_CHAT_MODEL = "gpt-4o-mini"


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

    @property
    def url(self) -> str:
        """The endpoint that serves it, without credentials (part of every matrix cache key)."""
        ...

    def complete(
        self, prompt: str, *, max_tokens: int, on_delta: Callable[[str], None] | None = None
    ) -> Completion:
        """Answer ``prompt``; with ``on_delta``, stream and call it with each text delta."""
        ...

    def health(self) -> str:
        """A one-line 'OK: …' description, or raise :class:`LLMError` with the cause."""
        ...


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
        self._api = Endpoint(settings, model, "MARGIN_CHAT_MODEL", backoff)
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
                param = rejected_param(err, params, self._dropped)
                if not param:
                    raise
                log.info("LLM endpoint %s rejects %s; retrying without it", self.url, param)
                self._dropped.add(param)

    def _once(self, prompt: str, params: dict[str, Any]) -> Completion:
        response: Any = self._api.client.chat.completions.create(**params)
        choices = getattr(response, "choices", None)
        if not isinstance(choices, list) or not choices:
            raise BadReply
        text = getattr(getattr(choices[0], "message", None), "content", None) or ""
        if not isinstance(text, str):
            raise BadReply
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
                        raise BadReply
                    for choice in choices[:1]:
                        finish = getattr(choice, "finish_reason", None) or finish
                        text = getattr(getattr(choice, "delta", None), "content", None)
                        if isinstance(text, str) and text:
                            parts.append(text)
                            on_delta(text)
                if finish is None and usage is None:  # every server ends with one or the other
                    response = stream.response
                    if not model and "event-stream" not in response.headers.get("content-type", ""):
                        raise BadReply  # a 200 that is not a stream at all
                    raise openai.APIConnectionError(message="cut", request=response.request)
        except (openai.OpenAIError, json.JSONDecodeError, BadReply) as err:
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


def from_settings(settings: Settings) -> ChatModel | None:
    """The configured chat model; None when none is configured (answers are then extractive)."""
    if not settings.llm_configured():
        return None
    return OpenAIChat(settings)
