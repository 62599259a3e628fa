"""Test doubles that come in through the same doors as the real clients."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable

from qa_core import tokens
from qa_core.answering.llm import ChatModel, Completion
from qa_core.errors import LLMError


class QueueModel(ChatModel):
    """A scripted fake for tests: each call pops the next reply (or raises it if an exception)."""

    name = "queue"
    url = ""  # in-process: no endpoint

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
