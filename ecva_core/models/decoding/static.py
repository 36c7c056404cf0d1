"""Any transformers causal LM stepped through its own ``StaticCache`` with the shared compiled loop."""

from __future__ import annotations

import inspect
from typing import Any

import torch

from ecva_core.models.decoding.loop import DecoderLoop, compile_decode_step


def _accepts(fn: Any, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


class StaticDecoder(DecoderLoop):
    """Any transformers causal LM, stepped through its own ``StaticCache``."""

    def __init__(self, language_model: Any, max_cache_len: int = 4096, compile_step: bool | None = None,
                 tune: bool = True) -> None:
        self.lm = language_model
        self.max_cache_len = max_cache_len
        device = next(language_model.parameters()).device
        self.compile_step = device.type == "cuda" if compile_step is None else compile_step
        self._caches: dict[int, Any] = {}
        self._logits = compile_decode_step(self._eager_logits, self.compile_step, tune)
        self._greedy = compile_decode_step(self._eager_greedy, self.compile_step, tune)
        self._active: Any = None
        # transformers renamed past_key_values -> cache and dropped cache_position in 5.2x; support both
        inner = getattr(language_model, "model", language_model)
        self._cache_kw = "cache" if _accepts(language_model.forward, "cache") else "past_key_values"
        self._needs_position = _accepts(inner.forward, "cache_position")
        self._device = device
        self._dtype = next(language_model.parameters()).dtype

    def _cache(self, batch: int) -> Any:
        from transformers import StaticCache

        cache = self._caches.get(batch)
        if cache is None:
            kwargs: dict[str, Any] = {"config": self.lm.config, "max_cache_len": self.max_cache_len}
            optional = {"max_batch_size": batch, "device": self._device, "dtype": self._dtype}
            kwargs.update({k: v for k, v in optional.items() if _accepts(StaticCache.__init__, k)})
            cache = StaticCache(**kwargs)
            self._caches[batch] = cache
        else:
            cache.reset()
        return cache

    def _forward(self, positions: torch.Tensor, **inputs: Any) -> Any:
        extra: dict[str, Any] = {self._cache_kw: self._active}
        if self._needs_position:
            extra["cache_position"] = positions[0]
        return self.lm(**inputs, position_ids=positions, use_cache=True, logits_to_keep=1, **extra)

    def _eager_logits(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return self._forward(positions, input_ids=tokens).logits[:, -1, :].float()

    def _eager_greedy(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """The greedy step with the argmax inside the graph (one replay per token, nothing else)."""
        return self._forward(positions, input_ids=tokens).logits[:, -1, :].argmax(dim=-1)

    def greedy_step(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return self._greedy(tokens, positions)

    def logits_step(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return self._logits(tokens, positions)

    def plan(self, total_length: int) -> None:
        """transformers' StaticCache always attends over its whole length: nothing to choose."""

    def release(self, batch: int) -> None:
        """Free the cache of ``batch`` rows (after it did not fit in memory)."""
        self._caches.pop(batch, None)
        self._active = None

    @torch.inference_mode()
    def prefill(self, inputs_embeds: torch.Tensor, padding: torch.Tensor | None = None) -> torch.Tensor:
        batch, length = inputs_embeds.shape[:2]
        if padding is not None and bool((padding > 0).any()):
            raise ValueError("StaticDecoder does not take left-padded prompts; use FusedDecoder or generate")
        self._check_fits(length)
        self._active = self._cache(batch)
        positions = torch.arange(length, device=inputs_embeds.device).unsqueeze(0).expand(batch, -1)
        return self._forward(positions, inputs_embeds=inputs_embeds).logits[:, -1, :].float()
