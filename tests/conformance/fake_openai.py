"""A small OpenAI-compatible server on 127.0.0.1 that answers as the pinned engines do.

Stdlib only, so it runs in any interpreter. What it imitates, and from where:

* Chat streaming: a role chunk, then the reasoning deltas, then the ``content`` deltas, a
  ``finish_reason`` chunk and, when ``stream_options.include_usage`` is set, a chunk with
  empty ``choices`` and ``usage``, then ``[DONE]``. The reasoning field is ``reasoning`` in
  vLLM 0.33 (``entrypoints/generate/base/protocol.py``) and ``reasoning_content`` in the
  vLLM 0.11 that rayproject/ray-llm:2.52.0 ships (shared/reference/audit/workloads.md).
* Tools: with ``tools`` and no ``tool_choice`` vLLM 0.33 defaults to "auto"
  (``entrypoints/openai/chat_completion/protocol.py``) and, unless it was started with
  ``--enable-auto-tool-choice --tool-call-parser``, answers HTTP 400 with
  '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set'
  (``vllm/renderers/online_renderer.py``). ``tools_enabled`` says which engine this is.
* Open WebUI's task calls after each chat (title, follow-ups, tags; non-streamed, prompts
  contain "### Task") get the JSON those tasks ask for.
* ``/v1/completions`` streams ``max_tokens`` text chunks and a usage chunk, as
  ``vllm bench serve --backend openai`` reads them; ``/tokenize`` is not served (vLLM's
  bench client only warns).
* A configured API key is required on ``/v1/*`` (vLLM's ``--api-key``/``VLLM_API_KEY``).

Every request is recorded (path, headers, body) for the tests to assert on.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

AUTO_TOOL_ERROR = '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set'
REASONING = ["The user ", "greets me; ", "I should ", "answer ", "briefly."]
ANSWER = ["Hello! ", "I am ", "the conformance ", "test model."]


@dataclass
class Engine:
    model: str
    api_key: str | None = None
    # vLLM 0.33 "reasoning"; "reasoning_content" for ray-llm's vLLM; None: no reasoning parser
    reasoning_field: str | None = "reasoning"
    # A reasoning model behind an engine without a reasoning parser: R1's chat template opens
    # <think> in the prompt, so the content is the thinking, a lone </think>, then the answer.
    inline_reasoning: bool = False
    tools_enabled: bool = False
    delay: float = 0.02  # between streamed chunks, so a browser sees a stream
    requests: list[dict[str, Any]] = field(default_factory=list)


def _task_answer(prompt: str) -> str:
    lowered = prompt.lower()
    if "follow" in lowered:
        return json.dumps({"follow_ups": ["Tell me more.", "Why?"]})
    if "tags" in lowered:
        return json.dumps({"tags": ["Greeting"]})
    if "title" in lowered:
        return json.dumps({"title": "Conformance greeting"})
    return "{}"


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    # --- helpers -------------------------------------------------------------------------

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, type_: str = "BadRequestError") -> None:
        self._json(status, {"error": {"message": message, "type": type_, "param": None, "code": status}})

    def _stream(self, chunks: list[dict[str, Any]]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        for chunk in chunks:
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
            time.sleep(self.server.engine.delay)
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()

    def _authorized(self) -> bool:
        key = self.server.engine.api_key
        if key is None or self.headers.get("Authorization") == f"Bearer {key}":
            return True
        self._json(401, {"error": "Unauthorized"})
        return False

    def _record(self, body: Any) -> None:
        self.server.engine.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})

    # --- routes --------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._record(None)
        if self.path == "/health":
            self._json(200, {})
        elif self.path == "/v1/models":
            if self._authorized():
                model = {"id": self.server.engine.model, "object": "model", "owned_by": "vllm", "created": 0}
                self._json(200, {"object": "list", "data": [model]})
        else:
            self._json(404, {"detail": "Not Found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self._record(body)
        if not self.path.startswith("/v1/"):
            self._json(404, {"detail": "Not Found"})
            return
        if not self._authorized():
            return
        if body.get("model") != self.server.engine.model:
            self._error(404, f"The model `{body.get('model')}` does not exist.", "NotFoundError")
        elif self.path == "/v1/chat/completions":
            self._chat(body)
        elif self.path == "/v1/completions":
            self._completions(body)
        else:
            self._json(404, {"detail": "Not Found"})

    def _chat(self, body: dict[str, Any]) -> None:
        engine = self.server.engine
        tool_choice = body.get("tool_choice") or ("auto" if body.get("tools") else "none")
        if tool_choice == "auto" and not engine.tools_enabled:
            self._error(400, AUTO_TOOL_ERROR)
            return
        prompt = json.dumps(body.get("messages", []))
        created, ident, model = int(time.time()), "chatcmpl-conformance", engine.model
        # Open WebUI's title / follow-up / tag calls
        answer = _task_answer(prompt) if "### Task" in prompt else None
        if not body.get("stream"):
            inline = "".join(REASONING) + "</think>\n\n" if engine.inline_reasoning and answer is None else ""
            message = {"role": "assistant", "content": answer or inline + "".join(ANSWER)}
            if answer is None and engine.reasoning_field:
                message[engine.reasoning_field] = "".join(REASONING)
            self._json(
                200,
                {
                    "id": ident,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 9, "total_tokens": 19},
                },
            )
            return

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [choice],
            }

        chunks = [chunk({"role": "assistant", "content": ""})]
        if answer is None and engine.reasoning_field:
            chunks += [chunk({engine.reasoning_field: piece}) for piece in REASONING]
        if answer is None and engine.inline_reasoning:
            chunks += [chunk({"content": piece}) for piece in [*REASONING, "</think>\n\n"]]
        chunks += [chunk({"content": piece}) for piece in ([answer] if answer else ANSWER)]
        chunks.append(chunk({}, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {"prompt_tokens": 10, "completion_tokens": 9, "total_tokens": 19}
            chunks.append(
                {
                    "id": ident,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": usage,
                }
            )
        self._stream(chunks)

    def _completions(self, body: dict[str, Any]) -> None:
        n = int(body.get("max_tokens") or 16)
        created, ident, model = int(time.time()), "cmpl-conformance", self.server.engine.model

        def chunk(text: str, finish: str | None = None) -> dict[str, Any]:
            choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
            return {"id": ident, "object": "text_completion", "created": created, "model": model, "choices": [choice]}

        if not body.get("stream"):
            self._json(
                200,
                {
                    "id": ident,
                    "object": "text_completion",
                    "created": created,
                    "model": model,
                    "choices": [{"index": 0, "text": "x " * n, "finish_reason": "length"}],
                    "usage": {"prompt_tokens": 8, "completion_tokens": n, "total_tokens": 8 + n},
                },
            )
            return
        chunks = [chunk("x ") for _ in range(n - 1)] + [chunk("x ", "length")]
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {"prompt_tokens": 8, "completion_tokens": n, "total_tokens": 8 + n}
            chunks.append(
                {
                    "id": ident,
                    "object": "text_completion",
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": usage,
                }
            )
        self._stream(chunks)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, engine: Engine) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.engine = engine


class FakeEngine:
    """``with FakeEngine(Engine(...)) as fake: fake.base_url`` serves on a free loopback port."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._server = _Server(engine)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeEngine:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
