"""A loopback OpenAI-compatible server for tests and benchmarks (stdlib only, plus numpy).

Serves ``GET /v1/models``, ``POST /v1/chat/completions`` (JSON and SSE streaming) and
``POST /v1/embeddings`` on ``127.0.0.1`` with a random port::

    with LLMServer(latency=0.2) as server:
        server.script("test-model", ("status", 429, {"Retry-After": "0"}), "Hello.")
        client = openai.OpenAI(base_url=server.base_url, api_key="k")

Each model has a queue of behaviours, consumed one per request:

* ``"text"`` — reply with that text;
* ``("status", code)``, ``("status", code, headers)``, ``("status", code, body)`` or
  ``("status", code, headers, body)`` — an error answer with an OpenAI-shaped body (a dict
  with an ``"error"`` key is taken as the body, any other dict as headers);
* ``("sleep", seconds)`` or ``("sleep", seconds, "text")`` — wait, then reply;
* ``("malformed",)`` — 200 with a body that is not JSON;
* ``("json", obj)`` — 200 with ``obj`` as the JSON body (for unexpected shapes);
* ``("close",)`` — close the connection without answering;
* ``("truncate", "text")`` — start answering with that text, then close mid-answer (a stream
  stops after half the deltas, without a finish reason; a JSON body stops halfway).

With the queue empty, chat replies with the model's default reply, else ``"Echo: …"`` (the
first words of the last message). A model nobody configured or scripted answers 404.
Embeddings are deterministic: a sum of per-word pseudo-random vectors (texts sharing words are
similar), not normalised.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import numpy as np

__all__ = ["CONTEXT_LENGTH_BODY", "Behaviour", "LLMServer", "Received"]

Behaviour = str | tuple[Any, ...]

CONTEXT_LENGTH_BODY: dict[str, Any] = {
    "error": {
        "message": "This model's maximum context length is 8192 tokens. However, your messages "
        "resulted in 9000 tokens. Please reduce the length of the messages.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }
}

# What real servers say when they do not accept a parameter (OpenAI, vLLM wording).
_REJECTIONS = {
    "stream_options": "Unrecognized request argument supplied: stream_options",
    "max_tokens": "Unsupported parameter: 'max_tokens' is not supported with this model. "
    "Use 'max_completion_tokens' instead.",
    "temperature": "Unsupported value: 'temperature' does not support 0 with this model. "
    "Only the default (1) value is supported.",
}
_SSE = {"Content-Type": "text/event-stream"}
_STATUS_TEXT = {
    400: ("invalid_request_error", "Bad request."),
    401: ("invalid_request_error", "Incorrect API key provided."),
    404: ("invalid_request_error", "The model does not exist or you do not have access to it."),
    429: ("rate_limit_exceeded", "Rate limit reached. Please try again later."),
}


@dataclass(frozen=True)
class Received:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: dict[str, Any]


def _error_body(code: int, model: str) -> dict[str, Any]:
    kind, message = _STATUS_TEXT.get(code, ("server_error", f"The server had an error ({code})."))
    if code == 404:
        message = f"The model '{model}' does not exist or you do not have access to it."
        return {"error": {"message": message, "type": kind, "code": "model_not_found"}}
    return {"error": {"message": message, "type": kind, "code": None}}


@functools.lru_cache(maxsize=65536)
def _word_vector(word: str, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal(dim)


def embed_text(text: str, dim: int) -> list[float]:
    """The server's deterministic embedding of ``text``."""
    words = text.lower().split() or [f"\x00{text}"]
    vector = np.sum([_word_vector(word, dim) for word in words], axis=0)
    return [float(x) for x in vector]


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # benchmarks open many connections at once
    app: LLMServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that time out and hang up are part of the tests, not server failures


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.app._handle(self, "GET", {})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self.send_json(400, {"error": {"message": "Body is not JSON.", "type": "bad"}})
            return
        self.server.app._handle(self, "POST", body)

    def send_json(self, code: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self.send_raw(code, json.dumps(payload).encode(), headers)

    def send_raw(self, code: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        headers = {"Content-Type": "application/json", **(headers or {})}
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class LLMServer:
    """An OpenAI-compatible server on 127.0.0.1, scriptable per model; a context manager."""

    def __init__(
        self,
        models: Iterable[str] = ("test-model", "test-embed"),
        *,
        latency: float = 0.0,
        dim: int = 64,
        default_reply: str | None = None,
        list_models: bool = True,
        send_usage: bool = True,
        reject_params: Iterable[str] = (),
    ) -> None:
        self.models = list(models)
        self.latency = latency
        self.dim = dim
        self.default_reply = default_reply
        self.list_models = list_models  # False: /v1/models answers 404 (like some servers)
        self.send_usage = send_usage  # False: no usage in replies (like some servers)
        self.reject_params = set(reject_params)  # answer 400 when a request carries these
        self.defaults: dict[str, str] = {}
        self.calls: Counter[tuple[str, str]] = Counter()  # (path, model) -> requests
        self.requests: list[Received] = []
        self._queues: defaultdict[str, deque[Behaviour]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> LLMServer:
        """Bind a free port and serve in a daemon thread."""
        httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        httpd.app = self
        self._httpd = httpd
        self._stopped.clear()
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; sleeping handlers wake up and give up."""
        self._stopped.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> LLMServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``."""
        if self._httpd is None:
            raise RuntimeError("the server is not running")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    # -- scripting -------------------------------------------------------------------------

    def script(self, model: str, *behaviours: Behaviour) -> None:
        """Queue behaviours for ``model``'s next requests (and make the model known)."""
        with self._lock:
            self._queues[model].extend(behaviours)

    def set_default(self, model: str, reply: str) -> None:
        """What ``model`` answers once its queue is empty (and make the model known)."""
        self.defaults[model] = reply

    def count(self, path: str | None = None, model: str | None = None) -> int:
        """Requests received, optionally only for a path (e.g. '/v1/chat/completions') or model."""
        with self._lock:
            return sum(
                n
                for (p, m), n in self.calls.items()
                if (path is None or p == path) and (model is None or m == model)
            )

    def reset(self) -> None:
        """Forget scripts, defaults, counts and received requests."""
        with self._lock:
            self._queues.clear()
            self.defaults.clear()
            self.calls.clear()
            self.requests.clear()

    # -- serving ---------------------------------------------------------------------------

    def _handle(self, handler: _Handler, method: str, body: dict[str, Any]) -> None:
        path = handler.path.split("?", 1)[0]
        model = str(body.get("model", ""))
        with self._lock:
            self.calls[(path, model)] += 1
            headers = {name.lower(): value for name, value in handler.headers.items()}
            self.requests.append(Received(method, path, headers, body))
            queue = self._queues.get(model)
            behaviour = queue.popleft() if queue else None
            known = model in self.models or model in self.defaults or model in self._queues
        if self.latency and self._stopped.wait(self.latency):
            return
        if method == "GET" and path == "/v1/models" and self.list_models:
            listing = [
                {"id": m, "object": "model", "created": 0, "owned_by": "test"} for m in self.models
            ]
            handler.send_json(200, {"object": "list", "data": listing})
            return
        if method != "POST" or path not in ("/v1/chat/completions", "/v1/embeddings"):
            handler.send_json(
                404, {"error": {"message": f"No route {method} {path}.", "type": "not_found"}}
            )
            return
        if behaviour is None and not known:
            handler.send_json(404, _error_body(404, model))
            return
        rejected = sorted(self.reject_params & set(body))
        if rejected:
            handler.send_json(
                400, {"error": {"message": _REJECTIONS.get(rejected[0], rejected[0])}}
            )
            return
        reply = self._apply(handler, behaviour, model, body)
        if reply is None:
            return
        if path == "/v1/embeddings":
            self._embeddings(handler, body)
        elif body.get("stream"):
            self._stream(handler, body, reply)
        else:
            self._complete(handler, body, reply)

    def _default_reply(self, model: str, body: dict[str, Any]) -> str:
        reply = self.defaults.get(model, self.default_reply)
        if reply is not None:
            return reply
        messages = body.get("messages") or [{}]
        words = str(messages[-1].get("content", "")).split()
        return "Echo: " + " ".join(words[:20])

    def _apply(
        self, handler: _Handler, behaviour: Behaviour | None, model: str, body: dict[str, Any]
    ) -> str | None:
        """Carry out a behaviour; the reply text to send, or None when already answered."""
        if behaviour is None:
            return self._default_reply(model, body)
        if isinstance(behaviour, str):
            return behaviour
        match behaviour:
            case ("status", int(code), *rest):
                headers = next((r for r in rest if isinstance(r, dict) and "error" not in r), None)
                error = next((r for r in rest if isinstance(r, dict) and "error" in r), None)
                handler.send_json(code, error or _error_body(code, model), headers)
            case ("sleep", float(seconds) | int(seconds), *rest):
                if self._stopped.wait(seconds):
                    return None
                return str(rest[0]) if rest else self._default_reply(model, body)
            case ("malformed",) if body.get("stream"):
                handler.send_raw(200, b'data: {"id": "chatcmpl-1", "choices": [\n\n', _SSE)
            case ("malformed",):
                handler.send_raw(200, b'{"id": "chatcmpl-1", "choices": [')
            case ("json", payload):
                handler.send_json(200, payload)
            case ("close",):
                handler.close_connection = True
            case ("truncate", str(text)):
                self._truncate(handler, body, text)
            case _:
                raise ValueError(f"unknown behaviour {behaviour!r}")
        return None

    def _reply_tokens(self, body: dict[str, Any], reply: str) -> tuple[list[str], str, int, int]:
        words = reply.split(" ")
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        finish = "stop"
        if limit is not None and len(words) > int(limit):
            words, finish = words[: int(limit)], "length"
        prompt = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
        return words, finish, prompt, len(words)

    def _complete(self, handler: _Handler, body: dict[str, Any], reply: str) -> None:
        words, finish, prompt, completion = self._reply_tokens(body, reply)
        payload: dict[str, Any] = {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": " ".join(words)},
                    "finish_reason": finish,
                }
            ],
        }
        if self.send_usage:
            payload["usage"] = {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            }
        handler.send_json(200, payload)

    def _stream(self, handler: _Handler, body: dict[str, Any], reply: str) -> None:
        words, finish, prompt, completion = self._reply_tokens(body, reply)
        base = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 0}
        base["model"] = body.get("model")

        def chunk(delta: dict[str, str], finish_reason: str | None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
            return {**base, "choices": [choice]}

        events = [chunk({"role": "assistant", "content": ""}, None)]
        events += [chunk({"content": w if i == 0 else " " + w}, None) for i, w in enumerate(words)]
        events.append(chunk({}, finish))
        if self.send_usage and (body.get("stream_options") or {}).get("include_usage"):
            usage = {"prompt_tokens": prompt, "completion_tokens": completion}
            usage["total_tokens"] = prompt + completion
            events.append({**base, "choices": [], "usage": usage})
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Cache-Control", "no-cache")
        handler.end_headers()
        for event in events:
            handler.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
            handler.wfile.flush()
        handler.wfile.write(b"data: [DONE]\n\n")
        handler.close_connection = True

    def _truncate(self, handler: _Handler, body: dict[str, Any], text: str) -> None:
        handler.close_connection = True
        if not body.get("stream"):
            payload = json.dumps({"id": "chatcmpl-test", "choices": [{"text": text}]}).encode()
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload[: len(payload) // 2])
            return
        words = text.split(" ")
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.end_headers()
        for word in words[: max(1, len(words) // 2)]:
            delta = {"index": 0, "delta": {"content": word + " "}, "finish_reason": None}
            chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "choices": [delta]}
            handler.wfile.write(
                f"data: {json.dumps(chunk | {'model': body.get('model')})}\n\n".encode()
            )

    def _embeddings(self, handler: _Handler, body: dict[str, Any]) -> None:
        inputs = body.get("input", [])
        texts = [inputs] if isinstance(inputs, str) else [str(t) for t in inputs]
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for i, text in enumerate(texts):
            vector = embed_text(text, self.dim)
            encoded: Any = vector
            if as_base64:
                encoded = base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()
            data.append({"object": "embedding", "index": i, "embedding": encoded})
        tokens = sum(len(t.split()) for t in texts)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        handler.send_json(
            200, {"object": "list", "data": data, "model": body.get("model"), "usage": usage}
        )
