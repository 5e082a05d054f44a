"""Ask the deployed model one question; stream its reasoning and its answer separately.

The endpoint is any OpenAI-compatible server: vLLM, or Ray Serve LLM on the EKS stack.
Typical use, from the repo root, with the engine's Service port-forwarded to this machine::

    kubectl -n llm port-forward svc/SERVICE 8000:8000 &
    python tools/chat.py "How many r are there in strawberry?"
    python tools/chat.py --hide-reasoning --max-tokens 8192 "Which is bigger, 9.9 or 9.11?"
    python tools/chat.py --stack eks "Hello"
    OPENAI_BASE_URL=http://10.0.0.7:8000/v1 OPENAI_API_KEY=sk-... python tools/chat.py "Hello"

Where the base URL, API key and model come from (each setting on its own, first hit wins):

1. flags: ``--base-url``, ``--api-key``, ``--model``;
2. environment: ``OPENAI_BASE_URL``, ``OPENAI_API_KEY``, ``LLM_SERVING_MODEL``;
3. ``pulumi stack output --json --show-secrets`` (``--stack NAME``, default: the selected stack),
   run only if a setting is still missing: ``api_key`` (absent when the engine has no key,
   e.g. Ray), ``served_model_name`` and ``local_base_url`` if the stack exports one. The
   stack's ``openai_base_url`` is never used: it is the in-cluster Service address, which
   resolves only inside the cluster;
4. defaults: ``http://localhost:8000/v1`` (the port-forward above), no key, and the first
   model the server lists at ``GET /v1/models``.

A stale ``OPENAI_API_KEY`` in your shell (say, for api.openai.com) wins over the stack's key:
the first stderr line names where each setting came from; pass ``--api-key`` or unset it.

Reasoning arrives in one of three shapes, all handled:

* ``delta.reasoning``: vLLM >= 0.17 with a ``--reasoning-parser`` (docs/reference/vllm-serving.md §1.2, §6 pitfall 5);
* ``delta.reasoning_content``: the old name, from vLLM before 0.17 (0.13 and 0.14 send both names);
* inline in ``delta.content`` as ``<think>...</think>``, from servers without a reasoning parser
  (what the recipe's ``stream_chat.sh`` splits, docs/reference/gcp-a4high.md §5.1). R1's chat
  template may put ``<think>`` into the prompt, so the reply then has only the closing tag
  (the seed's sample response does): text before a lone ``</think>`` is reasoning too.

Reasoning goes to stdout, dimmed on a terminal, under a header; then the answer. The timing
report and all messages go to stderr, so ``--hide-reasoning "..." > answer.txt`` keeps just the
answer. Errors are one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import enum
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

import openai
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam
from openai.types.chat.chat_completion_chunk import ChoiceDelta

PROJECT_DIR = Path(__file__).resolve().parents[1]  # where Pulumi.yaml is: `pulumi` runs there
DEFAULT_BASE_URL = "http://localhost:8000/v1"
DEFAULT_SYSTEM_PROMPT = "You are a helpful AI assistant"  # the seed recipe's curl example
MODEL_ENV = "LLM_SERVING_MODEL"
# The openai client insists on a key; a server started without --api-key ignores this one.
NO_KEY = "EMPTY"
PULUMI_TIMEOUT_S = 60.0

# Stack outputs this tool reads (see the module docstring for why not `openai_base_url`).
STACK_BASE_URL = "local_base_url"
STACK_API_KEY = "api_key"
STACK_MODEL = "served_model_name"


class ChatError(Exception):
    """A failure the user can act on; main() prints it as one line."""


# --------------------------------------------------------------------------------------
# Where the endpoint, key and model come from
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    value: str
    source: str  # shown to the user: "--api-key", "OPENAI_API_KEY", "stack output api_key", ...


@dataclass(frozen=True)
class Endpoint:
    base_url: Setting
    api_key: Setting | None  # None: send no real key
    model: Setting | None  # None: ask the server


StackOutputs = Callable[[], Mapping[str, Any]]
Candidates = Mapping[str, tuple[object, str]]  # setting -> (value or None, where it came from)

SETTINGS = ("base_url", "api_key", "model")
STACK_OUTPUTS = {"base_url": STACK_BASE_URL, "api_key": STACK_API_KEY, "model": STACK_MODEL}


def resolve_endpoint(args: argparse.Namespace, env: Mapping[str, str], stack_outputs: StackOutputs) -> Endpoint:
    """Flags, then the environment, then the stack's outputs: per setting, the first source that has it wins."""
    found: dict[str, Setting] = {}
    _fill(
        found,
        {
            "base_url": (args.base_url, "--base-url"),
            "api_key": (args.api_key, "--api-key"),
            "model": (args.model, "--model"),
        },
    )
    _fill(
        found,
        {
            "base_url": (env.get("OPENAI_BASE_URL"), "OPENAI_BASE_URL"),
            "api_key": (env.get("OPENAI_API_KEY"), "OPENAI_API_KEY"),
            "model": (env.get(MODEL_ENV), MODEL_ENV),
        },
    )
    if len(found) < len(SETTINGS):  # `pulumi` is slow and needs a login: ask it only when it can help
        outputs = stack_outputs()
        _fill(found, {key: (outputs.get(name), f"stack output {name}") for key, name in STACK_OUTPUTS.items()})
    return Endpoint(
        base_url=found.get("base_url", Setting(DEFAULT_BASE_URL, "default")),
        api_key=found.get("api_key"),
        model=found.get("model"),
    )


def _fill(found: dict[str, Setting], candidates: Candidates) -> None:
    """Add the candidates that are non-empty strings, for settings not yet found (earlier sources win)."""
    for key, (value, source) in candidates.items():
        if key not in found and isinstance(value, str) and value.strip():
            found[key] = Setting(value.strip(), source)


def pulumi_stack_outputs(stack: str | None, note: Callable[[str], None]) -> dict[str, Any]:
    """`pulumi stack output --json --show-secrets`, or {} after a one-line note saying why not."""
    command = ["pulumi", "stack", "output", "--json", "--show-secrets", *(["--stack", stack] if stack else [])]
    try:
        done = subprocess.run(
            command, cwd=PROJECT_DIR, capture_output=True, text=True, timeout=PULUMI_TIMEOUT_S, check=False
        )
    except FileNotFoundError:
        note("Pulumi CLI not found; not reading the stack's outputs")
        return {}
    except subprocess.TimeoutExpired:
        note(f"`pulumi stack output` took over {PULUMI_TIMEOUT_S:g} s; not reading the stack's outputs")
        return {}
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit status {done.returncode}"
        note(f"`pulumi stack output` failed ({reason}); not reading the stack's outputs")
        return {}
    try:
        outputs = json.loads(done.stdout)
    except json.JSONDecodeError:
        outputs = None
    if not isinstance(outputs, dict):
        note("`pulumi stack output --json` did not print a JSON object; not reading the stack's outputs")
        return {}
    return outputs


def discover_model(client: openai.OpenAI) -> Setting:
    """The first model the server lists (a vLLM server lists just the one it serves)."""
    for model in client.models.list():
        return Setting(model.id, "GET /models")
    raise ChatError(f"{client.base_url} lists no models; pass --model")


# --------------------------------------------------------------------------------------
# Splitting reasoning from the answer
# --------------------------------------------------------------------------------------


class Kind(enum.Enum):
    REASONING = "reasoning"
    ANSWER = "answer"
    # Untagged content: the answer, unless a lone </think> follows (then it was reasoning).
    UNDECIDED = "undecided"


Segment = tuple[Kind, str]
OPEN_TAG, CLOSE_TAG = "<think>", "</think>"


class _Where(enum.Enum):
    START = enum.auto()  # nothing but whitespace so far
    THINKING = enum.auto()  # after <think>
    UNTAGGED = enum.auto()  # text came first, no <think>
    AFTER = enum.auto()  # after </think>


class ThinkTagSplitter:
    """Splits streamed ``content`` that carries the reasoning inline as ``<think>...</think>``.

    A tag may be cut across chunks ("</th" + "ink>"), so a chunk's tail that could still
    become a tag is held back until the next chunk (or finish()) settles it. The moment the
    closing tag is seen, an empty ANSWER segment marks the switch, even if no answer follows.
    """

    def __init__(self) -> None:
        self._where = _Where.START
        self._held = ""

    def feed(self, text: str) -> list[Segment]:
        buffer, self._held = self._held + text, ""
        segments: list[Segment] = []
        while buffer:
            if self._where is _Where.START:
                stripped = buffer.lstrip()
                if stripped.startswith(OPEN_TAG):
                    self._where, buffer = _Where.THINKING, stripped[len(OPEN_TAG) :]
                elif OPEN_TAG.startswith(stripped):  # whitespace, or the start of "<think>"
                    self._held = buffer
                    return segments
                else:
                    self._where = _Where.UNTAGGED
            elif self._where is _Where.AFTER:
                segments.append((Kind.ANSWER, buffer))
                return segments
            else:
                kind = Kind.REASONING if self._where is _Where.THINKING else Kind.UNDECIDED
                before, tag, after = buffer.partition(CLOSE_TAG)
                if tag:
                    segments += [(kind, before), (Kind.ANSWER, "")]
                    self._where, buffer = _Where.AFTER, after
                else:
                    keep = _tag_prefix_at_end(buffer, CLOSE_TAG)
                    segments.append((kind, buffer[: len(buffer) - keep]))
                    self._held = buffer[len(buffer) - keep :]
                    return segments
        return segments

    def finish(self) -> list[Segment]:
        """What was held back, now known not to be a tag."""
        held, self._held = self._held, ""
        if not held:
            return []
        kind = {_Where.THINKING: Kind.REASONING, _Where.AFTER: Kind.ANSWER}.get(self._where, Kind.UNDECIDED)
        return [(kind, held)]


def _tag_prefix_at_end(text: str, tag: str) -> int:
    """Length of the longest proper prefix of ``tag`` that ``text`` ends with."""
    for length in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:length]):
            return length
    return 0


# --------------------------------------------------------------------------------------
# Showing the stream
# --------------------------------------------------------------------------------------

DIM, RESET = "\x1b[2m", "\x1b[0m"


@dataclass
class Transcript:
    """Prints segments as they arrive and keeps the final reasoning and answer.

    Untagged text (Kind.UNDECIDED) is printed plainly as it comes, since it is usually the
    answer; with ``hide_reasoning`` it is held until we know, so hidden thoughts never show.
    Headers are printed only when reasoning is shown: that is when there is something to tell apart.
    """

    out: TextIO
    hide_reasoning: bool = False
    color: bool = False
    reasoning: str = ""
    answer: str = ""
    _undecided: str = field(default="", init=False)
    _section: Kind | None = field(default=None, init=False)  # the section whose header was printed last
    _last: str = field(default="", init=False)  # the last text written, to place line breaks

    def add(self, kind: Kind, text: str) -> None:
        if kind is Kind.UNDECIDED:
            self._undecided += text
            if not self.hide_reasoning:
                self._write(text if self._last else text.lstrip())
        elif kind is Kind.REASONING:
            self.reasoning += text
            if not self.hide_reasoning:
                self._show(kind, text)
        else:
            if self._undecided:  # a lone </think> came: the untagged text was reasoning
                self.reasoning, self._undecided = self.reasoning + self._undecided, ""
            self.answer += text
            self._show(kind, text)

    def finish(self) -> None:
        if self._undecided:  # no </think> ever came: the untagged text was the answer
            self.answer, self._undecided = self.answer + self._undecided, ""
            if self.hide_reasoning:
                self._write(self.answer.lstrip())
        self.end_line()

    def end_line(self) -> None:
        """Leave the terminal at the start of a line (also before an error message)."""
        if self._last and not self._last.endswith("\n"):
            self._write("\n")

    def _show(self, kind: Kind, text: str) -> None:
        if self._section is not kind:
            text = text.lstrip()  # the model's newlines after a tag; the header separates now
            if not text:
                return
            self._section = kind
            if not self.hide_reasoning:
                if self._last:  # end the previous line, then one blank line
                    self._write("\n" if self._last.endswith("\n") else "\n\n")
                self._write(f"--- {kind.value} ---\n", dim=True)
        self._write(text, dim=kind is Kind.REASONING)

    def _write(self, text: str, *, dim: bool = False) -> None:
        if text:
            self.out.write(f"{DIM}{text}{RESET}" if dim and self.color else text)
            self.out.flush()
            self._last = text


# --------------------------------------------------------------------------------------
# The request
# --------------------------------------------------------------------------------------

# vLLM 0.13/0.14 send both names with the same text; 0.17+ only the first (vllm-serving.md §1.2).
REASONING_FIELDS = ("reasoning", "reasoning_content")


def reasoning_text(delta: ChoiceDelta) -> str | None:
    """The delta's reasoning field, by either name; the client's typed delta knows neither, so they are extras."""
    extra: Mapping[str, Any] = delta.model_extra or {}
    for name in REASONING_FIELDS:
        text = extra.get(name)
        if isinstance(text, str) and text:
            return text  # 0.13/0.14 send the same text under both names: take it once
    return None


class DeltaReader:
    """Turns chunk deltas into segments, whichever of the three reasoning shapes the server uses."""

    def __init__(self) -> None:
        self._splitter = ThinkTagSplitter()
        self._server_splits = False  # a reasoning field was seen: content is all answer

    def read(self, delta: ChoiceDelta) -> list[Segment]:
        segments: list[Segment] = []
        reasoning = reasoning_text(delta)
        if reasoning:
            segments.append((Kind.REASONING, reasoning))
            self._server_splits = True
        if delta.content:
            content = delta.content
            segments += [(Kind.ANSWER, content)] if self._server_splits else self._splitter.feed(content)
        return segments

    def finish(self) -> list[Segment]:
        return self._splitter.finish()


@dataclass
class Outcome:
    """Timings (perf_counter seconds) and token counts of one streamed request."""

    started: float
    first_token: float | None = None  # first reasoning or answer text
    finished: float | None = None
    usage_tokens: int | None = None  # completion_tokens of the final usage chunk, if sent
    text_chunks: int = 0  # chunks that carried text: the token count when usage is missing
    finish_reason: str | None = None

    @property
    def completion_tokens(self) -> int:
        return self.usage_tokens if self.usage_tokens is not None else self.text_chunks


@dataclass(frozen=True)
class Request:
    model: str
    question: str
    system: str
    temperature: float
    top_p: float
    max_tokens: int

    @property
    def messages(self) -> list[ChatCompletionMessageParam]:
        system: list[ChatCompletionMessageParam] = [{"role": "system", "content": self.system}] if self.system else []
        return [*system, {"role": "user", "content": self.question}]


def stream_chat(
    client: openai.OpenAI, request: Request, transcript: Transcript, clock: Callable[[], float] = time.perf_counter
) -> Outcome:
    """Send the request, show the stream as it arrives, and time it."""
    outcome = Outcome(started=clock())
    reader = DeltaReader()
    stream = client.chat.completions.create(
        model=request.model,
        messages=request.messages,
        temperature=request.temperature,
        top_p=request.top_p,
        max_tokens=request.max_tokens,
        stream=True,
        # The last chunk then carries `usage` (choices empty): exact token counts.
        stream_options={"include_usage": True},
    )
    with stream:  # closes the connection on an error or Ctrl-C mid-stream
        for chunk in stream:
            _record(chunk, outcome, clock)
            for choice in chunk.choices[:1]:
                for kind, text in reader.read(choice.delta):
                    transcript.add(kind, text)
    for kind, text in reader.finish():
        transcript.add(kind, text)
    transcript.finish()
    outcome.finished = clock()
    return outcome


def _record(chunk: ChatCompletionChunk, outcome: Outcome, clock: Callable[[], float]) -> None:
    if chunk.usage is not None:
        outcome.usage_tokens = chunk.usage.completion_tokens
    for choice in chunk.choices[:1]:
        if choice.delta.content or reasoning_text(choice.delta):
            outcome.text_chunks += 1
            if outcome.first_token is None:
                outcome.first_token = clock()
        if choice.finish_reason:
            outcome.finish_reason = choice.finish_reason


def timing_report(outcome: Outcome, max_tokens: int) -> list[str]:
    """The lines printed after the answer: TTFT, total time, tokens and tokens per second."""
    finished = outcome.finished if outcome.finished is not None else outcome.started
    total = finished - outcome.started
    if outcome.first_token is None:
        return [f"total time            {total:.2f} s", "the server sent no tokens"]
    tokens = outcome.completion_tokens
    counted = (
        f"{tokens}" if outcome.usage_tokens is not None else f"~{tokens} (counted chunks: no usage from the server)"
    )
    lines = [
        f"time to first token   {outcome.first_token - outcome.started:.2f} s",
        f"total time            {total:.2f} s",
        f"completion tokens     {counted}",
    ]
    decode = finished - outcome.first_token
    if tokens > 1 and decode > 0 and total > 0:
        # Like TPOT, the decode rate leaves out the first token (its time is the TTFT).
        lines.append(
            f"tokens per second     {(tokens - 1) / decode:.1f} after the first token ({tokens / total:.1f} overall)"
        )
    if outcome.finish_reason == "length":
        lines.append(f"note: cut off at --max-tokens {max_tokens} (finish_reason length)")
    return lines


# --------------------------------------------------------------------------------------
# Errors as one line
# --------------------------------------------------------------------------------------


def describe(err: openai.APIError, base_url: str, timeout: float) -> str:
    """One line that says what went wrong and what to try."""
    if isinstance(err, openai.APITimeoutError):
        return f"no response from {base_url} within {timeout:g} s (raise --timeout if the server is busy)"
    if isinstance(err, openai.APIConnectionError):
        cause = f": {err.__cause__}" if err.__cause__ else ""
        hint = " (is `kubectl port-forward` running?)" if _is_local(base_url) else ""
        return f"cannot reach {base_url}{cause}{hint}"
    message = _server_message(err.body) or err.message
    if isinstance(err, openai.AuthenticationError):
        return f"HTTP 401 from {base_url}: {message} (wrong key? check --api-key, OPENAI_API_KEY, the stack's api_key)"
    if isinstance(err, openai.NotFoundError):
        return f"HTTP 404 from {base_url}: {message} (wrong --model or base URL?)"
    if isinstance(err, openai.APIStatusError):
        return f"HTTP {err.status_code} from {base_url}: {message}"
    return f"error from {base_url}: {message}"  # e.g. an error event in the middle of the stream


def _server_message(body: object) -> str | None:
    """The human part of an error body, on one line.

    The client hands over the body's "error" member when there is one: vLLM's key gate sends
    {"error": "Unauthorized"}, its other errors {"error": {"message": ...}}; FastAPI sends {"detail": ...}.
    """
    if isinstance(body, dict):
        body = body.get("message") or body.get("detail")
    if isinstance(body, str) and body.strip():
        return " ".join(body.split())
    return None


def _is_local(url: str) -> bool:
    return urlsplit(url).hostname in {"localhost", "127.0.0.1", "::1"}


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="chat.py",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog=f"Settings come from flags, then OPENAI_BASE_URL / OPENAI_API_KEY / {MODEL_ENV}, then "
        f"`pulumi stack output` ({STACK_API_KEY}, {STACK_MODEL}, {STACK_BASE_URL}; never the in-cluster "
        f"openai_base_url), then defaults: {DEFAULT_BASE_URL}, no key, the server's first model.",
    )
    parser.add_argument("question", help="what to ask")
    parser.add_argument("--base-url", help=f"OpenAI-compatible base URL ending in /v1 (default {DEFAULT_BASE_URL})")
    parser.add_argument("--api-key", help="bearer token: vLLM --api-key (default: the stack's api_key, or none)")
    parser.add_argument("--model", help="served model name (default: the stack's, else the server's first)")
    parser.add_argument("--stack", help="Pulumi stack to read outputs from (default: the selected stack)")
    parser.add_argument("--system", default=DEFAULT_SYSTEM_PROMPT, help="system prompt; '' sends none")
    parser.add_argument("--temperature", type=float, default=0.6, help="default 0.6, as in the seed recipe")
    parser.add_argument("--top-p", type=float, default=0.95, help="default 0.95, as in the seed recipe")
    parser.add_argument("--max-tokens", type=int, default=4096, help="reasoning counts too (default 4096)")
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait to connect and for each chunk (default 120)"
    )
    parser.add_argument("--hide-reasoning", action="store_true", help="print only the answer")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    color = sys.stdout.isatty() and "NO_COLOR" not in os.environ  # https://no-color.org
    transcript = Transcript(sys.stdout, hide_reasoning=args.hide_reasoning, color=color)
    try:
        return _chat(args, transcript)
    except KeyboardInterrupt:
        return _fail("interrupted", transcript, status=130)


def _chat(args: argparse.Namespace, transcript: Transcript) -> int:
    endpoint = resolve_endpoint(args, os.environ, lambda: pulumi_stack_outputs(args.stack, _note))
    base_url = endpoint.base_url.value
    client = openai.OpenAI(
        base_url=base_url,
        api_key=endpoint.api_key.value if endpoint.api_key else NO_KEY,
        timeout=args.timeout,
        max_retries=0,  # fail fast: retrying a long generation, or a refused connection, only hides the problem
    )
    try:
        model = endpoint.model or discover_model(client)
        _note(_origins(endpoint, model))
        request = Request(model.value, args.question, args.system, args.temperature, args.top_p, args.max_tokens)
        outcome = stream_chat(client, request, transcript)
    except openai.APIError as error:
        return _fail(describe(error, base_url, args.timeout), transcript)
    except ChatError as error:
        return _fail(str(error), transcript)
    print("", *timing_report(outcome, args.max_tokens), sep="\n", file=sys.stderr)
    return 0


def _note(message: str) -> None:
    print(f"chat: {message}", file=sys.stderr, flush=True)


def _origins(endpoint: Endpoint, model: Setting) -> str:
    key = f"key from {endpoint.api_key.source}" if endpoint.api_key else "no API key"
    return f"{model.value} ({model.source}) at {endpoint.base_url.value} ({endpoint.base_url.source}), {key}"


def _fail(message: str, transcript: Transcript, status: int = 1) -> int:
    transcript.end_line()
    print(f"error: {message}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
