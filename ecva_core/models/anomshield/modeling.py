"""AnomShield put together: vision tower -> mamba_scan projector -> causal LM.

The language model is any transformers causal LM (Mistral-7B-Instruct in production); the video
tokens replace the ``<video>`` placeholder of the prompt as input embeddings. Module names are
``language_model``, ``vision_tower`` and ``mm_projector``; :func:`official_to_local` is the one
explicit mapping from the official state-dict names (``model.mm_projector.*`` ...) to ours.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from ecva_core.models.anomshield.config import VIDEO_TOKEN, AnomShieldConfig
from ecva_core.models.anomshield.projector import MambaScanProjector
from ecva_core.models.anomshield.vision import CLIPVisionTower, preprocess_frames

_PEFT_PREFIXES = ("base_model.model.", "base_model.")


def official_to_local(key: str) -> str:
    """Map an official AnomShield parameter name to this implementation's name.

    ``model.mm_projector.X`` -> ``mm_projector.X``; ``model.vision_tower.X`` -> ``vision_tower.X``;
    everything else belongs to the LM (``model.layers...``, ``lm_head...``) -> ``language_model.<key>``.
    PEFT wrappers' ``base_model.model.`` prefixes are dropped first.
    """
    for prefix in _PEFT_PREFIXES:
        if key.startswith(prefix):
            key = key[len(prefix):]
            break
    if key.startswith("model.model."):
        key = key[len("model."):]
    for part in ("mm_projector.", "vision_tower."):
        if key.startswith("model." + part):
            return key[len("model."):]
    return "language_model." + key


def local_to_official(key: str) -> str:
    """Inverse of :func:`official_to_local` (used to write checkpoints in the official layout)."""
    if key.startswith(("mm_projector.", "vision_tower.")):
        return "model." + key
    return key[len("language_model."):]


class AnomShieldModel(nn.Module):
    """The assembled model plus its tokenizer and frame preprocessing."""

    def __init__(self, config: AnomShieldConfig, language_model: nn.Module, vision_tower: CLIPVisionTower,
                 tokenizer: Any, image_processor: Any) -> None:
        super().__init__()
        self.config = config
        self.language_model = language_model
        self.vision_tower = vision_tower
        vision_width = config.mm_hidden_size or vision_tower.hidden_size
        self.mm_projector = MambaScanProjector(vision_width, config.hidden_size, config.mamba_depth,
                                               config.mlp_depth)
        self.tokenizer = tokenizer
        self.image_processor = image_processor

    @property
    def device(self) -> torch.device:
        return next(self.language_model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.language_model.parameters()).dtype

    def load_official_projector(self, state: dict[str, torch.Tensor], source: str) -> None:
        """Load ``model.mm_projector.*`` weights; every projector parameter must be present."""
        from ecva_core.errors import ModelLoadError

        local = {official_to_local(k): v for k, v in state.items()}
        projector = {k[len("mm_projector."):]: v for k, v in local.items() if k.startswith("mm_projector.")}
        expected = set(self.mm_projector.state_dict())
        missing = sorted(expected - set(projector))
        if missing:
            raise ModelLoadError(f"{source} lacks mamba_scan projector weights {missing[:4]}... "
                                 "(expected keys model.mm_projector.*)")
        try:
            self.mm_projector.load_state_dict({k: projector[k] for k in expected})
        except RuntimeError as exc:
            raise ModelLoadError(f"{source}: projector weights do not fit this config: {exc}") from exc

    def pixel_values(self, images: np.ndarray) -> torch.Tensor:
        return preprocess_frames(images, self.image_processor, self.config.image_aspect_ratio)

    @torch.no_grad()
    def encode_video(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``(T, 3, S, S)`` -> video tokens ``(T * 16, lm_width)`` in the LM's dtype."""
        features = self.vision_tower(pixel_values)
        projector_param = next(self.mm_projector.parameters())
        tokens = self.mm_projector(features.unsqueeze(0).to(projector_param.dtype))
        return tokens[0].to(device=self.device, dtype=self.dtype)

    def prompt_ids(self, prompt: str) -> tuple[list[int], list[int]]:
        """Token ids before and after the ``<video>`` placeholder (BOS only at the very start)."""
        if prompt.count(VIDEO_TOKEN) != 1:
            raise ValueError(f"the prompt must contain exactly one {VIDEO_TOKEN} placeholder")
        head, tail = prompt.split(VIDEO_TOKEN)
        before = self.tokenizer(head, add_special_tokens=True).input_ids
        after = self.tokenizer(tail, add_special_tokens=False).input_ids
        return list(before), list(after)

    @torch.no_grad()
    def inputs_embeds(self, prompt: str, video_tokens: torch.Tensor) -> torch.Tensor:
        """Embeddings of the prompt with the video tokens spliced in at the placeholder: ``(1, L, width)``."""
        before, after = self.prompt_ids(prompt)
        embed = self.language_model.get_input_embeddings()
        ids = torch.tensor(before + after, dtype=torch.long, device=self.device)
        text = embed(ids)
        return torch.cat([text[: len(before)], video_tokens.to(text.dtype), text[len(before):]]).unsqueeze(0)

    def pad_left(self, rows: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Stack ``(1, L_i, width)`` prompts into ``(b, max L, width)`` with zero embeddings on the left.

        Returns the batch and each row's padding length ``(b,)`` (on the CPU).
        """
        longest = max(row.shape[1] for row in rows)
        padding = torch.tensor([longest - row.shape[1] for row in rows], dtype=torch.long)
        batch = torch.cat([torch.nn.functional.pad(row, (0, 0, longest - row.shape[1], 0)) for row in rows])
        return batch, padding

    @torch.no_grad()
    def generate_batch(self, inputs_embeds: torch.Tensor, padding: torch.Tensor, max_new_tokens: int,
                       temperature: float, top_p: float) -> list[list[int]]:
        """Each left-padded row's answer token ids (up to its first EOS) from one ``generate`` call."""
        from ecva_core.models.streaming import sampling_kwargs

        tokenizer = self.tokenizer
        positions = torch.arange(inputs_embeds.shape[1])
        mask = (positions.unsqueeze(0) >= padding.unsqueeze(1)).long().to(self.device)
        with torch.inference_mode():
            out = self.language_model.generate(
                inputs_embeds=inputs_embeds, attention_mask=mask, max_new_tokens=max_new_tokens,
                pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
                eos_token_id=tokenizer.eos_token_id, **sampling_kwargs(temperature, top_p))
        rows = out.tolist()
        eos = tokenizer.eos_token_id
        return [row[: row.index(eos)] if eos in row else row for row in rows]

    def stream_generate(self, inputs_embeds: torch.Tensor, max_new_tokens: int, temperature: float,
                        top_p: float) -> Iterator[str]:
        """Stream the answer from transformers ``generate`` (the dynamic-cache path)."""
        from ecva_core.models.streaming import sampling_kwargs, stream_generate

        tokenizer = self.tokenizer
        kwargs: dict[str, Any] = {
            "inputs_embeds": inputs_embeds,
            "attention_mask": torch.ones(inputs_embeds.shape[:2], dtype=torch.long, device=self.device),
            "max_new_tokens": max_new_tokens,
            "pad_token_id": tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            **sampling_kwargs(temperature, top_p),
        }
        yield from stream_generate(self.language_model, tokenizer, kwargs)
