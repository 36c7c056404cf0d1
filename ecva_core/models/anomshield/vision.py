"""CLIP ViT-L/14 (224 px) vision tower: penultimate-layer patch features, CLS dropped.

The module wraps ``CLIPVisionModel`` under the attribute ``vision_tower`` so its parameters are
named like the official ``CLIPVisionTower`` (``vision_tower.vision_model....``). Frames are
padded to a square with the CLIP mean colour when the checkpoint says ``image_aspect_ratio=pad``
(the setting of the official fine-tuning script), then resized and normalised by CLIP's processor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class CLIPVisionTower(nn.Module):
    """Frame encoder: ``(T, 3, H, W)`` pixels -> ``(T, patches, width)`` features."""

    def __init__(self, vision_model: nn.Module, select_layer: int = -2, select_feature: str = "patch") -> None:
        super().__init__()
        if select_feature not in ("patch", "cls_patch"):
            raise ValueError(f"mm_vision_select_feature must be patch or cls_patch, not {select_feature!r}")
        self.vision_tower = vision_model
        self.select_layer = select_layer
        self.select_feature = select_feature

    @property
    def hidden_size(self) -> int:
        return int(self.vision_tower.config.hidden_size)

    @property
    def num_patches_per_side(self) -> int:
        cfg = self.vision_tower.config
        return int(cfg.image_size // cfg.patch_size)

    @torch.no_grad()
    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        param = next(self.vision_tower.parameters())
        out = self.vision_tower(pixel_values.to(device=param.device, dtype=param.dtype), output_hidden_states=True)
        features = out.hidden_states[self.select_layer]
        return features[:, 1:] if self.select_feature == "patch" else features


def build_vision_model(source: str | Path | Any, attn_implementation: str = "sdpa") -> nn.Module:
    """Load ``CLIPVisionModel`` from a folder/hub id, or build it from a ``CLIPVisionConfig``."""
    from transformers import CLIPVisionConfig, CLIPVisionModel

    if isinstance(source, CLIPVisionConfig):
        source._attn_implementation = attn_implementation
        return CLIPVisionModel(source)
    return CLIPVisionModel.from_pretrained(str(source), attn_implementation=attn_implementation)


def default_image_processor(image_size: int = 224) -> Any:
    """CLIP's preprocessing (shortest side resize, centre crop, CLIP mean/std) without a download."""
    from transformers import CLIPImageProcessor

    return CLIPImageProcessor(
        size={"shortest_edge": image_size},
        crop_size={"height": image_size, "width": image_size},
        image_mean=list(CLIP_MEAN),
        image_std=list(CLIP_STD),
        do_convert_rgb=True,
    )


def load_image_processor(source: str | Path | None, image_size: int) -> Any:
    """The tower's own ``preprocessor_config.json`` when present, else CLIP's defaults at ``image_size``."""
    from transformers import CLIPImageProcessor

    if source is not None and (Path(str(source)) / "preprocessor_config.json").is_file():
        return CLIPImageProcessor.from_pretrained(str(source))
    return default_image_processor(image_size)


def pad_to_square(image: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    """Centre ``image`` (H, W, 3) on a square canvas filled with ``colour`` (official expand2square)."""
    height, width = image.shape[:2]
    if height == width:
        return image
    side = max(height, width)
    canvas = np.empty((side, side, 3), dtype=image.dtype)
    canvas[...] = np.asarray(colour, dtype=image.dtype)
    top, left = (side - height) // 2, (side - width) // 2
    canvas[top : top + height, left : left + width] = image
    return canvas


def preprocess_frames(images: np.ndarray, processor: Any, aspect_ratio: str = "pad") -> torch.Tensor:
    """``(T, H, W, 3)`` uint8 RGB -> ``(T, 3, S, S)`` float pixel values for the tower."""
    frames = list(images)
    if aspect_ratio == "pad":
        colour = tuple(int(x * 255) for x in processor.image_mean)
        frames = [pad_to_square(frame, colour) for frame in frames]
    return processor(images=frames, return_tensors="pt")["pixel_values"]
