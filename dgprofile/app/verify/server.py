"""Any OpenAI-compatible server (vLLM, SGLang, llama.cpp's server, mlx-lm, Ollama, `transformers serve`): stream
chat completions with the openai client and time every chunk, at 1, 2, 4 and 8 concurrent streams.

Each chunk is what the user sees arrive: for DiffusionGemma a committed canvas (servers stream no drafts), for
Gemma 4 a token or a few. A request that fails keeps its fault: the server unreachable, an HTTP error status, a
timeout, a stream cut before its end (no ``finish_reason``), or a chunk that is not what the protocol says.
Requests of one level run together; a Ctrl-C or SIGTERM cancels those in flight and keeps those that finished.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dgprofile.probes.verify.trace import GenerationTrace, Snapshot
from dgprofile.records.values import Unavailable
from dgprofile.records.verification import FaultKind, ModelRole, RequestFault

Progress = Callable[[str], None]
DEFAULT_TIMEOUT_SECONDS = 300.0
CANVAS_USAGE = Unavailable("the server's streamed usage counts canvases, not tokens (as `transformers serve` does)")
NO_USAGE = Unavailable("the server reported no token usage")
NOT_REPORTED = Unavailable("the server reported no prompt length")


@dataclass(frozen=True)
class ServerTarget:
    """One model behind one server: the base URL (with or without /v1) and the name it serves the model under."""

    role: ModelRole
    url: str
    served_model: str

    @property
    def api_base(self) -> str:
        """The OpenAI API's base URL."""
        base = self.url.rstrip("/")
        return base if base.endswith("/v1") else base + "/v1"

    @property
    def root(self) -> str:
        """The server's root URL (where vLLM answers /version)."""
        return self.api_base.removesuffix("/v1")


def server_version(target: ServerTarget, *, timeout_seconds: float = 5.0) -> str | Unavailable:
    """The version the server reports at /version (vLLM does), or why there is none."""
    import httpx

    try:
        response = httpx.get(target.root + "/version", timeout=timeout_seconds)
    except httpx.HTTPError as exc:
        return Unavailable(f"the server did not answer /version ({type(exc).__name__})")
    if response.status_code != 200:
        return Unavailable(f"the server reports no version (/version answered {response.status_code})")
    try:
        version = response.json().get("version")
    except ValueError:
        return Unavailable("the server's /version is not JSON")
    return f"vllm {version}" if isinstance(version, str) else Unavailable("the server's /version has no version")


def _fault(exc: BaseException, received_any: bool) -> RequestFault:
    import httpx
    import openai

    kind: FaultKind
    if isinstance(exc, openai.APITimeoutError):
        kind = "timeout"
    elif isinstance(exc, openai.APIConnectionError):
        kind = "stream-cut" if received_any else "unreachable"
    elif isinstance(exc, openai.APIStatusError):
        kind = "http-error"
        return RequestFault(kind, f"HTTP {exc.status_code}: {str(exc.message)[:200]}")
    elif isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)):
        kind = "stream-cut"
    elif isinstance(exc, httpx.TimeoutException):
        kind = "timeout"
    elif isinstance(exc, (ValueError, KeyError, TypeError, IndexError, openai.APIError)):
        kind = "malformed-chunk"
    else:
        kind = "error"
    return RequestFault(kind, f"{type(exc).__name__}: {str(exc)[:200]}")


async def stream_one(client: Any, target: ServerTarget, prompt: str, max_tokens: int) -> GenerationTrace:
    """One streamed chat completion, timed chunk by chunk from the moment it is sent."""
    started = time.perf_counter()
    snapshots: list[Snapshot] = []
    text = ""
    chunks = 0
    usage: Any = None
    finished = False
    try:
        stream = await client.chat.completions.create(
            model=target.served_model, messages=[{"role": "user", "content": prompt}], max_tokens=max_tokens,
            stream=True, stream_options={"include_usage": True}, temperature=0.0)
        async for chunk in stream:
            if chunk.usage is not None:
                usage = chunk.usage
            for choice in chunk.choices:
                content = choice.delta.content if choice.delta is not None else None
                if content:
                    chunks += 1
                    text += content
                    snapshots.append(Snapshot(time.perf_counter() - started,
                                              "commit" if target.role == "diffusion" else "token", chunks, text))
                if choice.finish_reason is not None:
                    finished = True
        total = time.perf_counter() - started
    except Exception as exc:  # every failure becomes the request's fault; the run goes on
        return _trace(target, snapshots, text, Unavailable("the request failed"), NO_USAGE, chunks,
                      (_fault(exc, bool(snapshots)),))
    if not finished:
        return _trace(target, snapshots, text, total, NO_USAGE, chunks,
                      (RequestFault("stream-cut", "the stream ended without a finish_reason"),))
    return _trace(target, snapshots, text, total, _output_tokens(target, usage, chunks), chunks, (),
                  _prompt_tokens(usage))


def _output_tokens(target: ServerTarget, usage: Any, chunks: int) -> int | Unavailable:
    if usage is None or not isinstance(getattr(usage, "completion_tokens", None), int):
        return NO_USAGE
    tokens: int = usage.completion_tokens
    if target.role == "diffusion" and tokens == chunks:  # one "token" per streamed canvas: it counted canvases
        return CANVAS_USAGE
    return tokens


def _prompt_tokens(usage: Any) -> int | Unavailable:
    tokens = getattr(usage, "prompt_tokens", None)
    return tokens if isinstance(tokens, int) else NOT_REPORTED


def _trace(target: ServerTarget, snapshots: list[Snapshot], text: str, total: float | Unavailable,
           tokens: int | Unavailable, chunks: int, faults: tuple[RequestFault, ...],
           prompt_tokens: int | Unavailable = NOT_REPORTED) -> GenerationTrace:
    times = [s.seconds for s in snapshots]
    intervals = tuple(b - a for a, b in zip(times, times[1:], strict=False))
    per_chunk = ("autoregressive: no denoise passes" if target.role == "autoregressive"
                 else "a server streams committed canvases, not denoise passes")
    return GenerationTrace(
        prompt_tokens=prompt_tokens, output_tokens=tokens, output_text=text if not faults else Unavailable(
            "the request failed"), total_seconds=total,
        snapshots=tuple(snapshots), pass_seconds=intervals if target.role == "autoregressive" else (),
        denoise_passes=Unavailable(per_chunk), canvases=chunks if target.role == "diffusion" else Unavailable(
            per_chunk), tokens_per_forward=1.0 if target.role == "autoregressive" else Unavailable(per_chunk),
        peak_memory_bytes=Unavailable("the server's memory is not visible to the client"), faults=faults)


async def run_level(target: ServerTarget, prompts: list[tuple[str, int]], concurrency: int, *,
                    timeout_seconds: float, on_done: Callable[[int, GenerationTrace], None]) -> None:
    """Every prompt as ``concurrency`` identical streams sent together; ``on_done(prompt index, trace)`` as each
    finishes, so an interruption keeps the ones that did."""
    import openai

    client = openai.AsyncOpenAI(base_url=target.api_base, api_key="not-needed", timeout=timeout_seconds,
                                max_retries=0)
    try:
        for index, (prompt, max_tokens) in enumerate(prompts):
            async def one(position: int = index, text: str = prompt, budget: int = max_tokens) -> None:
                on_done(position, await stream_one(client, target, text, budget))

            await asyncio.gather(*(one() for _ in range(concurrency)))
    finally:
        await client.close()
