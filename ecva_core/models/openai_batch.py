"""Many chat completions at once against an OpenAI-compatible server, for batch inference.

One event loop posts every request of a batch with at most ``concurrency`` in flight over one
keep-alive aiohttp pool, retrying 408/409/429/5xx, timeouts and connection errors with
exponential backoff and jitter (``Retry-After`` honoured). aiohttp rather than the openai SDK:
the SDK's per-call CPU (httpx, response models, a thread per request) held a 2-core machine to
~180 requests/s against a loopback server where aiohttp reaches ~500 (benchmarks/bench_infer.py).
Each request's outcome is its answer text or the exception that ended it; one failure never
fails the others. The API key travels only in the ``Authorization`` header.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ecva_core.errors import ModelLoadError

_RETRY_STATUSES = frozenset({408, 409, 429})


@dataclass(frozen=True)
class BatchEndpoint:
    """Where and how to post: ``base_url`` ends in ``/v1``."""

    base_url: str
    api_key: str
    model: str
    concurrency: int = 32
    timeout_s: float = 120.0
    max_retries: int = 5
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0


class BatchPoster:
    """Posts batches from any thread through one event loop (a daemon thread) and one connection pool.

    Batches posted at the same time share the ``concurrency`` slots, so a caller can send the
    next batch while the last one finishes and the server never sees the slots drain; keep-alive
    connections are reused from batch to batch. The loop and pool close when the poster is
    collected or the interpreter exits.
    """

    def __init__(self, endpoint: BatchEndpoint) -> None:
        self.endpoint = endpoint
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: Any = None
        self._slots: asyncio.Semaphore | None = None

    def post_all(self, bodies: Sequence[bytes]) -> list[str | Exception]:
        """Post every JSON body to ``/chat/completions``; each outcome in order."""
        if not bodies:
            return []
        return asyncio.run_coroutine_threadsafe(self._post_all(bodies), self._running_loop()).result()

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="openai-batch-loop", daemon=True).start()
                self._loop = loop
                weakref.finalize(self, _shutdown, loop, self._close_session)
            return self._loop

    async def _close_session(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _post_all(self, bodies: Sequence[bytes]) -> list[str | Exception]:
        import aiohttp

        if self._session is None:
            limit = max(1, self.endpoint.concurrency)
            self._slots = asyncio.Semaphore(limit)
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=limit),
                headers={"Authorization": f"Bearer {self.endpoint.api_key}", "Content-Type": "application/json"},
                timeout=aiohttp.ClientTimeout(total=self.endpoint.timeout_s),
            )
        slots = self._slots
        assert slots is not None

        async def one(body: bytes) -> str | Exception:
            async with slots:
                try:
                    return await _post_one(self._session, self.endpoint, body)
                except Exception as exc:
                    return exc

        return list(await asyncio.gather(*(one(body) for body in bodies)))


def _shutdown(loop: asyncio.AbstractEventLoop, close: Any) -> None:
    """Close the pool and stop the loop (runs once, when the poster goes away)."""
    if loop.is_running():
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close(), loop).result(timeout=5)
        loop.call_soon_threadsafe(loop.stop)


async def _post_one(session: Any, endpoint: BatchEndpoint, body: bytes) -> str:
    import aiohttp

    url = endpoint.base_url.rstrip("/") + "/chat/completions"
    where = f"the chat server at {endpoint.base_url}"
    attempt = 0
    while True:
        retry_after: float | None = None
        try:
            async with session.post(url, data=body) as response:
                raw = await response.read()
                status = response.status
                if status in (429, 503):
                    retry_after = _seconds(response.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError) as exc:
            reason = f"cannot reach {where}: {type(exc).__name__}: {exc}"
        else:
            if 200 <= status < 300:
                return _content(raw, where)
            reason = f"{where} answered {status} for model {endpoint.model!r}: {_message(raw)}"
            if status in (401, 403):
                raise ModelLoadError(f"{reason} (check OPENAI_API_KEY / ECVA_CHAT_API_KEY)")
            if status not in _RETRY_STATUSES and status < 500:
                raise ModelLoadError(reason)
        if attempt >= endpoint.max_retries:
            raise ModelLoadError(f"{reason} (gave up after {attempt + 1} attempts)")
        delay = min(endpoint.backoff_max_s, endpoint.backoff_base_s * 2**attempt) * (0.5 + random.random())
        await asyncio.sleep(retry_after if retry_after is not None else delay)
        attempt += 1


def _content(raw: bytes, where: str) -> str:
    import orjson

    try:
        reply = orjson.loads(raw)
        content = reply["choices"][0]["message"]["content"]
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError) as exc:
        raise ModelLoadError(f"{where} sent a reply that is not a chat completion ({type(exc).__name__})") from None
    return content if isinstance(content, str) else ""


def _message(raw: bytes) -> str:
    import orjson

    try:
        error = orjson.loads(raw).get("error")
        text = error.get("message") if isinstance(error, dict) else error
        return str(text or raw[:200].decode("utf-8", "replace"))
    except (orjson.JSONDecodeError, AttributeError):
        return raw[:200].decode("utf-8", "replace")


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
