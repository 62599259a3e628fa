"""Small file helpers shared by the stores that keep user data in the data folder (private)."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

__all__ = ["slug", "write_atomic"]


def slug(name: str, fallback: str) -> str:
    """A file-safe name; the name's own hash keeps names that slugify alike ("A b", "a-b") apart."""
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or fallback
    return f"{base}-{hashlib.sha256(name.encode('utf-8')).hexdigest()[:8]}"


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write via a temporary file and rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if isinstance(data, bytes):
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        else:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
