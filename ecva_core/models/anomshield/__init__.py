"""AnomShield (ECVA's video LLM) as a :class:`~ecva_core.models.base.ChatModel`.

Our own implementation of the architecture in Dulpy/ECVA: CLIP ViT-L/14 -> mamba_scan projector
-> Mistral-7B-Instruct, loading checkpoints in the official training-output layout.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ecva_core.models.base import (
    BatchRequest,
    CachedClip,
    ChatMessage,
    ChatModel,
    GenerationOptions,
    ModelOptions,
    gpu_slot,
)

log = logging.getLogger(__name__)


class AnomShieldChat(ChatModel):
    """Chat with an AnomShield checkpoint; the clip's video tokens are cached per session."""

    def __init__(self, spec: str, model: Any, options: ModelOptions) -> None:
        super().__init__(spec, num_frames=options.num_frames or model.config.num_frames)
        self.max_batch_size = max(1, int(options.max_batch_size))
        self.model = model
        self.options = options
        self.device = str(model.device)
        self._decoder: Any = None
        self._decoder_lock = threading.Lock()
        self.decoder_error: str | None = None
        self.batch_decoder_error: str | None = None

    @classmethod
    def load(cls, spec: str, path: str | Path, options: ModelOptions, model_base: str | None = None) -> AnomShieldChat:
        from ecva_core.models.anomshield.loader import load_anomshield

        chat = cls(spec, load_anomshield(path, options, model_base=model_base), options)
        if options.static_cache:
            chat.warm_decoder()
        return chat

    def video_tokens(self, clip: CachedClip) -> Any:
        tokens = clip.encoded.get("anomshield")
        if tokens is None:
            start = time.perf_counter()
            tokens = self.model.encode_video(self.model.pixel_values(clip.frames.images))
            clip.encoded["anomshield"] = tokens
            self.last_timings["encode_s"] = time.perf_counter() - start
        else:
            self.last_timings["encode_s"] = 0.0
        return tokens

    def _stream(self, clip: CachedClip, messages: list[ChatMessage], options: GenerationOptions) -> Iterator[str]:
        from ecva_core.models.anomshield.conversation import build_prompt

        slot = gpu_slot(self.device, self.options.max_concurrency)
        with slot:
            embeds = self.model.inputs_embeds(build_prompt(messages), self.video_tokens(clip))
            decoder = self.fast_decoder_for(embeds.shape[1] + options.max_new_tokens)
            if decoder is not None:
                with self._decoder_lock:  # one static cache: its requests take turns, whatever max_concurrency
                    yield from decoder.stream_text(self.model.tokenizer, embeds, options.max_new_tokens,
                                                   options.temperature, options.top_p)
            else:
                yield from self.model.stream_generate(embeds, options.max_new_tokens, options.temperature,
                                                      options.top_p)

    def answer_batch(self, requests: Sequence[BatchRequest], **generation: Any) -> list[str]:
        """Answer ``max_batch_size`` questions per forward pass; each distinct clip is encoded once.

        Prompts are left-padded to the longest of their batch; greedy answers are those of
        :meth:`answer`. With ``static_cache`` the fused decoder runs the batch (see
        :meth:`_decode_rows`), otherwise ``generate`` with its dynamic cache.
        """
        from ecva_core.models.anomshield.conversation import build_prompt

        options = GenerationOptions.from_kwargs(generation)
        encoded: dict[int, Any] = {}  # id(frames) -> video tokens; the requests keep the frames alive
        answers: list[str] = []
        for start in range(0, len(requests), self.max_batch_size):
            chunk = requests[start : start + self.max_batch_size]
            with gpu_slot(self.device, self.options.max_concurrency):
                rows = []
                for request in chunk:
                    if id(request.frames) not in encoded:
                        encoded[id(request.frames)] = self.video_tokens(self.clip(request.frames))
                    prompt = build_prompt([ChatMessage("user", request.question)])
                    rows.append(self.model.inputs_embeds(prompt, encoded[id(request.frames)]))
                embeds, padding = self.model.pad_left(rows)
                ids: list[list[int]] | None = None
                decoder = self.fast_decoder_for(embeds.shape[1] + options.max_new_tokens)
                if decoder is not None and len(chunk) > 1 and self.batch_decoder_error is not None:
                    decoder = None
                if decoder is not None and (decoder.supports_padding or not bool(padding.any())):
                    ids = self._decode_rows(decoder, embeds, padding, options)
                if ids is None:
                    ids = self.model.generate_batch(embeds, padding, options.max_new_tokens, options.temperature,
                                                    options.top_p)
            answers += [self.model.tokenizer.decode(row, skip_special_tokens=True) for row in ids]
        return answers

    def _decode_rows(self, decoder: Any, embeds: Any, padding: Any,
                     options: GenerationOptions) -> list[list[int]] | None:
        """Each row's answer ids (up to its EOS) from the static-cache decoder; ``None`` if it does not fit.

        A compiled decoder has one graph per batch size, so a partial batch (more than one row) is
        filled up to ``max_batch_size`` with copies of its last row, whose answers are dropped:
        decoding reads the weights once per step whatever the rows, and a new size costs a compile.
        When a batch's static cache does not fit in GPU memory, the cache is freed and batches go to
        ``generate`` from then on (``batch_decoder_error`` says why); a single row still raises.
        """
        import torch

        wanted = embeds.shape[0]
        if decoder.compile_step and 1 < wanted < self.max_batch_size:
            fill = self.max_batch_size - wanted
            embeds = torch.cat([embeds, embeds[-1:].expand(fill, -1, -1)])
            padding = torch.cat([padding, padding[-1:].expand(fill)])
        eos = self.model.tokenizer.eos_token_id
        ids: list[list[int]] = [[] for _ in range(wanted)]
        open_rows = set(range(wanted))
        with self._decoder_lock:
            try:
                for step in decoder.tokens(embeds, options.max_new_tokens, eos, options.temperature, options.top_p,
                                           stop_at_eos=False, padding=padding):
                    for row in sorted(open_rows):
                        value = int(step[row])
                        if value == eos:
                            open_rows.discard(row)
                        else:
                            ids[row].append(value)
                    if not open_rows:
                        break
            except torch.cuda.OutOfMemoryError as exc:
                if embeds.shape[0] == 1:
                    raise
                decoder.release(embeds.shape[0])
                torch.cuda.empty_cache()
                self.batch_decoder_error = f"a batch of {embeds.shape[0]} does not fit the static cache: {exc}"
                log.warning("%s; batches use transformers generate from now on", self.batch_decoder_error)
                return None
        return ids

    def decoder(self) -> Any:
        """The static-cache decoder (compiled on GPUs), built on first use and kept for the session.

        The fused decoder for Llama-family LMs (Mistral in AnomShield), else transformers' static
        cache; ``fused_decoder=False`` forces the latter.
        """
        if self._decoder is None:
            from ecva_core.models.decoding import fast_decoder

            length = int(self.options.extra.get("max_cache_len", 4096))
            fused = str(self.options.extra.get("fused_decoder", True)).lower() not in ("0", "false", "no")
            self._decoder = fast_decoder(self.model.language_model, max_cache_len=length, fused=fused)
        return self._decoder

    def fast_decoder_for(self, total_length: int) -> Any:
        """The fast decoder when it is on, works here and holds prompt + answer; ``None`` means ``generate``.

        A request larger than the static cache goes to ``generate`` rather than having its answer cut.
        """
        if not self.options.static_cache or self.decoder_error is not None:
            return None
        decoder = self.decoder()
        return decoder if total_length <= decoder.max_cache_len else None

    def warm_decoder(self) -> None:
        """Compile and record the decode step now, so the first answer does not wait for it.

        Warmed for a first question about a clip (its video tokens, ~100 prompt tokens and the
        default answer length); longer conversations compile their wider attention span on first use.
        """
        import torch

        decoder = self.decoder()
        if not decoder.compile_step:
            return
        log.info("compiling the decode step once for this process (about a minute on a GPU)")
        embed = self.model.language_model.get_input_embeddings()
        ids = torch.full((1, 8), self.model.tokenizer.bos_token_id or 1, dtype=torch.long, device=self.model.device)
        with torch.inference_mode():
            embeds = embed(ids)
        video_tokens = self.num_frames * (self.model.vision_tower.num_patches_per_side // 4) ** 2
        reserve = video_tokens + 100 + GenerationOptions().max_new_tokens
        try:
            for _ in range(2):  # the first run compiles, the second records the CUDA graph
                for _token in decoder.tokens(embeds, 4, stop_at_eos=False, reserve=reserve):
                    pass
        except Exception as exc:  # a compiler or driver failure of any kind: chat still works without it
            self.decoder_error = f"{type(exc).__name__}: {str(exc)[:300]}"
            log.warning("fast decoding is unavailable (%s); answers use transformers generate",
                        self.decoder_error)

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        decoder = "generate"
        if self.options.static_cache and self.decoder_error is None:
            decoder = type(self.decoder()).__name__
        info.update(device=self.device, dtype=str(self.model.dtype).replace("torch.", ""), decoder=decoder,
                    max_batch_size=self.max_batch_size,
                    video_tokens_per_frame=(self.model.vision_tower.num_patches_per_side // 4) ** 2)
        if self.batch_decoder_error:
            info["batch_decoder_error"] = self.batch_decoder_error
        return info
