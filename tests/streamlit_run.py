"""Start the real app with ``streamlit run`` on a free loopback port (browser tests, bench)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spawn(
    port: int, env: dict[str, str], out: IO[bytes] | int = subprocess.DEVNULL
) -> subprocess.Popen[bytes]:
    """``streamlit run streamlit_app.py`` headless on 127.0.0.1:``port``; output to ``out``."""
    command = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port",
               str(port), "--server.headless", "true", "--server.address", "127.0.0.1"]  # fmt: skip
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
