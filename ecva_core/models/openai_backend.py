"""Any OpenAI-compatible chat endpoint (vLLM, SGLang, Ollama, hosted APIs) as a video chat model.

The clip's sampled frames go to the first user turn as base64 JPEG ``image_url`` parts (every
vision server accepts those); with ``use_video_url=True`` the file itself is sent as one
``video_url`` part instead (vLLM and SGLang accept it for video models). Replies are streamed.
The JPEGs are cached with the clip, so follow-up turns cost no decoding or encoding.
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property, partial
from typing import Any
from urllib.parse import urlparse

from ecva_core.errors import ModelLoadError
from ecva_core.models.base import (
    DEFAULT_SYSTEM_PROMPT,
    BatchRequest,
    CachedClip,
    ChatMessage,
    ChatModel,
    GenerationOptions,
    ModelOptions,
)
from ecva_core.models.openai_batch import BatchEndpoint, BatchPoster

OPENAI_DEFAULT_URL = "https://api.openai.com/v1"
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "0.0.0.0", "::1")


def resolve_base_url(spec_url: str | None, extra: Mapping[str, Any]) -> str:
    """The server a spec talks to: ``@URL`` in the spec, else ``base_url``, ``$OPENAI_BASE_URL``, OpenAI."""
    return (spec_url or extra.get("base_url") or os.environ.get("OPENAI_BASE_URL", "").strip()
            or OPENAI_DEFAULT_URL).rstrip("/")


def jpeg_part(image: Any, max_side: int = 768, quality: int = 85) -> dict[str, Any]:
    """One frame as the ``image_url`` content part every vision server accepts."""
    url = "data:image/jpeg;base64," + encode_jpeg(image, max_side, quality)
    return {"type": "image_url", "image_url": {"url": url}}


def encode_jpeg(image: Any, max_side: int = 768, quality: int = 85) -> str:
    """One RGB frame (H, W, 3) -> base64 JPEG, downscaled so its longer side is at most ``max_side``."""
    from PIL import Image

    picture = Image.fromarray(image)
    scale = max_side / max(picture.size)
    if scale < 1:
        picture = picture.resize((max(1, round(picture.width * scale)), max(1, round(picture.height * scale))),
                                 Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=quality)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


class OpenAIVideoChat(ChatModel):
    """Chat through ``/chat/completions`` with streaming."""

    def __init__(self, spec: str, model: str, base_url: str, api_key: str, options: ModelOptions) -> None:
        super().__init__(spec, num_frames=options.num_frames)
        extra = options.extra
        self.model = model
        self.base_url = base_url
        self.use_video_url = bool(extra.get("use_video_url", False))
        self.max_side = int(extra.get("max_side", 768))
        self.jpeg_quality = int(extra.get("jpeg_quality", 85))
        self.concurrency = max(1, options.max_concurrency)
        endpoint = BatchEndpoint(base_url, api_key, model, self.concurrency, float(extra.get("timeout_s", 120.0)),
                                 int(extra.get("max_retries", 2)))
        self._poster = BatchPoster(endpoint)
        self._pool: ThreadPoolExecutor | None = None
        self._endpoint = endpoint

    @cached_property
    def client(self) -> Any:
        """The openai SDK client for streamed chat, built on first use (importing it takes about a second)."""
        from openai import OpenAI

        endpoint = self._endpoint
        return OpenAI(base_url=endpoint.base_url, api_key=endpoint.api_key, timeout=endpoint.timeout_s,
                      max_retries=endpoint.max_retries)

    @classmethod
    def from_spec(cls, spec: str, model: str, base_url: str | None, options: ModelOptions) -> OpenAIVideoChat:
        url = resolve_base_url(base_url, options.extra)
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ModelLoadError(f"openai:{model}@{url}: the base URL must look like http://host:port/v1")
        key = options.extra.get("api_key") or os.environ.get("ECVA_CHAT_API_KEY") or os.environ.get("OPENAI_API_KEY")
        if not key:
            if url == OPENAI_DEFAULT_URL:
                raise ModelLoadError("openai backend: no API key; set OPENAI_API_KEY (or ECVA_CHAT_API_KEY), "
                                     "or give a self-hosted server as openai:MODEL@http://host:port/v1")
            key = "EMPTY"  # vLLM/SGLang/Ollama accept any key unless started with one
        return cls(spec, model, url, key, options)

    def _image_parts(self, clip: CachedClip) -> list[dict[str, Any]]:
        parts = clip.encoded.get("openai_jpeg")
        if parts is None:
            codec = self.frame_codec()
            parts = [codec(img) for img in clip.frames.images]
            clip.encoded["openai_jpeg"] = parts
        return parts

    def frame_codec(self) -> Callable[[Any], Any]:
        """Frame -> ``image_url`` part with a base64 JPEG (batch inference runs it in its decode workers)."""
        return partial(jpeg_part, max_side=self.max_side, quality=self.jpeg_quality)

    def _video_part(self, clip: CachedClip) -> dict[str, Any]:
        part = clip.encoded.get("openai_video")
        if part is None:
            if clip.source is None:
                raise ModelLoadError("use_video_url needs a video file, not pre-sampled frames")
            data = base64.b64encode(clip.source.read_bytes()).decode("ascii")
            part = {"type": "video_url", "video_url": {"url": "data:video/mp4;base64," + data}}
            clip.encoded["openai_video"] = part
        return part

    def build_messages(self, clip: CachedClip, messages: list[ChatMessage]) -> list[dict[str, Any]]:
        """OpenAI messages: system, then the first user turn carrying the video, then the rest as text."""
        system = next((m.content for m in messages if m.role == "system"), DEFAULT_SYSTEM_PROMPT)
        out: list[dict[str, Any]] = [{"role": "system", "content": system}]
        first_user = True
        for message in messages:
            if message.role == "system":
                continue
            if message.role == "user" and first_user:
                first_user = False
                if self.use_video_url:
                    media = [self._video_part(clip)]
                    intro = "Here is a video."
                else:
                    media = self._image_parts(clip)
                    stamps = ", ".join(f"{t:.1f}s" for t in clip.frames.timestamps)
                    intro = f"Here are {len(media)} frames sampled from a video, at {stamps}."
                content = [{"type": "text", "text": intro}, *media, {"type": "text", "text": message.content}]
                out.append({"role": "user", "content": content})
            else:
                out.append({"role": message.role, "content": message.content})
        return out

    def _stream(self, clip: CachedClip, messages: list[ChatMessage], options: GenerationOptions) -> Iterator[str]:
        import openai

        payload = self.build_messages(clip, messages)
        kwargs: dict[str, Any] = {"model": self.model, "messages": payload, "stream": True,
                                  "max_tokens": options.max_new_tokens, "temperature": options.temperature}
        if options.top_p < 1.0:
            kwargs["top_p"] = options.top_p
        try:
            stream = self.client.chat.completions.create(**kwargs)
            for chunk in stream:
                for choice in chunk.choices or []:
                    text = getattr(choice.delta, "content", None)
                    if text:
                        yield text
        except openai.OpenAIError as exc:
            raise self._server_error(exc) from exc

    def _server_error(self, exc: Exception) -> Exception:
        """The server's failure as a message that says what to fix."""
        import openai

        if isinstance(exc, openai.APIConnectionError):
            return ModelLoadError(f"cannot reach the chat server at {self.base_url}: {exc}. "
                                  "Start it or fix the URL in openai:MODEL@BASE_URL")
        if isinstance(exc, openai.AuthenticationError):
            return ModelLoadError(f"{self.base_url} rejected the API key; set OPENAI_API_KEY")
        if isinstance(exc, openai.APIStatusError):
            return ModelLoadError(f"the chat server at {self.base_url} answered {exc.status_code} for model "
                                  f"{self.model!r}: {exc.message}")
        return exc

    def answer_outcomes(self, requests: Sequence[BatchRequest], **generation: Any) -> list[str | Exception]:
        """All requests sent together, ``max_concurrency`` in flight (see ``openai_batch``).

        Each clip's JPEGs are encoded once, and every message carries the video before the
        question, so a server's prefix cache (vLLM, SGLang) shares a clip between its questions.
        """
        import orjson


        options = GenerationOptions.from_kwargs(generation)
        clips: dict[int, CachedClip] = {}
        for request in requests:
            clip = clips.setdefault(id(request.frames), CachedClip(frames=request.frames))
            if request.encoded is not None and not self.use_video_url:
                clip.encoded["openai_jpeg"] = list(request.encoded)
        if not self.use_video_url:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="openai-jpeg")
            list(self._pool.map(self._image_parts, clips.values()))
        bodies: list[bytes] = []
        for request in requests:
            body: dict[str, Any] = {
                "model": self.model,
                "messages": self.build_messages(clips[id(request.frames)], [ChatMessage("user", request.question)]),
                "max_tokens": options.max_new_tokens,
                "temperature": options.temperature,
            }
            if options.top_p < 1.0:
                body["top_p"] = options.top_p
            bodies.append(orjson.dumps(body))
        return self._poster.post_all(bodies)

    def answer_batch(self, requests: Sequence[BatchRequest], **generation: Any) -> list[str]:
        """Every answer, or the first failure raised (see :meth:`answer_outcomes`)."""
        outcomes = self.answer_outcomes(requests, **generation)
        for outcome in outcomes:
            if isinstance(outcome, Exception):
                raise outcome
        return [str(outcome) for outcome in outcomes]

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info.update(base_url=self.base_url, model=self.model, video_url=self.use_video_url)
        return info
