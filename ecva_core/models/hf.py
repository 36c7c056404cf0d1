"""Transformers-native video LLMs (``hf:MODEL_ID_OR_PATH``) through AutoModelForImageTextToText.

Works with any model whose processor takes ``videos=`` and whose chat template knows a
``{"type": "video"}`` content part: the Qwen2-VL / Qwen2.5-VL / Qwen3-VL families, LLaVA-OneVision,
LLaVA-NeXT-Video, SmolVLM2. We hand the processor our own sampled frames (midpoints of equal
segments, like AnomShield) so every model sees the same frames of a clip.

The default, :data:`DEFAULT_HF_MODEL` = ``HuggingFaceTB/SmolVLM2-500M-Video-Instruct``, is chosen
because it is the smallest instruction-tuned model trained on video that transformers supports
natively (about 0.5 B parameters, ~2 GB in fp32): it answers on a laptop CPU at a few tokens per
second with no extra packages, while the 2.2 B SmolVLM2 and the 3 B/7 B Qwen2.5-VL are the
better choices on a GPU.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ecva_core.errors import ModelLoadError
from ecva_core.models.base import (
    DEFAULT_SYSTEM_PROMPT,
    CachedClip,
    ChatMessage,
    ChatModel,
    GenerationOptions,
    ModelOptions,
    gpu_slot,
)

DEFAULT_HF_MODEL = "HuggingFaceTB/SmolVLM2-500M-Video-Instruct"


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


class HFVideoChat(ChatModel):
    """Chat with a transformers image-text-to-text model that accepts video."""

    def __init__(self, spec: str, model: Any, processor: Any, options: ModelOptions) -> None:
        super().__init__(spec, num_frames=options.num_frames)
        self.model = model
        self.processor = processor
        self.options = options
        self.device = str(next(model.parameters()).device)

    @classmethod
    def load(cls, spec: str, source: str, options: ModelOptions) -> HFVideoChat:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        source = DEFAULT_HF_MODEL if source in ("", "default") else source
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

    def inputs(self, clip: CachedClip, messages: list[ChatMessage]) -> Any:
        prompt = self.processor.apply_chat_template(self.conversation(messages), add_generation_prompt=True,
                                                    tokenize=False)
        video = clip.encoded.get("hf_video")
        if video is None:
            video = list(clip.frames.images)
            clip.encoded["hf_video"] = video
        start = time.perf_counter()
        batch = self.processor(text=[prompt], videos=[video], return_tensors="pt")
        self.last_timings["preprocess_s"] = time.perf_counter() - start
        dtype = next(self.model.parameters()).dtype
        return {k: (v.to(self.device, dtype=dtype) if v.is_floating_point() else v.to(self.device))
                for k, v in batch.items() if hasattr(v, "to")}

    def _stream(self, clip: CachedClip, messages: list[ChatMessage], options: GenerationOptions) -> Iterator[str]:
        from ecva_core.models.streaming import sampling_kwargs, stream_generate

        kwargs: dict[str, Any] = {**self.inputs(clip, messages), "max_new_tokens": options.max_new_tokens,
                                  **sampling_kwargs(options.temperature, options.top_p)}
        if self.options.static_cache:
            kwargs["cache_implementation"] = "static"
        with gpu_slot(self.device, self.options.max_concurrency):
            yield from stream_generate(self.model, getattr(self.processor, "tokenizer", self.processor), kwargs)

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info.update(device=self.device, architecture=type(self.model).__name__)
        return info
