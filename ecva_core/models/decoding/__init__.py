"""Fast decoding for local causal LMs: a pre-allocated (static) KV cache and a compiled one-token step.

``generate`` re-plans every step in Python; for chat at batch 1 that overhead, not the GPU, sets
the speed. The decoders here prefill once eagerly, then run the one-token step through
``torch.compile`` with CUDA graphs against a cache whose tensors never move, so each step is one
graph replay. On CPU (or with ``compile_step=False``) the same loop runs eagerly.

Two decoders share the loop (:class:`DecoderLoop`): :class:`StaticDecoder` drives any transformers
causal LM through its own ``StaticCache``; :class:`FusedDecoder`
runs its own forward for Llama-family LMs with fused projections. :func:`fast_decoder` picks.
"""

from __future__ import annotations

from typing import Any

from ecva_core.models.decoding.fused import FusedDecoder, fused_support
from ecva_core.models.decoding.loop import DecoderLoop, compile_decode_step
from ecva_core.models.decoding.static import StaticDecoder

__all__ = ["DecoderLoop", "FusedDecoder", "StaticDecoder", "compile_decode_step", "fast_decoder", "fused_support"]


def fast_decoder(language_model: Any, max_cache_len: int = 4096, compile_step: bool | None = None,
                 tune: bool = True, fused: bool = True) -> DecoderLoop:
    """The fastest decoder this LM supports: fused (Llama family) when possible, else static-cache."""
    if fused and fused_support(language_model) is None:
        return FusedDecoder(language_model, max_cache_len=max_cache_len, compile_step=compile_step, tune=tune)
    return StaticDecoder(language_model, max_cache_len=max_cache_len, compile_step=compile_step, tune=tune)
