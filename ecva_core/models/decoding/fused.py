"""Our own decode forward for Llama-family causal LMs (Llama, Mistral, Qwen2) with fused projections.

At batch 1 every weight is read once per token, so decode speed is memory bandwidth plus the
number of kernels per token. Reading q/k/v as one matrix and gate/up as one matrix cuts the
matrix-vector launches per layer from 7 to 4, and lets each launch fill the GPU (k and v alone
are small). The fused matrices are the transformers model's own storage: its q/k/v and gate/up
parameters are re-pointed to views of them, so memory does not grow and the model's own forward
(``generate``, the prefill of other code) keeps computing the same function.

The forward mirrors transformers' (RMSNorm in float32, rotate-half RoPE, grouped-query SDPA,
SiLU-gated MLP) and is checked against it token for token in the tests.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ecva_core.models.decoding.loop import DecoderLoop, compile_decode_step

SUPPORTED_MODEL_TYPES = ("llama", "mistral", "qwen2")
SUPPORTED_ROPE_TYPES = ("default", "linear", "llama3", "yarn")  # position-independent tables


def fused_support(language_model: Any) -> str | None:
    """``None`` when :class:`FusedDecoder` can run ``language_model``, else why it cannot."""
    config = getattr(language_model, "config", None)
    model_type = getattr(config, "model_type", None)
    if model_type not in SUPPORTED_MODEL_TYPES:
        return f"model type {model_type!r} is not one of {', '.join(SUPPORTED_MODEL_TYPES)}"
    if getattr(config, "hidden_act", "silu") != "silu":
        return f"activation {config.hidden_act!r} is not silu"
    inner = getattr(language_model, "model", None)
    if inner is None or not hasattr(inner, "layers") or not hasattr(inner, "rotary_emb"):
        return "the model lacks the model.layers / model.rotary_emb layout"
    rope_type = getattr(inner.rotary_emb, "rope_type", "default")
    if rope_type not in SUPPORTED_ROPE_TYPES:
        return f"RoPE type {rope_type!r} depends on the sequence length"
    linears = [language_model.lm_head]
    for layer in inner.layers:
        attn, mlp = layer.self_attn, layer.mlp
        linears += [attn.q_proj, attn.k_proj, attn.v_proj, attn.o_proj, mlp.gate_proj, mlp.up_proj, mlp.down_proj]
    if any(type(module) is not nn.Linear for module in linears):
        return "some projections are not plain nn.Linear (quantised or adapter-wrapped)"
    devices = {p.device for p in language_model.parameters()}
    if len(devices) != 1:
        return "the model is spread over several devices"
    return None


def _consecutive_view(weights: list[torch.Tensor]) -> torch.Tensor | None:
    """The one matrix the weights already form when they lie back to back in one storage."""
    first = weights[0]
    offset = first.storage_offset()
    for weight in weights:
        same_storage = weight.untyped_storage().data_ptr() == first.untyped_storage().data_ptr()
        if not (same_storage and weight.is_contiguous() and weight.storage_offset() == offset):
            return None
        offset += weight.numel()
    rows = sum(w.shape[0] for w in weights)
    return first.as_strided((rows, first.shape[1]), (first.shape[1], 1))


def fuse_linears(linears: list[nn.Linear]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One ``(sum(out), in)`` weight (and bias) for ``linears``; each module's parameters become views of it."""
    with torch.no_grad():
        weights = [m.weight.detach() for m in linears]
        fused = _consecutive_view(weights)
        if fused is None:
            fused = torch.cat(weights)
            start = 0
            for module in linears:
                rows = module.weight.shape[0]
                module.weight = nn.Parameter(fused[start:start + rows], requires_grad=False)
                start += rows
        if all(m.bias is None for m in linears):
            return fused, None
        biases = [m.bias.detach() if m.bias is not None else
                  torch.zeros(m.weight.shape[0], dtype=fused.dtype, device=fused.device) for m in linears]
        return fused, torch.cat(biases)


def _rms_norm(hidden: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    normed = hidden.float()
    normed = normed * torch.rsqrt(normed.pow(2).mean(-1, keepdim=True) + eps)
    return weight * normed.to(hidden.dtype)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


class _FusedLayer(nn.Module):
    """One decoder layer's weights, fused; parameters so compilation treats them as static."""

    def __init__(self, layer: nn.Module, config: Any) -> None:
        super().__init__()
        attn, mlp = layer.self_attn, layer.mlp
        qkv, qkv_bias = fuse_linears([attn.q_proj, attn.k_proj, attn.v_proj])
        gate_up, gate_up_bias = fuse_linears([mlp.gate_proj, mlp.up_proj])
        self.qkv = nn.Parameter(qkv, requires_grad=False)
        self.qkv_bias = None if qkv_bias is None else nn.Parameter(qkv_bias, requires_grad=False)
        self.gate_up = nn.Parameter(gate_up, requires_grad=False)
        self.gate_up_bias = None if gate_up_bias is None else nn.Parameter(gate_up_bias, requires_grad=False)
        self.o_proj, self.down_proj = attn.o_proj, mlp.down_proj
        self.input_norm, self.post_norm = layer.input_layernorm.weight, layer.post_attention_layernorm.weight
        self.eps = float(layer.input_layernorm.variance_epsilon)
        self.post_eps = float(layer.post_attention_layernorm.variance_epsilon)
        self.scaling = float(attn.scaling)
        # Qwen2 sets the window per layer, Mistral in the config, Llama nowhere
        self.window = getattr(attn, "sliding_window", getattr(config, "sliding_window", None))


class FusedLlama(nn.Module):
    """The decode-time forward over fused weights and a caller-owned KV cache."""

    def __init__(self, language_model: nn.Module) -> None:
        super().__init__()
        config = language_model.config
        inner = language_model.model
        self.layers = nn.ModuleList(_FusedLayer(layer, config) for layer in inner.layers)
        self.embed = inner.embed_tokens.weight
        self.norm = inner.norm.weight
        self.norm_eps = float(inner.norm.variance_epsilon)
        self.lm_head = language_model.lm_head
        first = inner.layers[0].self_attn
        self.head_dim = int(first.head_dim)
        self.num_heads = int(config.num_attention_heads)
        self.num_kv_heads = int(config.num_key_value_heads)
        self.rotary = inner.rotary_emb

    def rope_tables(self, length: int, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """cos/sin for positions ``0..length-1``, ``(length, head_dim)`` each, from the model's own RoPE."""
        positions = torch.arange(length, device=device).unsqueeze(0)
        cos, sin = self.rotary(torch.empty(0, device=device, dtype=dtype), positions)
        return cos[0], sin[0]

    def forward(self, hidden: torch.Tensor, positions: torch.Tensor, caches: list[tuple[torch.Tensor, torch.Tensor]],
                rope: tuple[torch.Tensor, torch.Tensor], kv_index: torch.Tensor,
                padding: torch.Tensor) -> torch.Tensor:
        """``hidden`` ``(b, q, width)`` at cache slots ``positions`` ``(q,)`` -> next-token logits ``(b, vocab)``.

        ``padding`` ``(b,)``: each row's left padding. A row's token at slot ``s`` has position
        ``s - padding`` (its RoPE angle, as if unpadded) and never attends to the row's padding
        slots; a padding slot attends only to itself, so its (unused) values stay finite.
        """
        batch, length, _ = hidden.shape
        heads, kv_heads, head_dim = self.num_heads, self.num_kv_heads, self.head_dim
        groups = heads // kv_heads
        rope_positions = (positions.unsqueeze(0) - padding.unsqueeze(1)).clamp(min=0)
        cos, sin = rope[0][rope_positions].unsqueeze(1), rope[1][rope_positions].unsqueeze(1)
        distance = positions.view(1, length, 1) - kv_index.view(1, 1, -1)
        own_row = kv_index.view(1, 1, -1) >= padding.view(batch, 1, 1)
        causal = ((distance >= 0) & own_row) | (distance == 0)
        masks: dict[int | None, torch.Tensor] = {}
        for index, layer in enumerate(self.layers):
            k_cache, v_cache = caches[index]
            if layer.window not in masks:
                mask = causal if layer.window is None else causal & (distance < layer.window)
                # rows follow q's fold below: per KV head, each query head's positions in turn
                masks[layer.window] = mask.repeat(1, groups, 1).unsqueeze(1)
            x = _rms_norm(hidden, layer.input_norm, layer.eps)
            q, k, v = F.linear(x, layer.qkv, layer.qkv_bias).split(
                [heads * head_dim, kv_heads * head_dim, kv_heads * head_dim], dim=-1)
            q = _rotate(q.view(batch, length, heads, head_dim).transpose(1, 2), cos, sin)
            k = _rotate(k.view(batch, length, kv_heads, head_dim).transpose(1, 2), cos, sin)
            k_cache.index_copy_(2, positions, k)
            v_cache.index_copy_(2, positions, v.view(batch, length, kv_heads, head_dim).transpose(1, 2))
            # grouped-query attention without copying the cache: each KV head's query heads become rows
            folded = q.reshape(batch, kv_heads, groups * length, head_dim)
            out = F.scaled_dot_product_attention(folded, k_cache, v_cache, attn_mask=masks[layer.window],
                                                 scale=layer.scaling)
            out = out.reshape(batch, heads, length, head_dim).transpose(1, 2).reshape(batch, length, heads * head_dim)
            hidden = hidden + layer.o_proj(out)
            x = _rms_norm(hidden, layer.post_norm, layer.post_eps)
            gate, up = F.linear(x, layer.gate_up, layer.gate_up_bias).chunk(2, dim=-1)
            hidden = hidden + layer.down_proj(F.silu(gate) * up)
        last = _rms_norm(hidden[:, -1, :], self.norm, self.norm_eps)
        return self.lm_head(last)


class FusedDecoder(DecoderLoop):
    """Static KV cache + :class:`FusedLlama` forward; the step is compiled with CUDA graphs on GPUs.

    Batches of prompts of different lengths are left-padded (``padding`` in :meth:`prefill`);
    each batch size gets its own cache and compiled graph.

    Attention reads only the first ``span`` cache positions, the smallest power of two (at least
    ``min_span``) that holds the prompt and the answer: at batch 1 the attention kernel runs one
    thread block per KV head, so its time follows the length it reads, and a chat rarely needs the
    whole cache. Each span is one compiled graph, made on first use.
    """

    supports_padding = True

    def __init__(self, language_model: Any, max_cache_len: int = 4096, compile_step: bool | None = None,
                 tune: bool = True, min_span: int = 512) -> None:
        reason = fused_support(language_model)
        if reason is not None:
            raise ValueError(f"the fused decoder cannot run this model: {reason}")
        parameter = next(language_model.parameters())
        self.device, self.dtype = parameter.device, parameter.dtype
        self.max_cache_len = max_cache_len
        self.compile_step = self.device.type == "cuda" if compile_step is None else compile_step
        self.model = FusedLlama(language_model).eval()
        self.min_span = min_span
        self.span = max_cache_len
        self.rope = self.model.rope_tables(max_cache_len, self.device, self.dtype)
        self.kv_index = torch.arange(max_cache_len, device=self.device)
        for table in (*self.rope, self.kv_index):  # graph inputs that never move: no copy per replay
            torch._dynamo.mark_static_address(table)
        self._caches: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        self._active: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._padding = torch.zeros(1, dtype=torch.long, device=self.device)
        self._greedy = compile_decode_step(self._eager_greedy, self.compile_step, tune)
        self._logits = compile_decode_step(self._eager_logits, self.compile_step, tune)

    def _cache(self, batch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        cache = self._caches.get(batch)
        if cache is None:
            shape = (batch, self.model.num_kv_heads, self.max_cache_len, self.model.head_dim)
            cache = []
            for _ in self.model.layers:
                pair = (torch.zeros(shape, device=self.device, dtype=self.dtype),
                        torch.zeros(shape, device=self.device, dtype=self.dtype))
                for tensor in pair:
                    torch._dynamo.mark_static_address(tensor)
                cache.append(pair)
            self._caches[batch] = cache
        return cache

    def release(self, batch: int) -> None:
        """Free the cache of ``batch`` rows (after it did not fit in memory)."""
        self._caches.pop(batch, None)
        self._active = []

    def plan(self, total_length: int) -> None:
        span = self.min_span
        while span < total_length:
            span *= 2
        self.span = min(span, self.max_cache_len)

    def _run(self, hidden: torch.Tensor, positions: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        span = self.span
        caches = [(k[:, :, :span], v[:, :, :span]) for k, v in self._active]
        return self.model(hidden, positions, caches, self.rope, self.kv_index[:span], padding)

    def _eager_logits(self, tokens: torch.Tensor, positions: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        return self._run(F.embedding(tokens, self.model.embed), positions[0], padding).float()

    def _eager_greedy(self, tokens: torch.Tensor, positions: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        return self._run(F.embedding(tokens, self.model.embed), positions[0], padding).argmax(dim=-1)

    def greedy_step(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return self._greedy(tokens, positions, self._padding)

    def logits_step(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return self._logits(tokens, positions, self._padding)

    @torch.inference_mode()
    def prefill(self, inputs_embeds: torch.Tensor, padding: torch.Tensor | None = None) -> torch.Tensor:
        batch, length = inputs_embeds.shape[:2]
        self._check_fits(length)
        if length + 1 > self.span:  # called directly, without tokens() planning the request
            self.plan(length + 1)
        self._active = self._cache(batch)
        if padding is None:
            padding = torch.zeros(batch, dtype=torch.long)
        self._padding = padding.to(device=self.device, dtype=torch.long)
        positions = torch.arange(length, device=inputs_embeds.device)
        return self._run(inputs_embeds.to(self.dtype), positions, self._padding).float()
