"""AnomShield's checkpoint configuration: the ``mm_*`` fields of ``config.json``.

The official training script (Dulpy/ECVA ``AnomShield/train.py``) saves one ``config.json`` that
is a Mistral config plus the multimodal fields below; this module reads them and splits the
language-model part off so transformers can build the LM from it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecva_core.errors import ModelLoadError

# Fields the official code adds to the LM config (kept out of the LM's own config).
MM_FIELDS = (
    "mm_vision_tower",
    "vision_tower",
    "mm_projector_type",
    "mm_hidden_size",
    "mm_vision_select_layer",
    "mm_vision_select_feature",
    "mm_use_im_start_end",
    "mm_use_im_patch_token",
    "mm_projector_lr",
    "use_mm_proj",
    "tune_mm_mlp_adapter",
    "freeze_mm_mlp_adapter",
    "image_aspect_ratio",
    "num_frames",
    "tokenizer_padding_side",
    "tokenizer_model_max_length",
)
SUPPORTED_PROJECTORS = ("mamba_scan",)
VIDEO_TOKEN = "<video>"


@dataclass
class AnomShieldConfig:
    """What the loader needs to rebuild the model; defaults are the official ones."""

    vision_tower: str
    hidden_size: int
    mm_hidden_size: int | None = None
    mm_projector_type: str = "mamba_scan"
    mm_vision_select_layer: int = -2
    mm_vision_select_feature: str = "patch"
    num_frames: int = 16
    image_aspect_ratio: str = "pad"
    tune_mm_mlp_adapter: bool = False
    mm_use_im_start_end: bool = False
    mm_use_im_patch_token: bool = False
    model_base: str | None = None
    mamba_depth: int = 1
    mlp_depth: int = 2
    text_config: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str = "config.json") -> AnomShieldConfig:
        tower = raw.get("mm_vision_tower") or raw.get("vision_tower")
        if not tower:
            raise ModelLoadError(f"{where} has no mm_vision_tower: this is not an AnomShield checkpoint "
                                 "(expected the config written by AnomShield/train.py)")
        projector = raw.get("mm_projector_type", "mamba_scan")
        if projector not in SUPPORTED_PROJECTORS:
            raise ModelLoadError(f"{where}: mm_projector_type={projector!r} is not supported "
                                 f"(supported: {', '.join(SUPPORTED_PROJECTORS)})")
        if "hidden_size" not in raw:
            raise ModelLoadError(f"{where} has no hidden_size (the language model width)")
        text = {k: v for k, v in raw.items() if k not in MM_FIELDS}
        text["model_type"] = "mistral"
        text.pop("architectures", None)
        text.pop("auto_map", None)
        return cls(
            vision_tower=str(tower),
            hidden_size=int(raw["hidden_size"]),
            mm_hidden_size=raw.get("mm_hidden_size"),
            mm_projector_type=projector,
            mm_vision_select_layer=int(raw.get("mm_vision_select_layer", -2)),
            mm_vision_select_feature=str(raw.get("mm_vision_select_feature", "patch")),
            num_frames=int(raw.get("num_frames") or 16),
            image_aspect_ratio=str(raw.get("image_aspect_ratio") or "pad"),
            tune_mm_mlp_adapter=bool(raw.get("tune_mm_mlp_adapter", False)),
            mm_use_im_start_end=bool(raw.get("mm_use_im_start_end", False)),
            mm_use_im_patch_token=bool(raw.get("mm_use_im_patch_token", False)),
            model_base=raw.get("_name_or_path") or None,
            mamba_depth=int(raw.get("mamba_depth", 1)),
            mlp_depth=int(raw.get("mlp_depth", 2)),
            text_config=text,
        )

    @classmethod
    def from_folder(cls, folder: Path) -> AnomShieldConfig:
        path = folder / "config.json"
        if not path.is_file():
            raise ModelLoadError(f"{folder} has no config.json; point anomshield: at the training output folder")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelLoadError(f"{path} is not valid JSON: {exc}") from exc
        return cls.from_dict(raw, where=str(path))

    def to_official_dict(self) -> dict[str, Any]:
        """The config.json content the official trainer would write (used by test builders)."""
        out = dict(self.text_config)
        out.update({
            "model_type": "AnomShield_mistral",
            "architectures": ["AnomShieldMistralForCausalLM"],
            "mm_vision_tower": self.vision_tower,
            "mm_hidden_size": self.mm_hidden_size,
            "mm_projector_type": self.mm_projector_type,
            "mm_vision_select_layer": self.mm_vision_select_layer,
            "mm_vision_select_feature": self.mm_vision_select_feature,
            "num_frames": self.num_frames,
            "image_aspect_ratio": self.image_aspect_ratio,
            "tune_mm_mlp_adapter": self.tune_mm_mlp_adapter,
            "mm_use_im_start_end": self.mm_use_im_start_end,
            "mm_use_im_patch_token": self.mm_use_im_patch_token,
            "use_mm_proj": True,
        })
        if self.model_base:
            out["_name_or_path"] = self.model_base
        return out
