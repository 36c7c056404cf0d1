"""Transformers-native video LLMs (``hf:MODEL_ID_OR_PATH``) through AutoModelForImageTextToText.

Works with any model whose processor takes ``videos=`` and whose chat template knows a
``{"type": "video"}`` content part: the Qwen2-VL / Qwen2.5-VL / Qwen3-VL families, LLaVA-OneVision,
LLaVA-NeXT-Video, SmolVLM2. We hand the processor our own sampled frames (midpoints of equal
segments, like AnomShield) so every model sees the same frames of a clip.

Follow-up turns about a clip reuse, from the clip's cache entry: the sampled frames, the
processor's video-side output (pixel tensors and the placeholder text they expand to; only the
conversation text is tokenised again) and the vision encoder's output, which is handed to
``generate`` as ``mm_encoder_outputs`` instead of the pixels.

The default, :data:`DEFAULT_HF_MODEL` = ``HuggingFaceTB/SmolVLM2-500M-Video-Instruct``, is chosen
because it is the smallest instruction-tuned model trained on video that transformers supports
natively (about 0.5 B parameters, ~2 GB in fp32): it answers on a laptop CPU at a few tokens per
second (its processor needs ``num2words``, pinned in requirements.txt), while the 2.2 B SmolVLM2
and the 3 B/7 B Qwen2.5-VL are the better choices on a GPU.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ecva_core.errors import ModelLoadError
from ecva_core.models.base import (
    DEFAULT_SYSTEM_PROMPT,
    BatchRequest,
    CachedClip,
    ChatMessage,
    ChatModel,
    GenerationOptions,
    ModelOptions,
    gpu_slot,
)

DEFAULT_HF_MODEL = "HuggingFaceTB/SmolVLM2-500M-Video-Instruct"


def hf_model_id(source: str) -> str:
    """The model ``hf:SOURCE`` names: ``hf:default`` (or an empty source) is :data:`DEFAULT_HF_MODEL`."""
    return DEFAULT_HF_MODEL if source in ("", "default") else source


# The argument names transformers' generate treats as an encoder's main pixel input.
_PIXEL_INPUTS = ("pixel_values", "pixel_values_images", "pixel_values_videos", "image_patches")
# The encoder-output fields whose rows can be stacked for a batch (tensors along dim 0, per-video
# sequences end to end); an output with any other field set (Qwen3-VL's per-layer deepstack
# features) is not merged, and such a batch hands generate the pixels instead.
_STACKABLE_ENCODER_FIELDS = ("last_hidden_state", "pooler_output")
# Per-layer tuples no forward reads back from ``mm_encoder_outputs``; LLaVA-style encoders return
# every layer's hidden states, far larger than the features, so they are not kept in the clip cache.
_UNUSED_ENCODER_FIELDS = ("hidden_states", "attentions")


def _load(loader: Any, source: str, what: str, **kwargs: Any) -> Any:
    import torch

    try:
        return loader(source, **kwargs)
    except torch.cuda.OutOfMemoryError as exc:
        raise ModelLoadError(f"out of GPU memory loading {source}: try dtype='bf16', device_map='auto' or a "
                             "smaller model") from exc
    except (OSError, ValueError, KeyError) as exc:
        local = Path(source).expanduser().exists()
        hint = ("the folder must hold a save_pretrained model with its processor" if local else
                "download it first (huggingface-cli download ...) and pass the folder, or allow hub access "
                "(unset HF_HUB_OFFLINE)")
        raise ModelLoadError(f"cannot load the {what} of hf:{source}: {exc}. {hint}") from exc
    except ImportError as exc:
        raise ModelLoadError(f"cannot load the {what} of hf:{source}: it needs a package that is not installed "
                             f"({exc}); install it with pip and retry") from exc


class VideoPreprocessMemo:
    """Stands in for a processor's ``_process_videos`` so a clip's video is preprocessed once.

    ``ProcessorMixin.__call__`` gets the pixel tensors and each video's placeholder text from
    ``_process_videos`` and then tokenises the text; both depend only on the frames and the video
    kwargs. Inside :meth:`scope` (per thread) a call whose only video is the clip's cached frame
    list reuses what the clip's cache entry holds for the same kwargs; any other call goes through.
    """

    def __init__(self, original: Callable[..., Any]) -> None:
        self.original = original
        self._local = threading.local()

    @contextmanager
    def scope(self, clip: CachedClip) -> Iterator[None]:
        self._local.clip = clip
        try:
            yield
        finally:
            self._local.clip = None

    def __call__(self, videos: Any, *args: Any, **kwargs: Any) -> Any:
        clip: CachedClip | None = getattr(self._local, "clip", None)
        frames = None if clip is None else clip.encoded.get("hf_video")
        if args or frames is None or not (isinstance(videos, list) and len(videos) == 1 and videos[0] is frames):
            return self.original(videos, *args, **kwargs)
        key = repr(sorted(kwargs.items()))
        cached = clip.encoded.get("hf_processed_video")
        if cached is None or cached[0] != key:
            processed, replacements = self.original(videos, **kwargs)
            cached = (key, processed, list(replacements))
            clip.encoded["hf_processed_video"] = cached
        return copy.copy(cached[1]), list(cached[2])


def encoder_calls(model: Any, batch: dict[str, Any]) -> dict[str, tuple[Any, dict[str, Any]]]:
    """The vision-encoder calls ``generate`` makes before prefill, ``{modality: (fn, kwargs)}`` (as in
    GenerationMixin._prepare_multimodal_encoder_kwargs_for_generation: a modality is encoded when its
    ``get_<modality>_features`` takes a pixel input that the batch holds)."""
    calls: dict[str, tuple[Any, dict[str, Any]]] = {}
    for modality in ("image", "video"):
        fn = getattr(model.base_model, f"get_{modality}_features", None)
        if modality not in model.input_modalities or fn is None:
            continue
        kwargs = {k: batch[k] for k in inspect.signature(fn).parameters if k != "kwargs" and k in batch}
        if any(k in kwargs for k in _PIXEL_INPUTS):
            calls[modality] = (fn, kwargs)
    return calls


def _input_signature(calls: dict[str, tuple[Any, dict[str, Any]]]) -> tuple[Any, ...]:
    """What must match for stored features to stand for these inputs of the same clip."""
    parts: list[Any] = []
    for modality, (_, kwargs) in sorted(calls.items()):
        for name, value in sorted(kwargs.items()):
            if hasattr(value, "shape") and hasattr(value, "dtype"):
                small_ints = not value.is_floating_point() and value.numel() <= 4096
                parts.append((modality, name, tuple(value.shape), str(value.dtype), str(value.device),
                              tuple(value.flatten().tolist()) if small_ints else None))
            else:
                parts.append((modality, name, repr(value)))
    return tuple(parts)


def _slim(output: Any) -> Any:
    """The encoder output without its per-layer tuples (ModelOutput forbids deleting keys: rebuild it)."""
    if not dataclasses.is_dataclass(output):
        return output
    drop = {f.name: None for f in dataclasses.fields(output) if f.name in _UNUSED_ENCODER_FIELDS}
    return dataclasses.replace(output, **drop) if drop else output


def stack_encoder_outputs(outputs: list[Any]) -> Any | None:
    """One encoder output for a batch from each row's, in row order; ``None`` when they cannot be stacked."""
    import torch

    first = outputs[0]
    if not dataclasses.is_dataclass(first):
        return None
    merged: dict[str, Any] = {}
    for name in (f.name for f in dataclasses.fields(first)):
        values = [getattr(output, name) for output in outputs]
        if all(value is None for value in values):
            continue
        if name not in _STACKABLE_ENCODER_FIELDS:
            return None
        if all(hasattr(value, "shape") for value in values):
            merged[name] = torch.cat(values)
        elif all(isinstance(value, (list, tuple)) for value in values):
            merged[name] = type(values[0])(item for value in values for item in value)
        else:
            return None
    return dataclasses.replace(first, **merged)


def _pad_left(row: Any, length: int, value: int) -> Any:
    import torch

    return torch.nn.functional.pad(row, (length - row.shape[1], 0), value=value)


class HFVideoChat(ChatModel):
    """Chat with a transformers image-text-to-text model that accepts video."""

    def __init__(self, spec: str, model: Any, processor: Any, options: ModelOptions) -> None:
        super().__init__(spec, num_frames=options.num_frames)
        self.max_batch_size = max(1, int(options.max_batch_size))
        self.model = model
        self.processor = processor
        self.options = options
        self.device = str(next(model.parameters()).device)
        self.video_memo: VideoPreprocessMemo | None = None
        if callable(getattr(processor, "_process_videos", None)):
            self.video_memo = VideoPreprocessMemo(processor._process_videos)
            processor._process_videos = self.video_memo
        forward = inspect.signature(model.forward).parameters
        modalities = getattr(model, "input_modalities", ())
        self.reuses_features = "mm_encoder_outputs" in forward and any(m in modalities for m in ("image", "video"))

    @classmethod
    def load(cls, spec: str, source: str, options: ModelOptions) -> HFVideoChat:
        from ecva_core.models.hub import fetch_model

        source = hf_model_id(source)
        # A local folder before transformers is even imported, so a missing model fails in seconds.
        source = str(fetch_model(source, what=spec, spec=spec, local_hint=f"--model hf:DIR/{source}",
                                 hub=options.extra.get("hub")).path)
        from transformers import AutoModelForImageTextToText, AutoProcessor

        device = options.resolved_device()
        dtype = options.resolved_dtype(device)
        processor = _load(AutoProcessor.from_pretrained, source, "processor")
        kwargs: dict[str, Any] = {"dtype": dtype, "attn_implementation": options.attn_implementation}
        if options.device_map or device.startswith("cuda"):
            kwargs["device_map"] = options.device_map or {"": device}
        model = _load(AutoModelForImageTextToText.from_pretrained, source, "model", **kwargs)
        return cls(spec, model.eval(), processor, options)

    def conversation(self, messages: list[ChatMessage]) -> list[dict[str, Any]]:
        """Chat-template messages: the video part goes into the first user turn."""
        system = next((m.content for m in messages if m.role == "system"), DEFAULT_SYSTEM_PROMPT)
        out: list[dict[str, Any]] = [{"role": "system", "content": [{"type": "text", "text": system}]}]
        first_user = True
        for message in messages:
            if message.role == "system":
                continue
            content: list[dict[str, Any]] = [{"type": "text", "text": message.content}]
            if message.role == "user" and first_user:
                first_user = False
                content.insert(0, {"type": "video"})
            out.append({"role": message.role, "content": content})
        return out

    def inputs(self, clip: CachedClip, messages: list[ChatMessage]) -> dict[str, Any]:
        """The processor's output for the conversation, on the model's device and dtype."""
        prompt = self.processor.apply_chat_template(self.conversation(messages), add_generation_prompt=True,
                                                    tokenize=False)
        video = clip.encoded.get("hf_video")
        if video is None:
            video = list(clip.frames.images)
            clip.encoded["hf_video"] = video
        start = time.perf_counter()
        if self.video_memo is None:
            batch = self.processor(text=[prompt], videos=[video], return_tensors="pt")
        else:
            with self.video_memo.scope(clip):
                batch = self.processor(text=[prompt], videos=[video], return_tensors="pt")
        self.last_timings["preprocess_s"] = time.perf_counter() - start
        dtype = next(self.model.parameters()).dtype
        return {k: (v.to(self.device, dtype=dtype) if v.is_floating_point() else v.to(self.device))
                for k, v in batch.items() if hasattr(v, "to")}

    def with_video_features(self, clip: CachedClip, batch: dict[str, Any]) -> dict[str, Any]:
        """``batch`` with the pixels replaced by the clip's encoder outputs, encoding them on first use."""
        import torch

        calls = encoder_calls(self.model, batch) if self.reuses_features else {}
        if not calls:
            return batch
        signature = _input_signature(calls)
        cached = clip.encoded.get("hf_features")
        if cached is not None and cached[0] == signature:
            outputs = cached[1]
            self.last_timings["encode_s"] = 0.0
        else:
            start = time.perf_counter()
            with torch.inference_mode():
                outputs = {modality: _slim(fn(**kwargs, return_dict=True))
                           for modality, (fn, kwargs) in calls.items()}
            clip.encoded["hf_features"] = (signature, outputs)
            self.last_timings["encode_s"] = time.perf_counter() - start
        # Only the pixels give way to the features: generate still needs the rest (grid sizes, masks)
        # before prefill, e.g. for Qwen2-VL's 3-D position ids, and drops it itself.
        pixels = {k for _, kwargs in calls.values() for k in kwargs if k in _PIXEL_INPUTS}
        return {**{k: v for k, v in batch.items() if k not in pixels}, "mm_encoder_outputs": dict(outputs)}

    def _stream(self, clip: CachedClip, messages: list[ChatMessage], options: GenerationOptions) -> Iterator[str]:
        from ecva_core.models.streaming import sampling_kwargs, stream_generate

        batch = self.inputs(clip, messages)
        with gpu_slot(self.device, self.options.max_concurrency):
            kwargs: dict[str, Any] = {**self.with_video_features(clip, batch),
                                      "max_new_tokens": options.max_new_tokens,
                                      **sampling_kwargs(options.temperature, options.top_p)}
            if self.options.static_cache:
                kwargs["cache_implementation"] = "static"
            yield from stream_generate(self.model, getattr(self.processor, "tokenizer", self.processor), kwargs)

    def answer_batch(self, requests: Sequence[BatchRequest], **generation: Any) -> list[str]:
        """Answer ``max_batch_size`` questions per ``generate`` call, prompts left-padded.

        Each distinct clip is preprocessed and encoded once (its cache entry, as for follow-up
        turns) and its encoder output is handed to every row that asks about it; greedy answers
        are those of :meth:`answer`.
        """
        options = GenerationOptions.from_kwargs(generation)
        clips: dict[int, CachedClip] = {}  # id(frames) -> clip; the requests keep the frames alive
        answers: list[str] = []
        for start in range(0, len(requests), self.max_batch_size):
            rows: list[tuple[CachedClip, dict[str, Any]]] = []
            with gpu_slot(self.device, self.options.max_concurrency):
                for request in requests[start : start + self.max_batch_size]:
                    clip = clips.setdefault(id(request.frames), self.clip(request.frames))
                    rows.append((clip, self.inputs(clip, [ChatMessage("user", request.question)])))
                answers += self._generate_rows(self.stack_rows(rows), options)
        return answers

    def stack_rows(self, rows: list[tuple[CachedClip, dict[str, Any]]]) -> dict[str, Any]:
        """One left-padded batch from single-prompt processor outputs, with the clips' encoder outputs.

        Token-aligned tensors (``(1, length)``: ids, mask, token types) are left-padded; other
        tensors (pixels, grid sizes) are stacked along dim 0, as the processor itself would.
        """
        import torch

        featured = [self.with_video_features(clip, row) for clip, row in rows]
        encoder: dict[str, Any] = {}
        for modality in featured[0].get("mm_encoder_outputs", {}):
            stacked = stack_encoder_outputs([row["mm_encoder_outputs"][modality] for row in featured])
            if stacked is None:
                featured = [row for _, row in rows]
                encoder = {}
                break
            encoder[modality] = stacked
        tokenizer = getattr(self.processor, "tokenizer", self.processor)
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        longest = max(row["input_ids"].shape[1] for row in featured)
        batch: dict[str, Any] = {}
        for key in featured[0]:
            if key == "mm_encoder_outputs":
                continue
            values = [row[key] for row in featured]
            if all(v.dim() == 2 and v.shape == row["input_ids"].shape for v, row in zip(values, featured, strict=True)):
                fill = pad_id if key == "input_ids" else 0
                batch[key] = torch.cat([_pad_left(value, longest, fill) for value in values])
            else:
                batch[key] = torch.cat(values)
        if encoder:
            batch["mm_encoder_outputs"] = encoder
        return batch

    def _generate_rows(self, batch: dict[str, Any], options: GenerationOptions) -> list[str]:
        """Each row's answer (up to its first end-of-turn token) from one ``generate`` call."""
        import torch

        from ecva_core.models.streaming import sampling_kwargs

        tokenizer = getattr(self.processor, "tokenizer", self.processor)
        stops = self.model.generation_config.eos_token_id
        stops = set(stops if isinstance(stops, list) else [stops]) | {tokenizer.eos_token_id}
        kwargs: dict[str, Any] = {**batch, "max_new_tokens": options.max_new_tokens,
                                  **sampling_kwargs(options.temperature, options.top_p)}
        if self.options.static_cache:
            kwargs["cache_implementation"] = "static"
        with torch.inference_mode():
            out = self.model.generate(**kwargs)
        answers = []
        for row in out[:, batch["input_ids"].shape[1]:].tolist():
            end = next((i for i, token in enumerate(row) if token in stops), len(row))
            answers.append(tokenizer.decode(row[:end], skip_special_tokens=True))
        return answers

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        reused = ["frames"]
        if self.video_memo is not None:
            reused.append("video preprocessing")
        if self.reuses_features:
            reused.append("vision features")
        info.update(device=self.device, architecture=type(self.model).__name__, reused_across_turns=reused)
        return info
