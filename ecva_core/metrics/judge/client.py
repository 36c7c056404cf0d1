"""One async OpenAI-compatible chat client for the judges: bounded, retrying, accounted.

Works with hosted APIs, vLLM, SGLang and Ollama through ``base_url``: each call is a plain
``POST {base_url}/chat/completions`` with a JSON body, the route every OpenAI-compatible server
serves. It goes through aiohttp rather than the openai SDK: the SDK (over httpx) spends about
1.2-1.5 ms of CPU per call, aiohttp about a fifth of that, and at hundreds of calls per second
that CPU, not the endpoint, was the limit (measured: benchmarks/bench_judge.py).

This module decides every retry: exponential backoff with jitter on 429 (honouring
``Retry-After``, also on 503), 408/409, 5xx, timeouts and connection errors, up to
``settings.judge_max_retries`` retries; any other 4xx fails at once. The API key only ever travels
in the ``Authorization`` header and is scrubbed from every reason this module produces.

Before the first call a client opens one TCP connection to the endpoint (or its proxy): a DNS
failure, a refused connection or no answer within ``JUDGE_CONNECT_TIMEOUT_S`` makes the endpoint
"judge unreachable" for the whole run, at once, instead of every call retrying into the same wall.
A slow verdict (DNS failure, no answer) is remembered for ``UNREACHABLE_MEMO_S`` so the next run
(the scoring pipeline's next batch, the chat app's next "Score it") does not wait again.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson

from ecva_core.config import JUDGE_CONNECT_TIMEOUT_S, Settings

log = logging.getLogger(__name__)

_RETRY_STATUSES = frozenset({408, 409, 429})
_NO_KEY = "no-key"
UNREACHABLE_MEMO_S = 30.0
_UNREACHABLE: dict[tuple[str, int], tuple[float, str]] = {}  # (host, port) -> (when found, reason)


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


@dataclass(frozen=True)
class _Reply:
    """One HTTP exchange as this module needs it: status, the retry headers, the raw body."""

    status: int
    body: bytes
    retry_after: float | None


class JudgeClient:
    """Async chat completions against ``settings.judge_endpoint`` with ``settings.judge_model``.

    At most ``settings.judge_concurrency`` calls are in flight; they share one keep-alive
    connection pool of that size. The HTTP session is opened on the first call, inside the
    event loop that makes the calls.
    """

    def __init__(self, settings: Settings, retry: RetryPolicy | None = None) -> None:
        self.settings = settings
        self.retry = retry or RetryPolicy()
        self.usage = _Usage()
        self._secret = settings.judge_key or ""
        self._url = settings.judge_endpoint.rstrip("/") + "/chat/completions"
        self._concurrency = max(1, settings.judge_concurrency)
        self._slots = asyncio.Semaphore(self._concurrency)
        self._session: Any = None
        self._json_mode = True
        self._fatal: str | None = None
        self._reachability_checked = False
        self._unreachable: str | None = None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def unreachable_reason(self) -> str | None:
        """Why the endpoint cannot be reached ("judge unreachable: ..."), or None; checked once per client."""
        if not self._reachability_checked:
            self._reachability_checked = True
            self._unreachable = await self._check_reachable()
            self._fatal = self._unreachable or self._fatal
        return self._unreachable

    async def _check_reachable(self) -> str | None:
        proxy, _ = _env_proxy(self._url)
        parts = urlsplit(proxy or self._url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        remembered = _UNREACHABLE.get((host, port))
        if remembered is not None and time.monotonic() - remembered[0] < UNREACHABLE_MEMO_S:
            return remembered[1]
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), JUDGE_CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            if isinstance(exc, socket.gaierror):
                why = f"DNS lookup of {host} failed ({exc.strerror or exc})"
            elif isinstance(exc, ConnectionRefusedError):
                why = f"{host}:{port} refused the connection"
            elif isinstance(exc, TimeoutError):
                why = f"no connection to {host}:{port} within {JUDGE_CONNECT_TIMEOUT_S:g} s"
            else:
                why = f"cannot connect to {host}:{port} ({_describe(exc)})"
            via = " through the proxy" if proxy else ""
            reason = (
                f"judge unreachable{via}: {why}; no judge calls were made. Check ECVA_JUDGE_BASE_URL "
                "(unset it and ECVA_JUDGE_API_KEY to score with text metrics only)"
            )
            if not isinstance(exc, ConnectionRefusedError):  # a refusal is found again at once; no need to remember
                _UNREACHABLE[(host, port)] = (time.monotonic(), reason)
            return reason
        writer.close()
        _UNREACHABLE.pop((host, port), None)
        return None

    async def complete(self, messages: list[dict[str, str]], json_reply: bool = True) -> Completion:
        """One chat completion at temperature 0, retried as the module docstring says; ``json_reply``
        False sends no JSON mode (the official prompts ask for a ``Score: N`` line, not JSON)."""
        async with self._slots:
            return await self._complete(messages, json_reply)

    def _open(self) -> Any:
        import aiohttp

        if self._session is None:
            tls: ssl.SSLContext | bool = _tls_context() if self._url.startswith("https:") else True
            proxy, proxy_auth = _env_proxy(self._url)
            # No trust_env: aiohttp would then re-read the proxy settings and ~/.netrc in a worker
            # thread on every request (two thread hops per call); the proxy is resolved once
            # instead, and the key in the Authorization header is the only credential sent.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._concurrency, ssl=tls),
                timeout=aiohttp.ClientTimeout(total=self.settings.judge_timeout_s),
                headers={
                    "Authorization": f"Bearer {self.settings.judge_key or _NO_KEY}",
                    "Content-Type": "application/json",
                    "Accept": "application/json",
                },
                proxy=proxy,
                proxy_auth=proxy_auth,
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def _post(self, body: dict[str, Any]) -> _Reply:
        async with self._open().post(self._url, data=orjson.dumps(body)) as response:
            raw = await response.read()
            retry_after = _retry_after(response.headers) if response.status in (429, 503) else None
            return _Reply(response.status, raw, retry_after)

    async def _complete(self, messages: list[dict[str, str]], json_reply: bool = True) -> Completion:
        import aiohttp

        attempts = 0
        while True:
            if self._fatal is not None:
                raise JudgeCallError(self._fatal, attempts)
            attempts += 1
            self.usage.calls += 1
            json_mode = self._json_mode and json_reply
            body: dict[str, Any] = {"model": self.settings.judge_model, "messages": messages, "temperature": 0}
            if json_mode:
                body["response_format"] = {"type": "json_object"}
            try:
                reply = await self._post(body)
            except TimeoutError:
                self._count("timeout")
                reason = f"timed out after {self.settings.judge_timeout_s:g} s"
                await self._backoff(attempts, reason, None, unreachable=True)
                continue
            except aiohttp.ClientError as exc:
                self._count("connection")
                reason = f"connection error: {self._scrub(_describe(exc))}"
                await self._backoff(attempts, reason, None, unreachable=True)
                continue
            status = reply.status
            if 200 <= status < 300:
                completion = self._completion(reply.body, attempts)
                self._count("ok")
                return completion
            self._count(str(status))
            message = _message(reply.body)
            if json_mode and status in (400, 422) and _mentions_response_format(message, reply.body):
                log.info("judge endpoint rejects response_format; continuing without JSON mode")
                self._json_mode = False
                attempts -= 1
                continue
            reason = f"HTTP {status} from the judge endpoint: {self._scrub(message)}"
            if status in (401, 403):
                self._fatal = reason + " (check ECVA_JUDGE_API_KEY / ECVA_JUDGE_BASE_URL)"
                raise JudgeCallError(self._fatal, attempts)
            if status not in _RETRY_STATUSES and status < 500:
                raise JudgeCallError(reason, attempts)
            await self._backoff(attempts, reason, reply.retry_after)

    def _completion(self, raw: bytes, attempts: int) -> Completion:
        try:
            reply = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            self._count("malformed")
            raise JudgeCallError(
                f"malformed response from the judge endpoint: {self._scrub(str(exc))[:200]}", attempts
            ) from None
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
            content = orjson.dumps(content).decode()
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
    """The CA bundle the openai package trusts (certifi's), else the system's."""
    try:
        import certifi
    except ImportError:
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())


def _env_proxy(url: str) -> tuple[str | None, Any]:
    """The proxy for ``url`` from HTTP(S)_PROXY / NO_PROXY (as the openai SDK honours them), with
    credentials in its URL split off as proxy auth; (None, None) for a direct connection."""
    import urllib.request

    import aiohttp
    from yarl import URL

    parts = urlsplit(url)
    if parts.hostname and urllib.request.proxy_bypass(parts.hostname):
        return None, None
    proxy = urllib.request.getproxies().get(parts.scheme)
    if not proxy:
        return None, None
    proxy_url = URL(proxy if "://" in proxy else f"http://{proxy}")
    return str(proxy_url.with_user(None)), aiohttp.BasicAuth.from_url(proxy_url)


def _describe(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _message(raw: bytes) -> str:
    """The error message of an OpenAI-style error body (``{"error": {"message": ...}}``), else its text."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", "replace").strip()[:300] or "(empty body)"
    if isinstance(body, dict):
        detail = body.get("error", body)
        text = detail.get("message") if isinstance(detail, dict) else detail
        if text:
            return str(text)[:300]
    return str(body)[:300]


def _mentions_response_format(message: str, raw: bytes) -> bool:
    text = f"{message} {raw.decode('utf-8', 'replace')}".lower()
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
