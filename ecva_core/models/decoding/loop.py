"""The decode loop the fast decoders share: prefill once, then a one-token step, compiled with CUDA graphs.

``generate`` re-plans every step in Python; for chat at batch 1 that overhead, not the GPU, sets
the speed. A :class:`DecoderLoop` prefills eagerly, then runs the one-token step through
``torch.compile`` against a cache whose tensors never move, so each step is one graph replay. On
CPU (or with ``compile_step=False``) the same loop runs eagerly.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any

import torch


def compile_decode_step(fn: Callable[..., Any], enabled: bool, tune: bool = True) -> Callable[..., Any]:
    """``fn`` through ``torch.compile`` with CUDA graphs (and ``tune``: coordinate-descent tuning), or as is.

    With tuning, inductor turns each batch-1 matrix-vector product into a reduction kernel it
    tunes for the shape; its own source notes that only this reaches peak memory bandwidth.
    The price is a longer first compile (once per process and batch size). ``dynamic=False`` keeps
    one specialised graph per batch size, so batch 1 keeps its matrix-vector kernels after a batch 8.
    """
    if not enabled:
        return fn
    options = {"triton.cudagraphs": True, "coordinate_descent_tuning": tune}
    return torch.compile(fn, fullgraph=True, dynamic=False, options=options)


class _HostCopy:
    """A device tensor's copy into pinned host memory, waited for on its own (not the whole stream)."""

    def __init__(self, tensor: torch.Tensor) -> None:
        if tensor.device.type != "cuda":
            self.value, self.done = tensor, None
            return
        self.value = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
        self.value.copy_(tensor, non_blocking=True)
        self.done = torch.cuda.Event()
        self.done.record()

    def wait(self) -> torch.Tensor:
        if self.done is not None:
            self.done.synchronize()
        return self.value


class DecoderLoop(ABC):
    """Prefill + one-token steps + sampling + incremental text; subclasses own the model and the cache."""

    max_cache_len: int
    compile_step: bool
    supports_padding: bool = False

    @abstractmethod
    def prefill(self, inputs_embeds: torch.Tensor, padding: torch.Tensor | None = None) -> torch.Tensor:
        """Fill the cache with the prompt; return the logits for the first new token ``(b, vocab)``.

        ``padding`` ``(b,)``: how many leading positions of each row are left padding (batched
        prompts of different lengths); only decoders with ``supports_padding`` take it.
        """

    @abstractmethod
    def greedy_step(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Next token ids ``(b,)`` for ``tokens`` ``(b, 1)`` at ``positions`` ``(b, 1)``."""

    @abstractmethod
    def logits_step(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Next-token logits ``(b, vocab)`` in float32."""

    @staticmethod
    def pick(logits: torch.Tensor, temperature: float = 0.0, top_p: float = 1.0) -> torch.Tensor:
        """Next token per row: argmax at temperature 0, else nucleus sampling."""
        if temperature <= 0:
            return logits.argmax(dim=-1)
        probs = torch.softmax(logits / temperature, dim=-1)
        if top_p < 1.0:
            sorted_probs, order = probs.sort(dim=-1, descending=True)
            keep = sorted_probs.cumsum(-1) - sorted_probs < top_p
            sorted_probs = sorted_probs * keep
            probs = torch.zeros_like(probs).scatter_(-1, order, sorted_probs)
        return torch.multinomial(probs, 1).squeeze(-1)

    @abstractmethod
    def release(self, batch: int) -> None:
        """Free the cache of ``batch`` rows (after it did not fit in memory)."""

    @abstractmethod
    def plan(self, total_length: int) -> None:
        """Called before a prefill with the positions the request may reach (prompt + answer)."""

    def _check_fits(self, length: int) -> None:
        if length >= self.max_cache_len:
            raise ValueError(f"prompt of {length} tokens does not fit the static cache of {self.max_cache_len}")

    @torch.inference_mode()
    def tokens(self, inputs_embeds: torch.Tensor, max_new_tokens: int, eos_token_id: int | None = None,
               temperature: float = 0.0, top_p: float = 1.0, stop_at_eos: bool = True,
               reserve: int | None = None, padding: torch.Tensor | None = None) -> Iterator[torch.Tensor]:
        """Yield the next token ids ``(b,)`` one step at a time, as CPU tensors.

        Each token is copied to the host before the next step is queued, and the next step is queued
        before we wait for that copy: the GPU computes token n+1 while the caller handles token n.
        ``reserve``: the positions to plan for, if not prompt + ``max_new_tokens`` (warm-ups);
        ``padding``: left padding per row (see :meth:`prefill`).
        """
        batch, length = inputs_embeds.shape[:2]
        budget = min(max_new_tokens, self.max_cache_len - length)
        self.plan(max(reserve or 0, length + budget))
        token = self.pick(self.prefill(inputs_embeds, padding), temperature, top_p)
        positions = torch.full((batch, 1), length, dtype=torch.long, device=inputs_embeds.device)
        for produced in range(1, budget + 1):
            on_host = _HostCopy(token)
            if produced < budget:
                if self.compile_step:
                    torch.compiler.cudagraph_mark_step_begin()
                if temperature <= 0:
                    token = self.greedy_step(token.view(batch, 1), positions).clone()
                else:
                    token = self.pick(self.logits_step(token.view(batch, 1), positions), temperature, top_p).clone()
                positions += 1
            value = on_host.wait()
            yield value
            if stop_at_eos and eos_token_id is not None and bool((value == eos_token_id).all()):
                return

    def stream_text(self, tokenizer: Any, inputs_embeds: torch.Tensor, max_new_tokens: int,
                    temperature: float = 0.0, top_p: float = 1.0) -> Iterator[str]:
        """Decode batch row 0 incrementally, holding back incomplete UTF-8 sequences."""
        ids: list[int] = []
        sent = ""
        eos = tokenizer.eos_token_id
        for token in self.tokens(inputs_embeds, max_new_tokens, eos, temperature, top_p):
            value = int(token[0])
            if value == eos:
                break
            ids.append(value)
            text = tokenizer.decode(ids, skip_special_tokens=True)
            if text.endswith("\ufffd"):
                continue
            if len(text) > len(sent) and text.startswith(sent):
                yield text[len(sent):]
                sent = text
        final = tokenizer.decode(ids, skip_special_tokens=True)
        if len(final) > len(sent) and final.startswith(sent):
            yield final[len(sent):]
