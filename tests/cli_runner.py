"""Run the real CLI in a subprocess with a clean environment (no OPENAI_/MARGIN_/QDRANT_ leaks)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def margin(
    data: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "MARGIN_", "QDRANT_"))
    }
    return subprocess.run(
        [sys.executable, "-m", "qa_core", "--data-dir", str(data), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**clean, **(env or {})},
    )
