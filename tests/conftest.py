"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.llm_server import LLMServer


@pytest.fixture
def llm_server() -> Iterator[LLMServer]:
    """A started loopback OpenAI-compatible server (see tests/llm_server.py)."""
    with LLMServer() as server:
        yield server
