"""Named chat models for a matrix: ``NAME`` or ``NAME=MODEL@BASE_URL`` (see qa_core.matrix)."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from qa_core.answering import llm
from qa_core.answering.llm import ChatModel
from qa_core.errors import ConfigError
from qa_core.service import Service
from qa_core.settings import Settings

__all__ = ["ModelSpec", "model_id", "resolve_models"]


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A named model: ``model`` on the configured endpoint, or at ``base_url``."""

    name: str
    model: str
    base_url: str | None = None

    @classmethod
    def parse(cls, value: str) -> ModelSpec:
        """``NAME`` or ``NAME=MODEL@BASE_URL`` (see the module's documentation)."""
        name, eq, rest = value.strip().partition("=")
        if not eq:
            if not name or any(c.isspace() for c in name):
                raise ConfigError(f"Model {value!r} is not a model name; see --help.")
            return cls(name, name)
        model, _, url = rest.partition("@")
        if not name or not model or not url.startswith(("http://", "https://")):
            raise ConfigError(
                f"Model {value!r} is not NAME or NAME=MODEL@BASE_URL "
                "(e.g. llama=llama3.2@http://localhost:11434/v1)."
            )
        return cls(name.strip(), model.strip(), url.strip())

    @property
    def key_variable(self) -> str:
        """The environment variable holding the API key of another endpoint."""
        return "MARGIN_API_KEY_" + re.sub(r"\W", "_", self.name).upper()

    def chat(self, settings: Settings) -> ChatModel:
        """The chat model this names (raises ConfigError when no endpoint is configured)."""
        update: dict[str, Any] = {"chat_model": self.model}
        if self.base_url:
            key = os.environ.get(self.key_variable)
            update["openai_base_url"] = self.base_url
            update["openai_api_key"] = SecretStr(key) if key else None
        return llm.OpenAIChat(settings.model_copy(update=update))


def resolve_models(service: Service, values: Sequence[str]) -> dict[str, ChatModel]:
    """Named chat models from ``--model`` values; none given: the configured model."""
    if not values:
        if service.chat is None:
            raise ConfigError(
                "A matrix needs a chat model: set OPENAI_BASE_URL and MARGIN_CHAT_MODEL "
                "(or OPENAI_API_KEY), or give --model."
            )
        return {service.chat.name: service.chat}
    models: dict[str, ChatModel] = {}
    for spec in map(ModelSpec.parse, values):
        if spec.name in models:
            raise ConfigError(f"Two models are named {spec.name!r}; give each its own name.")
        same = service.chat is not None and service.chat.name == spec.model and not spec.base_url
        models[spec.name] = service.chat if same and service.chat else spec.chat(service.settings)
    return models


def model_id(chat: ChatModel) -> str:
    """What identifies a model in cache keys and exports: model@endpoint."""
    return f"{chat.name}@{chat.url}"
