"""Video chat backends behind one interface: ``load_model(spec) -> ChatModel``.

Specs: ``anomshield:PATH[@BASE_LM]`` (our AnomShield implementation, official checkpoint layout),
``hf:MODEL_ID_OR_PATH`` (transformers-native video LLMs), ``openai:MODEL[@BASE_URL]`` (any
OpenAI-compatible server). A model that cannot be loaded raises :class:`ModelLoadError` saying what
to configure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ecva_core.errors import ModelLoadError
from ecva_core.models.base import ChatMessage, ChatModel, ClipCache, GenerationOptions, ModelOptions

__all__ = ["BACKENDS", "ChatMessage", "ChatModel", "ClipCache", "GenerationOptions", "ModelOptions",
           "ModelSpec", "load_model", "parse_spec"]

BACKENDS = ("anomshield", "hf", "openai")


@dataclass(frozen=True)
class ModelSpec:
    """A parsed spec: backend, model (path, id or name) and the optional ``@`` part."""

    backend: str
    model: str
    extra: str | None = None

    def __str__(self) -> str:
        return f"{self.backend}:{self.model}" + (f"@{self.extra}" if self.extra else "")


def parse_spec(spec: str) -> ModelSpec:
    """Split ``backend:model[@extra]``; the ``@`` part is a base LM (anomshield) or a base URL (openai)."""
    text = (spec or "").strip()
    backend, sep, rest = text.partition(":")
    if not sep or backend not in BACKENDS or not rest.strip():
        raise ModelLoadError(f"unknown model spec {spec!r}: use anomshield:PATH[@BASE_LM], "
                             "hf:MODEL_ID_OR_PATH or openai:MODEL[@BASE_URL]")
    if backend in ("anomshield", "openai") and "@" in rest:
        model, _, extra = rest.partition("@")
        return ModelSpec(backend, model.strip(), extra.strip() or None)
    return ModelSpec(backend, rest.strip())


def load_model(spec: str, **options: Any) -> ChatModel:
    """Load the model named by ``spec``; ``options`` are :class:`ModelOptions` fields plus backend extras.

    Backend extras: anomshield ``model_base``, ``vision_tower``; anomshield and hf ``hub`` (where hub ids
    are fetched from, see :mod:`ecva_core.models.hub`); openai ``api_key``, ``base_url``, ``use_video_url``,
    ``timeout_s``, ``jpeg_quality``, ``max_side``.
    """
    parsed = parse_spec(spec)
    opts = ModelOptions.from_kwargs(options)
    if parsed.backend == "anomshield":
        from ecva_core.models.anomshield import AnomShieldChat

        base = opts.extra.pop("model_base", None) or parsed.extra
        return AnomShieldChat.load(str(parsed), parsed.model, opts, model_base=base)
    if parsed.backend == "hf":
        from ecva_core.models.hf import HFVideoChat

        return HFVideoChat.load(str(parsed), parsed.model, opts)
    from ecva_core.models.openai_backend import OpenAIVideoChat

    return OpenAIVideoChat.from_spec(str(parsed), parsed.model, parsed.extra, opts)
