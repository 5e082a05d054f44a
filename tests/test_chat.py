"""tools/chat.py against a small OpenAI-compatible streaming server on 127.0.0.1.

The server (stdlib ``http.server``, one thread per request) serves ``GET /v1/models`` and
streaming ``POST /v1/chat/completions`` as server-sent events, checks the bearer key and the
model, and sends the reasoning in whichever shape a test asks for. ``chat.main`` runs in-process
against it; the tests read what it printed. ``pulumi`` is a shell script on a private PATH.
"""

from __future__ import annotations

import io
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal, cast

import pytest

from tools import chat

KEY = "test-key-123"
MODEL = "deepseek-r1"
REASONING = "Okay, count the r's in strawberry: s-t-r, b-e-r-r. That is three."
ANSWER = "There are **3** r's in strawberry."

Style = Literal["reasoning", "reasoning_content", "think", "close_only", "plain"]

# Content pieces as a server without a reasoning parser streams them: tags cut across chunks.
CONTENT_PIECES: dict[Style, list[str]] = {
    "think": ["<th", "ink>\n", REASONING[:20], REASONING[20:], "\n</th", "ink>", "\n\n", ANSWER[:10], ANSWER[10:]],
    # R1's template already put "<think>" into the prompt: only the closing tag comes back.
    "close_only": [REASONING[:30], REASONING[30:] + "\n<", "/think>\n\n" + ANSWER[:5], ANSWER[5:]],
    "plain": [ANSWER[:10], ANSWER[10:]],
}
USAGE_TOKENS = 42


@dataclass
class Script:
    """What the fake server does."""

    style: Style = "reasoning"
    usage: bool = True  # send the final usage chunk when the client asks for it
    stall_s: float = 0.0  # wait this long before the first chunk


@dataclass
class Seen:
    path: str
    authorization: str | None
    body: dict[str, Any] = field(default_factory=dict)


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script = Script()
        self.seen: list[Seen] = []
        self.stopping = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a stalled stream whose client gave up: nothing to report


class _Handler(BaseHTTPRequestHandler):
    @property
    def fake(self) -> FakeServer:
        return cast(FakeServer, self.server)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if not self._authorized(Seen(self.path, self.headers.get("Authorization"))):
            return
        if self.path == "/v1/models":
            self._json(
                HTTPStatus.OK, {"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "vllm"}]}
            )
        else:
            self._json(HTTPStatus.NOT_FOUND, {"detail": "Not Found"})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if not self._authorized(Seen(self.path, self.headers.get("Authorization"), body)):
            return
        if body.get("model") != MODEL:  # vLLM's answer to an unknown model
            message = f"The model `{body.get('model')}` does not exist."
            self._json(HTTPStatus.NOT_FOUND, {"error": {"message": message, "type": "NotFoundError", "code": 404}})
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        if self.fake.stopping.wait(self.fake.script.stall_s):
            return
        include_usage = bool(body.get("stream_options", {}).get("include_usage"))
        for chunk in self._chunks(include_usage):
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")

    def _authorized(self, seen: Seen) -> bool:
        self.fake.seen.append(seen)
        if seen.authorization == f"Bearer {KEY}":
            return True
        self._json(HTTPStatus.UNAUTHORIZED, {"error": "Unauthorized"})  # what vLLM's --api-key gate sends
        return False

    def _chunks(self, include_usage: bool) -> Iterator[dict[str, Any]]:
        style = self.fake.script.style
        deltas: list[dict[str, str]] = [{"role": "assistant", "content": ""}]
        if style in ("reasoning", "reasoning_content"):
            deltas += [{style: piece} for piece in (REASONING[:25], REASONING[25:])]
            deltas += [{"content": piece} for piece in (ANSWER[:12], ANSWER[12:])]
        else:
            deltas += [{"content": piece} for piece in CONTENT_PIECES[style]]
        for number, delta in enumerate(deltas):
            finish = "stop" if number == len(deltas) - 1 else None
            yield self._chunk([{"index": 0, "delta": delta, "finish_reason": finish}])
        if include_usage and self.fake.script.usage:
            usage = {"prompt_tokens": 19, "completion_tokens": USAGE_TOKENS, "total_tokens": 19 + USAGE_TOKENS}
            yield self._chunk([], usage=usage)

    @staticmethod
    def _chunk(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": MODEL}
        return {**head, "choices": choices, **extra}

    def _json(self, status: HTTPStatus, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer()
    thread = threading.Thread(target=fake.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield fake
    fake.stopping.set()
    fake.shutdown()
    fake.server_close()
    thread.join()


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean environment: no OpenAI settings, and a PATH with nothing on it (so no `pulumi`)."""
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", chat.MODEL_ENV):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "bin"
    path.mkdir()
    monkeypatch.setenv("PATH", str(path))
    return path


def fake_pulumi(bin_dir: Path, outputs: dict[str, str] | None, *, fail: str | None = None) -> Path:
    """A `pulumi` that records its arguments and prints ``outputs`` as JSON, or fails with ``fail``."""
    calls = bin_dir / "pulumi-calls"
    body = f"echo \"$@\" >> '{calls}'\n"
    body += f"echo '{fail}' >&2\nexit 1\n" if fail else f"printf '%s\\n' '{json.dumps(outputs)}'\n"
    script = bin_dir / "pulumi"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    return calls


@dataclass
class Run:
    status: int
    out: str
    err: str

    @property
    def errors(self) -> list[str]:
        """stderr without the tool's notes ("chat: ...")."""
        return [line for line in self.err.splitlines() if not line.startswith("chat: ")]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Run:
    status = chat.main([*argv, "How many r are there in strawberry?"])
    captured = capsys.readouterr()
    return Run(status, captured.out, captured.err)


def full_flags(server: FakeServer) -> list[str]:
    return ["--base-url", server.url, "--api-key", KEY, "--model", MODEL]


def assert_one_line_error(result: Run, *parts: str) -> None:
    assert result.status == 1
    assert "Traceback" not in result.err
    assert len(result.errors) == 1, result.err
    assert result.errors[0].startswith("error: ")
    for part in parts:
        assert part in result.errors[0]


# --- reasoning and answer, in every shape ----------------------------------------------


@pytest.mark.usefixtures("bin_dir")
@pytest.mark.parametrize("style", ["reasoning", "reasoning_content", "think"])
def test_reasoning_and_answer_are_printed_apart(
    style: Style, server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.script.style = style
    result = run(capsys, *full_flags(server))
    assert result.status == 0, result.err
    assert result.out == f"--- reasoning ---\n{REASONING}\n\n--- answer ---\n{ANSWER}\n"


@pytest.mark.usefixtures("bin_dir")
def test_text_before_a_lone_closing_tag_is_reasoning(server: FakeServer, capsys: pytest.CaptureFixture[str]) -> None:
    server.script.style = "close_only"
    result = run(capsys, *full_flags(server))
    assert result.status == 0, result.err
    # Untagged text shows as it arrives; the closing tag then marks where the answer starts.
    assert result.out == f"{REASONING}\n\n--- answer ---\n{ANSWER}\n"


@pytest.mark.usefixtures("bin_dir")
@pytest.mark.parametrize("style", ["reasoning", "reasoning_content", "think", "close_only", "plain"])
def test_hide_reasoning_prints_only_the_answer(
    style: Style, server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.script.style = style
    result = run(capsys, *full_flags(server), "--hide-reasoning")
    assert result.status == 0, result.err
    assert result.out == f"{ANSWER}\n"


@pytest.mark.usefixtures("bin_dir")
def test_a_model_without_reasoning_prints_just_the_answer(
    server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.script.style = "plain"
    assert run(capsys, *full_flags(server)).out == f"{ANSWER}\n"


def split_everywhere(content: str) -> Iterator[list[str]]:
    """The content cut into two and three pieces at every pair of positions."""
    for i in range(len(content) + 1):
        for j in range(i, len(content) + 1):
            yield [content[:i], content[i:j], content[j:]]


@pytest.mark.parametrize("style", ["think", "close_only", "plain"])
def test_think_tags_split_at_any_position(style: Style) -> None:
    content = "".join(CONTENT_PIECES[style])
    expected = (REASONING if style != "plain" else "", ANSWER)
    for pieces in split_everywhere(content):
        splitter, transcript = chat.ThinkTagSplitter(), chat.Transcript(io.StringIO())
        for piece in pieces:
            for kind, text in splitter.feed(piece):
                transcript.add(kind, text)
        for kind, text in splitter.finish():
            transcript.add(kind, text)
        transcript.finish()
        assert (transcript.reasoning.strip(), transcript.answer.strip()) == expected, pieces


def test_an_unfinished_tag_at_the_end_is_text() -> None:
    splitter = chat.ThinkTagSplitter()
    assert splitter.feed("<think>hmm </thi") == [(chat.Kind.REASONING, "hmm ")]
    assert splitter.finish() == [(chat.Kind.REASONING, "</thi")]


def test_on_a_terminal_reasoning_is_dimmed_and_the_answer_is_not() -> None:
    out = io.StringIO()
    transcript = chat.Transcript(out, color=True)
    transcript.add(chat.Kind.REASONING, "hmm")
    transcript.add(chat.Kind.ANSWER, "42")
    transcript.finish()
    dim, reset = chat.DIM, chat.RESET
    assert out.getvalue() == f"{dim}--- reasoning ---\n{reset}{dim}hmm{reset}\n\n{dim}--- answer ---\n{reset}42\n"


# --- timing ----------------------------------------------------------------------------


@pytest.mark.usefixtures("bin_dir")
def test_ttft_tokens_and_rate_come_from_the_usage_chunk(server: FakeServer, capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, *full_flags(server))
    assert result.status == 0
    assert "time to first token" in result.err
    assert "total time" in result.err
    assert f"completion tokens     {USAGE_TOKENS}\n" in result.err
    assert "tokens per second" in result.err
    body = server.seen[-1].body
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert (body["temperature"], body["top_p"]) == (0.6, 0.95)
    assert body["messages"][0] == {"role": "system", "content": chat.DEFAULT_SYSTEM_PROMPT}


@pytest.mark.usefixtures("bin_dir")
def test_without_usage_tokens_are_counted_and_marked_approximate(
    server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.script.usage = False
    result = run(capsys, *full_flags(server))
    assert result.status == 0
    assert "completion tokens     ~4 (counted chunks: no usage from the server)" in result.err
    assert "tokens per second" in result.err


def test_timing_report_arithmetic() -> None:
    outcome = chat.Outcome(started=10.0, first_token=10.5, finished=12.5, usage_tokens=101)
    assert chat.timing_report(outcome, max_tokens=4096) == [
        "time to first token   0.50 s",
        "total time            2.50 s",
        "completion tokens     101",
        "tokens per second     50.0 after the first token (40.4 overall)",
    ]


# --- where the endpoint, key and model come from ---------------------------------------


def test_model_is_discovered_when_given_nowhere(
    server: FakeServer, bin_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run(capsys, "--base-url", server.url, "--api-key", KEY)
    assert result.status == 0, result.err
    assert "chat: Pulumi CLI not found; not reading the stack's outputs" in result.err
    assert f"chat: {MODEL} (GET /models) at {server.url} (--base-url), key from --api-key" in result.err
    assert [seen.path for seen in server.seen] == ["/v1/models", "/v1/chat/completions"]
    assert server.seen[-1].body["model"] == MODEL


def test_flags_win_over_the_environment(
    server: FakeServer, bin_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{closed_port()}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "wrong-key")
    monkeypatch.setenv(chat.MODEL_ENV, "wrong-model")
    result = run(capsys, *full_flags(server))
    assert result.status == 0, result.err
    assert f"chat: {MODEL} (--model) at {server.url} (--base-url), key from --api-key" in result.err


def test_environment_wins_over_the_stack_and_the_stack_fills_the_rest(
    server: FakeServer, bin_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = fake_pulumi(bin_dir, {"api_key": "stale-key", "served_model_name": MODEL, "openai_base_url": "http://x"})
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    result = run(capsys, "--stack", "eks")
    assert result.status == 0, result.err
    assert f"chat: {MODEL} (stack output served_model_name) at {server.url} (OPENAI_BASE_URL)" in result.err
    assert "key from OPENAI_API_KEY" in result.err
    assert calls.read_text() == "stack output --json --show-secrets --stack eks\n"


def test_stack_key_and_local_base_url_are_used_and_the_in_cluster_url_is_not(
    server: FakeServer, bin_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    in_cluster = "http://deepseek-r1.llm.svc.cluster.local:8000/v1"
    fake_pulumi(bin_dir, {"api_key": KEY, "openai_base_url": in_cluster, "local_base_url": server.url})
    result = run(capsys)
    assert result.status == 0, result.err
    assert f"at {server.url} (stack output local_base_url), key from stack output api_key" in result.err


def test_pulumi_is_not_run_when_flags_give_everything(
    server: FakeServer, bin_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = fake_pulumi(bin_dir, {"api_key": "stale-key"})
    assert run(capsys, *full_flags(server)).status == 0
    assert not calls.exists()


def test_a_failing_pulumi_is_one_note_and_defaults_apply(
    server: FakeServer, bin_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_pulumi(bin_dir, None, fail="error: no stack selected")
    result = run(capsys, "--base-url", server.url, "--api-key", KEY)
    assert result.status == 0, result.err
    assert "chat: `pulumi stack output` failed (error: no stack selected); not reading" in result.err


# --- errors: one line, no traceback ----------------------------------------------------


def closed_port() -> int:
    """A port nothing listens on: bound, then closed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.usefixtures("bin_dir")
def test_wrong_key_is_one_line(server: FakeServer, capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, "--base-url", server.url, "--api-key", "wrong", "--model", MODEL)
    assert_one_line_error(result, "HTTP 401", "Unauthorized", "--api-key")
    assert result.out == ""


@pytest.mark.usefixtures("bin_dir")
def test_wrong_model_is_one_line(server: FakeServer, capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, "--base-url", server.url, "--api-key", KEY, "--model", "r2")
    assert_one_line_error(result, "HTTP 404", "The model `r2` does not exist.", "--model")


@pytest.mark.usefixtures("bin_dir")
def test_unreachable_endpoint_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    result = run(capsys, "--base-url", url, "--api-key", KEY, "--model", MODEL)
    assert_one_line_error(result, f"cannot reach {url}", "kubectl port-forward")


@pytest.mark.usefixtures("bin_dir")
def test_unreachable_endpoint_during_model_discovery_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    assert_one_line_error(run(capsys, "--base-url", url, "--api-key", KEY), f"cannot reach {url}")


@pytest.mark.usefixtures("bin_dir")
def test_silent_server_times_out_in_one_line(server: FakeServer, capsys: pytest.CaptureFixture[str]) -> None:
    server.script.stall_s = 5.0
    result = run(capsys, *full_flags(server), "--timeout", "0.3")
    assert_one_line_error(result, f"no response from {server.url} within 0.3 s", "--timeout")
