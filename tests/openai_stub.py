"""A loopback OpenAI-compatible chat server for tests and benchmarks (real HTTP, threaded).

Serves ``POST /v1/chat/completions`` and ``GET /v1/models`` on 127.0.0.1 (port 0 by default)
from a background thread. What each request gets is programmable: queue replies for the next
requests (:meth:`OpenAIStub.enqueue`), add content-based rules (:meth:`OpenAIStub.add_rule`) or
change the default. Every request is recorded with its headers and JSON body, and the number of
requests in flight is tracked so tests can check a concurrency bound.

By default a reply is a valid verdict computed from the prompt, for the ECVA judges (the system
prompt names the judge: ``ECVA AnomEval judge: <name>``) by simple word-overlap rules, and a
deterministic answer for a video question (frames as image parts); the official agents' prompts get
replies in their own formats (``Score: N``, ``Key Information Count: N, Included Key Information
Count: M``). Recorded requests expose the frames they carried and their question text
(``frame_count``, ``frame_times``, ``prompt_text``).
"""

from __future__ import annotations

import ast
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_ABSTAIN = re.compile(r"\b(none|cannot|can't|can not|unable|not possible|no meaningful|not enough)\b", re.I)
_JUDGE = re.compile(r"ECVA AnomEval judge: (\w+)")


@dataclass(frozen=True)
class Reply:
    """What the stub does with one request.

    kind: ``verdict`` (a completion whose content is computed from the prompt, or ``content`` if
    given), ``status`` (an error status with an OpenAI-style error body), ``hang`` (wait
    ``latency_s`` then drop the connection without answering), ``malformed`` (200 with a body that
    is not JSON), ``reject_json_mode`` (400 when ``response_format`` is sent, else a verdict).
    """

    kind: str = "verdict"
    latency_s: float = 0.0
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    content: str | None = None
    message: str = ""

    @classmethod
    def verdict(cls, latency_s: float = 0.0, content: str | None = None) -> Reply:
        return cls("verdict", latency_s, content=content)

    @classmethod
    def error(cls, status: int, retry_after: str | None = None, latency_s: float = 0.0, message: str = "") -> Reply:
        headers = (("Retry-After", retry_after),) if retry_after is not None else ()
        return cls("status", latency_s, status=status, headers=headers, message=message or f"stub error {status}")

    @classmethod
    def hang(cls, seconds: float) -> Reply:
        return cls("hang", seconds)

    @classmethod
    def malformed(cls, latency_s: float = 0.0) -> Reply:
        return cls("malformed", latency_s)

    @classmethod
    def reject_json_mode(cls, latency_s: float = 0.0) -> Reply:
        return cls("reject_json_mode", latency_s)


@dataclass
class Recorded:
    """One request as the stub received it."""

    path: str
    method: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    raw: bytes
    received_at: float
    reply_kind: str = ""

    @property
    def video_parts(self) -> list[dict[str, Any]]:
        """The content parts of the user turn that carries a video (empty for text-only requests)."""
        for message in (self.body or {}).get("messages") or []:
            if message.get("role") == "user" and isinstance(message.get("content"), list):
                return list(message["content"])
        return []

    @property
    def frame_count(self) -> int:
        """Images (sampled frames) the request carried."""
        return sum(1 for part in self.video_parts if part.get("type") == "image_url")

    @property
    def frame_times(self) -> list[float]:
        """The frame timestamps the request's intro text names (``... at 0.2s, 0.8s.``)."""
        texts = [p.get("text", "") for p in self.video_parts if p.get("type") == "text"]
        return frame_times_in(texts[0]) if texts else []

    @property
    def prompt_text(self) -> str:
        """The question: the last text part of a video request, else the last user message."""
        texts = [p.get("text", "") for p in self.video_parts if p.get("type") == "text"]
        if texts:
            return texts[-1]
        users = [m for m in (self.body or {}).get("messages") or [] if m.get("role") == "user"]
        return str(users[-1].get("content", "")) if users else ""


@dataclass
class _Rule:
    match: Callable[[dict[str, Any]], bool]
    reply: Reply
    times: int | None


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    queue: list[Reply] = field(default_factory=list)
    rules: list[_Rule] = field(default_factory=list)
    default: Reply = field(default_factory=Reply)
    requests: list[Recorded] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    record_bodies: bool = True
    count: int = 0


_TIMES = re.compile(r"(\d+(?:\.\d+)?)s\b")


def frame_times_in(text: str) -> list[float]:
    """Timestamps from a video request's intro (``Here are 8 frames ... at 0.2s, 0.8s.``)."""
    return [float(t) for t in _TIMES.findall(text.partition(" at ")[2])]


def video_answer(body: dict[str, Any]) -> str | None:
    """A deterministic answer to a video question (frames + question), or None for other requests.

    It names the frame span and echoes the question's first words, so answers differ by frames
    and prompt; probe-worded questions are answered ``None``.
    """
    for message in body.get("messages") or []:
        content = message.get("content")
        if message.get("role") == "user" and isinstance(content, list):
            texts = [p.get("text", "") for p in content if p.get("type") == "text"]
            frames = sum(1 for p in content if p.get("type") == "image_url")
            times = frame_times_in(texts[0]) if texts else []
            question = texts[-1] if texts else ""
            if "answer with one word None" in question:
                return "None"
            span = f"{times[0]:.1f}-{times[-1]:.1f}s" if times else "unknown span"
            return f"{frames} frames over {span}: a car crash on the street; {' '.join(question.split()[:4])}"
    return None


def default_verdict(body: dict[str, Any]) -> str:
    """A valid JSON verdict for an ECVA judge prompt, from word overlap (deterministic)."""
    answer_text = video_answer(body)
    if answer_text is not None:
        return answer_text
    messages = body.get("messages") or []
    system = next((m.get("content", "") for m in messages if m.get("role") == "system"), "")
    user = next((m.get("content", "") for m in messages if m.get("role") == "user"), "{}")
    match = _JUDGE.search(system)
    if match is None and "ECVA AnomEval judge" not in system and system:
        return _official_verdict(user)
    judge = match.group(1) if match else "consistency"
    try:
        data = json.loads(user)
    except ValueError:
        data = {}
    answer = str(data.get("answer", ""))
    if judge == "keyphrase":
        words = _words(answer)
        phrases = data.get("key_phrases") or []
        matched = sum(1 for p in phrases if _words(str(p.get("phrase", ""))) <= words)
        return json.dumps({"matched": matched, "reason": f"{matched} of {len(phrases)} phrases stated"})
    if judge == "hallucination_pair":
        score = 1 if _ABSTAIN.search(str(data.get("probe_answer", ""))) else 0
        return json.dumps({"score": score, "reason": "abstains" if score else "claims unseen content"})
    if judge == "hallucination":
        score = 1 if _ABSTAIN.search(answer) else 0
        return json.dumps({"score": score, "reason": "abstains" if score else "describes an unseen event"})
    overlap = _overlap(answer, str(data.get("reference", "")))
    if judge == "logic":
        return json.dumps({"score": min(5, round(overlap * 10)), "reason": "overlap-based stub grade"})
    return json.dumps({"score": int(overlap >= 0.2), "reason": "overlap-based stub verdict"})


def _official_verdict(user: str) -> str:
    """A reply in the official agents' formats, by the same word-overlap rules. The judge is told by
    the shape of the user message (ours), since the official system prompts come from the user's checkout."""
    found = re.fullmatch(r'\s*"feature": "(.*)",\s*"truth": "(.*)"\s*', user, re.DOTALL)
    if found:
        feature, truth = found.groups()
        return f"Score: {int(_overlap(feature, truth) >= 0.2)}"
    data = _literal_dict(user)
    if "key infomation" in data:
        phrases = json.loads(data["key infomation"])
        words = _words(data["system output"])
        matched = sum(1 for p in phrases if _words(p) <= words)
        return f"Key Information Count: {len(phrases)}, Included Key Information Count: {matched}"
    if "base infomation" in data:
        return f"Score: {min(5, round(_overlap(data['system output'], data['base infomation']) * 10))}"
    return f"Score: {1 if _ABSTAIN.search(user) else 0}"


def _literal_dict(text: str) -> dict[str, Any]:
    """The dict an official logic or key-information message is the ``str`` of; {} for any other text."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return {}
    return value if isinstance(value, dict) else {}


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9']+", text.lower()))


def _overlap(a: str, b: str) -> float:
    wa, wb = _words(a), _words(b)
    return len(wa & wb) / len(wa | wb) if wa | wb else 0.0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, the body waits for the client's
    # delayed ACK (~40 ms), which would add to every call's programmed latency.
    disable_nagle_algorithm = True
    # A buffered writer: the status line, headers and body leave in one send when the handler
    # returns (http.server flushes after each request), as real servers answer, instead of a
    # send for the headers and another for the body (two wake-ups per reply for the client).
    wbufsize = 1 << 16
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._json(200, {"object": "list", "data": [{"id": "stub-judge", "object": "model", "owned_by": "stub"}]})
        else:
            self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        state = self.server.state
        with state.lock:
            state.count += 1
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
            reply = self._choose(state, body)
            record = Recorded(
                self.path,
                "POST",
                dict(self.headers.items()),
                body if state.record_bodies else None,
                raw if state.record_bodies else b"",
                time.monotonic(),
                reply.kind,
            )
            state.requests.append(record)
        try:
            self._serve(reply, body)
        finally:
            with state.lock:
                state.in_flight -= 1

    def _choose(self, state: _State, body: dict[str, Any] | None) -> Reply:
        if state.queue:
            return state.queue.pop(0)
        for rule in state.rules:
            if body is not None and rule.match(body) and (rule.times is None or rule.times > 0):
                if rule.times is not None:
                    rule.times -= 1
                return rule.reply
        return state.default

    def _serve(self, reply: Reply, body: dict[str, Any] | None) -> None:
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        if reply.latency_s:
            time.sleep(reply.latency_s)
        if reply.kind == "hang":
            self.close_connection = True  # the server closes the socket without a reply
            return
        if reply.kind == "status":
            error = {"error": {"message": reply.message, "type": "stub_error", "code": reply.status}}
            self._json(reply.status, error, reply.headers)
            return
        if reply.kind == "malformed":
            self._send(200, b'{"id": "chatcmpl-stub", "choices": [ {"message": ', ())
            return
        if body is None:
            self._json(400, {"error": {"message": "request body is not JSON", "type": "invalid_request"}})
            return
        if reply.kind == "reject_json_mode" and "response_format" in body:
            message = "response_format json_object is not supported by this model"
            self._json(400, {"error": {"message": message, "type": "invalid_request_error"}})
            return
        content = reply.content if reply.content is not None else default_verdict(body)
        if body.get("stream"):
            self._stream(content, body)
            return
        prompt_chars = sum(len(str(m.get("content", ""))) for m in body.get("messages") or [])
        completion = {
            "id": f"chatcmpl-stub-{self.server.state.count}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "stub-judge"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_chars // 4,
                "completion_tokens": max(1, len(content) // 4),
                "total_tokens": prompt_chars // 4 + max(1, len(content) // 4),
            },
        }
        self._json(200, completion)

    def _stream(self, content: str, body: dict[str, Any]) -> None:
        """Server-sent events, one word per chunk, as OpenAI-compatible servers stream a reply."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        words = re.findall(r"\S+\s*", content) or [""]
        for index, word in enumerate(words):
            chunk = {
                "id": f"chatcmpl-stub-{self.server.state.count}",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": body.get("model", "stub"),
                "choices": [
                    {
                        "index": 0,
                        "delta": {"content": word},
                        "finish_reason": "stop" if index == len(words) - 1 else None,
                    }
                ],
            }
            self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()

    def _json(self, status: int, payload: object, headers: tuple[tuple[str, str], ...] = ()) -> None:
        self._send(status, json.dumps(payload).encode(), headers)

    def _send(self, status: int, data: bytes, headers: tuple[tuple[str, str], ...]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 4096
    state: _State


class OpenAIStub:
    """Start with ``with OpenAIStub() as stub:``; ``stub.base_url`` ends in ``/v1``."""

    def __init__(self, default: Reply | None = None, record_bodies: bool = True) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.state = _State(default=default or Reply(), record_bodies=record_bodies)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="openai-stub", daemon=True
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def state(self) -> _State:
        return self._server.state

    def enqueue(self, *replies: Reply) -> None:
        """The next requests get these replies, in order, before any rule or the default."""
        with self.state.lock:
            self.state.queue.extend(replies)

    def add_rule(self, match: Callable[[dict[str, Any]], bool], reply: Reply, times: int | None = None) -> None:
        """Requests whose JSON body satisfies ``match`` get ``reply`` (``times`` times, or always)."""
        with self.state.lock:
            self.state.rules.append(_Rule(match, reply, times))

    def set_default(self, reply: Reply) -> None:
        with self.state.lock:
            self.state.default = reply

    @property
    def requests(self) -> list[Recorded]:
        with self.state.lock:
            return list(self.state.requests)

    @property
    def calls(self) -> int:
        """Chat-completion requests received so far."""
        with self.state.lock:
            return self.state.count

    @property
    def max_in_flight(self) -> int:
        with self.state.lock:
            return self.state.max_in_flight

    def reset_counts(self) -> None:
        with self.state.lock:
            self.state.requests.clear()
            self.state.count = 0
            self.state.max_in_flight = 0

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> OpenAIStub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def answer_contains(text: str) -> Callable[[dict[str, Any]], bool]:
    """A rule matcher: the user message (the judge inputs) contains ``text``."""

    def match(body: dict[str, Any]) -> bool:
        return any(m.get("role") == "user" and text in str(m.get("content", "")) for m in body.get("messages") or [])

    return match
