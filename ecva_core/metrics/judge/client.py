"""One async OpenAI-compatible chat client for the judges: bounded, retrying, accounted.

Works with hosted APIs, vLLM, SGLang and Ollama through ``base_url``. The openai package's own
retries are switched off so that this module decides: exponential backoff with jitter on 429
(honouring ``Retry-After``, also on 503), 408/409, 5xx, timeouts and connection errors, up to
``settings.judge_max_retries`` retries; any other 4xx fails at once. The API key only ever travels
in the ``Authorization`` header and is scrubbed from every reason this module produces.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

from ecva_core.config import Settings

log = logging.getLogger(__name__)

_RETRY_STATUSES = frozenset({408, 409, 429})
_NO_KEY = "no-key"
# httpx's connection pool scans all of its connections for every request it places, so one pool
# with hundreds of connections spends more CPU on that scan than on the exchange; calls are
# spread over several clients with at most this many calls in flight each.
_SHARD_SIZE = 2


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff schedule: ``base_s * 2**attempt`` capped at ``max_s``, times a jitter in [0.5, 1.5)."""

    base_s: float = 0.5
    max_s: float = 30.0
    max_retry_after_s: float = 120.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None and retry_after > 0:
            return min(retry_after, self.max_retry_after_s)
        return min(self.max_s, self.base_s * 2**attempt) * (0.5 + random.random())


@dataclass(frozen=True)
class Completion:
    """A judge reply with its token usage and the HTTP attempts it took."""

    text: str | None
    tokens_in: int
    tokens_out: int
    attempts: int


class JudgeCallError(Exception):
    """A call that failed for good (after retries, or at once for a non-retryable status)."""

    def __init__(self, reason: str, attempts: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts


@dataclass
class _Usage:
    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    retries: int = 0
    statuses: dict[str, int] = field(default_factory=dict)


class JudgeClient:
    """Async chat completions against ``settings.judge_endpoint`` with ``settings.judge_model``."""

    def __init__(self, settings: Settings, retry: RetryPolicy | None = None) -> None:
        from openai import AsyncOpenAI, DefaultAsyncHttpxClient

        self.settings = settings
        self.retry = retry or RetryPolicy()
        self.usage = _Usage()
        self._secret = settings.judge_api_key or ""
        concurrency = max(1, settings.judge_concurrency)
        tls = _tls_context()  # built once: loading the CA bundle per client costs ~40 ms each
        shards = [
            AsyncOpenAI(
                api_key=settings.judge_api_key or _NO_KEY,
                base_url=settings.judge_endpoint,
                timeout=settings.judge_timeout_s,
                max_retries=0,
                http_client=DefaultAsyncHttpxClient(verify=tls, timeout=settings.judge_timeout_s),
            )
            for _ in range(-(-concurrency // _SHARD_SIZE))
        ]
        self._shards = shards
        # One token per concurrent call; a token names the shard (client) the call uses, so no
        # shard ever has more than _SHARD_SIZE calls in flight.
        self._tokens: asyncio.Queue[Any] = asyncio.Queue()
        for slot in range(concurrency):
            self._tokens.put_nowait(shards[slot % len(shards)])
        self._json_mode = True
        self._fatal: str | None = None

    async def aclose(self) -> None:
        for shard in self._shards:
            await shard.close()

    async def complete(self, messages: list[dict[str, str]]) -> Completion:
        """One chat completion at temperature 0, retried as the module docstring says."""
        shard = await self._tokens.get()
        try:
            return await self._complete(shard, messages)
        finally:
            self._tokens.put_nowait(shard)

    async def _complete(self, shard: Any, messages: list[dict[str, str]]) -> Completion:
        import openai

        attempts = 0
        while True:
            if self._fatal is not None:
                raise JudgeCallError(self._fatal, attempts)
            attempts += 1
            self.usage.calls += 1
            json_mode = self._json_mode
            body: dict[str, Any] = {"model": self.settings.judge_model, "messages": messages, "temperature": 0}
            if json_mode:
                body["response_format"] = {"type": "json_object"}
            try:
                # The client's generic POST (its documented way to call any endpoint) sends the body
                # as is; the typed ``chat.completions.create`` re-walks every message through its
                # type transforms, about a fifth of the client's CPU per call (measured, profiler).
                reply = await shard.post("/chat/completions", cast_to=dict, body=body)
            except openai.APIStatusError as exc:
                status = exc.status_code
                self._count(str(status))
                if json_mode and status in (400, 422) and _mentions_response_format(exc):
                    log.info("judge endpoint rejects response_format; continuing without JSON mode")
                    self._json_mode = False
                    attempts -= 1
                    continue
                reason = f"HTTP {status} from the judge endpoint: {self._scrub(_message(exc))}"
                if status in (401, 403):
                    self._fatal = reason + " (check ECVA_JUDGE_API_KEY / ECVA_JUDGE_BASE_URL)"
                    raise JudgeCallError(self._fatal, attempts) from None
                if status not in _RETRY_STATUSES and status < 500:
                    raise JudgeCallError(reason, attempts) from None
                retry_after = _retry_after(exc.response.headers) if status in (429, 503) else None
                await self._backoff(attempts, reason, retry_after)
            except openai.APITimeoutError:
                self._count("timeout")
                reason = f"timed out after {self.settings.judge_timeout_s:g} s"
                await self._backoff(attempts, reason, None, unreachable=True)
            except openai.APIConnectionError as exc:
                self._count("connection")
                reason = f"connection error: {self._scrub(str(exc))}"
                await self._backoff(attempts, reason, None, unreachable=True)
            except (openai.APIResponseValidationError, ValueError) as exc:
                self._count("malformed")
                raise JudgeCallError(
                    f"malformed response from the judge endpoint: {self._scrub(str(exc))[:200]}", attempts
                ) from None
            else:
                completion = self._completion(reply, attempts)
                self._count("ok")
                return completion

    def _completion(self, reply: Any, attempts: int) -> Completion:
        try:
            content = reply["choices"][0]["message"]["content"]
            usage = reply.get("usage") or {}
            tokens_in = int(usage.get("prompt_tokens") or 0)
            tokens_out = int(usage.get("completion_tokens") or 0)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            self._count("malformed")
            raise JudgeCallError(
                f"malformed response from the judge endpoint: no chat completion in {self._scrub(repr(reply))[:200]}",
                attempts,
            ) from None
        if content is not None and not isinstance(content, str):
            content = json.dumps(content)
        self.usage.tokens_in += tokens_in
        self.usage.tokens_out += tokens_out
        return Completion(content, tokens_in, tokens_out, attempts)

    async def _backoff(self, attempts: int, reason: str, retry_after: float | None, unreachable: bool = False) -> None:
        if attempts > self.settings.judge_max_retries:
            reason = f"{reason} (gave up after {attempts} attempts)"
            if unreachable and not self.usage.statuses.get("ok"):
                # Not one call has worked: the endpoint is down or wrong, and every other request
                # would only repeat the same wait; they fail at once with this reason instead.
                self._fatal = f"judge endpoint unusable: {reason}; nothing was sent after this failure"
            raise JudgeCallError(reason, attempts)
        self.usage.retries += 1
        delay = self.retry.delay(attempts - 1, retry_after)
        log.debug("judge call failed (%s); retry %d in %.3f s", reason, attempts, delay)
        await asyncio.sleep(delay)

    def _count(self, key: str) -> None:
        self.usage.statuses[key] = self.usage.statuses.get(key, 0) + 1

    def _scrub(self, text: str) -> str:
        return text.replace(self._secret, "[redacted]") if self._secret else text


def _tls_context() -> ssl.SSLContext:
    """The CA bundle the openai package itself trusts (certifi's), else the system's."""
    try:
        import certifi
    except ImportError:
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())


def _message(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        detail = body.get("error", body)
        text = detail.get("message") if isinstance(detail, dict) else detail
        if text:
            return str(text)[:300]
    return str(getattr(exc, "message", exc))[:300]


def _mentions_response_format(exc: Exception) -> bool:
    text = f"{_message(exc)} {getattr(exc, 'body', '')}".lower()
    return "response_format" in text or "json_object" in text or "response format" in text


def _retry_after(headers: Any) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return float(millis) / 1000.0
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
