"""The one interface every chat backend implements, plus what they share.

A backend is loaded once and then answers ``chat(video, messages)`` with a stream of text
chunks. Sampling a clip (and, for local models, encoding it) is the slow part of a first turn,
so each model keeps a small per-session :class:`ClipCache`: follow-up turns about the same clip
reuse the frames and the backend's encoded form of them.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ecva_core.errors import ModelLoadError

if TYPE_CHECKING:
    from ecva_core.video import Frames

Role = Literal["system", "user", "assistant"]

DEFAULT_SYSTEM_PROMPT = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)


@dataclass(frozen=True)
class ChatMessage:
    """One turn of a conversation; the video is passed to ``chat`` separately, once."""

    role: Role
    content: str

    @classmethod
    def coerce(cls, message: ChatMessage | Mapping[str, Any]) -> ChatMessage:
        """Accept ``ChatMessage`` or an OpenAI-style ``{"role", "content"}`` dict (as Gradio sends)."""
        if isinstance(message, ChatMessage):
            return message
        role = str(message.get("role", ""))
        if role not in ("system", "user", "assistant"):
            raise ValueError(f"chat message role must be system, user or assistant, not {role!r}")
        return cls(role=role, content=str(message.get("content") or ""))  # type: ignore[arg-type]


def normalise_messages(messages: Sequence[ChatMessage | Mapping[str, Any]]) -> list[ChatMessage]:
    """Coerce the messages and check the conversation ends with a user turn."""
    out = [ChatMessage.coerce(m) for m in messages]
    if not out or out[-1].role != "user":
        raise ValueError("the last chat message must be a user question")
    return out


@dataclass
class GenerationOptions:
    """Decoding settings shared by the backends (temperature 0 means greedy)."""

    max_new_tokens: int = 512
    temperature: float = 0.0
    top_p: float = 1.0

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> GenerationOptions:
        known = {k: kwargs[k] for k in ("max_new_tokens", "temperature", "top_p") if kwargs.get(k) is not None}
        unknown = sorted(set(kwargs) - {"max_new_tokens", "temperature", "top_p"})
        if unknown:
            raise ValueError(f"unknown generation options {unknown}; use max_new_tokens, temperature, top_p")
        return cls(**known)


@dataclass
class ModelOptions:
    """How a local model is placed on hardware; parsed from ``load_model(spec, **options)``.

    ``device``: ``auto`` (first GPU if any, else CPU), ``cpu``, ``cuda``, ``cuda:1``...;
    ``dtype``: ``auto`` (bf16 on GPUs that support it, fp16 on other GPUs, fp32 on CPU), ``bf16``,
    ``fp16``, ``fp32``; ``device_map``: passed to transformers (``auto`` spreads a model over GPUs);
    ``attn_implementation``: ``sdpa`` by default; ``static_cache``: pre-allocated KV cache (fixed
    shapes, compile-friendly); ``max_concurrency``: simultaneous generations per GPU;
    ``num_frames``: frames sampled per clip (default: the model's own); ``max_batch_size``: questions
    a local backend answers in one forward pass (``answer_batch``).
    """

    device: str = "auto"
    dtype: str = "auto"
    device_map: str | None = None
    attn_implementation: str = "sdpa"
    static_cache: bool = False
    max_concurrency: int = 1
    num_frames: int | None = None
    max_batch_size: int = 8
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> ModelOptions:
        names = {"device", "dtype", "device_map", "attn_implementation", "static_cache", "max_concurrency",
                 "num_frames", "max_batch_size"}
        known = {k: v for k, v in kwargs.items() if k in names and v is not None}
        extra = {k: v for k, v in kwargs.items() if k not in names and v is not None}
        return cls(**known, extra=extra)

    def resolved_device(self) -> str:
        import torch

        if self.device != "auto":
            if self.device.startswith("cuda") and not torch.cuda.is_available():
                raise ModelLoadError(f"device={self.device!r} was asked for but no CUDA GPU is visible; "
                                     "use device='cpu' or run on a GPU machine")
            return self.device
        return "cuda" if torch.cuda.is_available() else "cpu"

    def resolved_dtype(self, device: str) -> Any:
        import torch

        table = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16,
                 "float16": torch.float16, "fp32": torch.float32, "float32": torch.float32}
        if self.dtype != "auto":
            if self.dtype not in table:
                raise ModelLoadError(f"dtype={self.dtype!r} is not one of auto, bf16, fp16, fp32")
            return table[self.dtype]
        if not device.startswith("cuda"):
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


_GPU_SLOTS: dict[str, threading.BoundedSemaphore] = {}
_GPU_SLOTS_LOCK = threading.Lock()


def gpu_slot(device: str, limit: int) -> threading.BoundedSemaphore:
    """The process-wide semaphore that limits simultaneous generations on one device.

    Keyed by device so two models on the same GPU share the limit (set by the first to ask).
    """
    with _GPU_SLOTS_LOCK:
        if device not in _GPU_SLOTS:
            _GPU_SLOTS[device] = threading.BoundedSemaphore(max(1, int(limit)))
        return _GPU_SLOTS[device]


@dataclass
class CachedClip:
    """A sampled clip and whatever the backend derived from it (features, JPEGs, tensors)."""

    frames: Frames
    source: Path | None = None
    encoded: dict[str, Any] = field(default_factory=dict)


class ClipCache:
    """A small LRU of sampled (and encoded) clips, keyed by file identity and sampling settings.

    The key includes size and modification time, so an edited file is sampled again.
    """

    def __init__(self, max_items: int = 8) -> None:
        self.max_items = max_items
        self._items: OrderedDict[tuple[Any, ...], CachedClip] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key_for(video: str | Path | Frames, num_frames: int) -> tuple[Any, ...]:
        if isinstance(video, (str, Path)):
            path = Path(video).expanduser().resolve()
            try:
                stat = path.stat()
            except OSError:
                return ("path", str(path), num_frames)
            return ("path", str(path), stat.st_size, stat.st_mtime_ns, num_frames)
        return ("frames", id(video), num_frames)

    def get(self, key: tuple[Any, ...]) -> CachedClip | None:
        with self._lock:
            clip = self._items.get(key)
            if clip is not None:
                self._items.move_to_end(key)
            return clip

    def put(self, key: tuple[Any, ...], clip: CachedClip) -> None:
        with self._lock:
            self._items[key] = clip
            self._items.move_to_end(key)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True)
class BatchRequest:
    """One question about already sampled frames, as batch inference (``ecva infer``) asks it.

    Requests that share one ``Frames`` object are questions about the same clip: a backend encodes
    those frames once for all of them. ``encoded``, when given, is the frames already passed
    through the backend's :meth:`ChatModel.frame_codec` (in a decode worker), one per frame.
    """

    frames: Frames
    question: str
    encoded: tuple[Any, ...] | None = None


def sample_clip(video: str | Path, num_frames: int) -> Frames:
    """Sample ``num_frames`` frames with the VIDEO module (midpoints of equal segments)."""
    from ecva_core import video as video_module

    return video_module.sample_frames(Path(video), num_frames=num_frames)


class ChatModel(ABC):
    """A loaded video chat model. Subclasses implement :meth:`_stream`.

    ``chat`` accepts a video path (or an already sampled ``Frames``) and the conversation so far;
    it yields text chunks as they are generated. ``last_timings`` holds the seconds spent on
    sampling, encoding, first token and total for the latest call.
    """

    spec: str = ""
    default_num_frames: int = 16

    def __init__(self, spec: str, num_frames: int | None = None, cache_size: int = 8) -> None:
        self.spec = spec
        self.num_frames = num_frames or self.default_num_frames
        self.clip_cache = ClipCache(cache_size)
        self.last_timings: dict[str, float] = {}
        self.last_frames: Frames | None = None

    def clip(self, video: str | Path | Frames) -> CachedClip:
        """Return the cached clip for ``video``, sampling it on first use."""
        import time

        key = ClipCache.key_for(video, self.num_frames)
        cached = self.clip_cache.get(key)
        if cached is not None:
            self.last_timings["sample_s"] = 0.0
            return cached
        start = time.perf_counter()
        if isinstance(video, (str, Path)):
            if not Path(video).expanduser().exists():
                from ecva_core.errors import VideoError

                raise VideoError(f"video file not found: {video}")
            source: Path | None = Path(video).expanduser()
            frames = sample_clip(source, self.num_frames)
        else:
            source, frames = None, video
        self.last_timings["sample_s"] = time.perf_counter() - start
        clip = CachedClip(frames=frames, source=source)
        self.clip_cache.put(key, clip)
        return clip

    def chat(
        self,
        video: str | Path | Frames,
        messages: Sequence[ChatMessage | Mapping[str, Any]],
        **generation: Any,
    ) -> Iterator[str]:
        """Stream the answer to the last user message about ``video``."""
        import time

        conversation = normalise_messages(messages)
        options = GenerationOptions.from_kwargs(generation)
        self.last_timings = {}
        start = time.perf_counter()
        clip = self.clip(video)
        self.last_frames = clip.frames
        first = True
        for chunk in self._stream(clip, conversation, options):
            if first and chunk:
                self.last_timings["first_chunk_s"] = time.perf_counter() - start
                first = False
            yield chunk
        self.last_timings["total_s"] = time.perf_counter() - start

    def answer(self, video: str | Path | Frames, question: str, **generation: Any) -> str:
        """Convenience: one question, the whole answer as a string."""
        return "".join(self.chat(video, [ChatMessage("user", question)], **generation))

    max_batch_size: int = 1

    def frame_codec(self) -> Callable[[Any], Any] | None:
        """A picklable function turning one frame (H, W, 3) into what this backend sends, or None.

        Batch inference runs it in its decode workers, next to the decoding, and hands the result
        over as ``BatchRequest.encoded``; None (the default) means the backend takes the pixels.
        """
        return None

    def answer_batch(self, requests: Sequence[BatchRequest], **generation: Any) -> list[str]:
        """The whole answer to each request, in order; raises if the batch as a whole fails.

        This default answers one request after another (the clip cache still encodes a shared
        ``Frames`` once); local backends override it to answer up to ``max_batch_size`` questions
        in one forward pass.
        """
        return [self.answer(request.frames, request.question, **generation) for request in requests]

    def answer_outcomes(self, requests: Sequence[BatchRequest], **generation: Any) -> list[str | Exception]:
        """Each request's answer, or the exception that stopped that request alone.

        A batch that fails as a whole is asked again in halves, so one bad request (a context
        overflow, say) fails by itself and the others still get their answers.
        """
        if not requests:
            return []
        try:
            return list(self.answer_batch(requests, **generation))
        except Exception as exc:
            if len(requests) == 1:
                return [exc]
        middle = len(requests) // 2
        return [*self.answer_outcomes(requests[:middle], **generation),
                *self.answer_outcomes(requests[middle:], **generation)]

    @abstractmethod
    def _stream(self, clip: CachedClip, messages: list[ChatMessage], options: GenerationOptions) -> Iterator[str]:
        """Yield the answer's text chunks for ``messages`` about ``clip``."""

    def describe(self) -> dict[str, Any]:
        """What the app and ``ecva chat --json`` show about the model."""
        return {"spec": self.spec, "backend": type(self).__name__, "num_frames": self.num_frames}
