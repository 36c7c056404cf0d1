"""Load an AnomShield checkpoint saved in the official training-output layout.

Layouts (as written by Dulpy/ECVA ``AnomShield/train.py``):

* LoRA fine-tune: ``config.json`` (Mistral config + ``mm_*`` fields), ``adapter_config.json`` +
  ``adapter_model.safetensors|bin`` (PEFT), ``non_lora_trainables.bin`` (projector weights, keys
  ``base_model.model.model.mm_projector.*``); the base LM comes from ``model_base``.
* Full fine-tune: ``config.json`` + the LM weights (``model*.safetensors`` / ``pytorch_model*.bin``)
  including ``model.mm_projector.*``.
* Projector only (pre-training stage): ``config.json`` + ``mm_projector.bin``, base LM from ``model_base``.

The CLIP tower is loaded from ``mm_vision_tower`` (a folder, or a hub id), as the official code does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ecva_core.errors import ModelLoadError
from ecva_core.models.anomshield.config import AnomShieldConfig
from ecva_core.models.base import ModelOptions

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json")
_WEIGHT_PATTERNS = ("model*.safetensors", "pytorch_model*.bin")


def _load_bin(path: Path) -> dict[str, Any]:
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelLoadError(f"cannot read {path}: {exc}") from exc


def _projector_state(folder: Path) -> tuple[dict[str, Any], str]:
    """Find the projector weights: non_lora_trainables.bin, mm_projector.bin, or the full weights."""
    for name in ("non_lora_trainables.bin", "mm_projector.bin"):
        if (folder / name).is_file():
            return _load_bin(folder / name), str(folder / name)
    state: dict[str, Any] = {}
    for pattern in _WEIGHT_PATTERNS:
        for path in sorted(folder.glob(pattern)):
            if path.suffix == ".safetensors":
                from safetensors import safe_open

                with safe_open(str(path), framework="pt") as handle:
                    names = [k for k in handle.keys() if ".mm_projector." in k]  # noqa: SIM118
                    state.update({k: handle.get_tensor(k) for k in names})
            else:
                state.update({k: v for k, v in _load_bin(path).items() if ".mm_projector." in k})
    if not state:
        raise ModelLoadError(f"{folder} has no projector weights: expected non_lora_trainables.bin, "
                             "mm_projector.bin or model weights containing model.mm_projector.*")
    return state, str(folder)


def has_lm_weights(folder: Path) -> bool:
    return any(any(folder.glob(p)) for p in _WEIGHT_PATTERNS)


def _resolve_local(name: str, folder: Path) -> str:
    """A relative path in config.json is tried next to the checkpoint, then from the working directory."""
    for candidate in (Path(name).expanduser(), folder / name, folder.parent / name):
        if candidate.exists():
            return str(candidate.resolve())
    return name


def resolve_model_base(folder: Path, cfg: AnomShieldConfig, model_base: str | None) -> str:
    """Where the base LM lives: the explicit option, else config.json's ``_name_or_path``, else PEFT's record."""
    candidates = [model_base, cfg.model_base]
    adapter_cfg = folder / "adapter_config.json"
    if adapter_cfg.is_file():
        candidates.append(json.loads(adapter_cfg.read_text(encoding="utf-8")).get("base_model_name_or_path"))
    tried = []
    for candidate in candidates:
        if not candidate:
            continue
        local = _resolve_local(candidate, folder)
        usable = Path(local).exists() or candidate.count("/") == 1  # a folder here, or a hub id org/name
        if usable and Path(local).resolve() != folder.resolve():
            return local
        tried.append(candidate)
    named = f" (config names {', '.join(map(repr, tried))}, which is not a folder here)" if tried else ""
    raise ModelLoadError(f"{folder} needs a base language model (Mistral-7B-Instruct){named}: "
                         "use anomshield:PATH@BASE_LM_PATH or load_model(..., model_base=PATH)")


def resolve_vision_tower(cfg: AnomShieldConfig, folder: Path, override: str | None) -> str:
    name = override or cfg.vision_tower
    local = _resolve_local(name, folder)
    if Path(local).exists() or "/" in name:
        return local
    return f"openai/{name}"


def _pretrained(loader: Any, source: str, what: str, hint: str, **kwargs: Any) -> Any:
    """Call a transformers ``from_pretrained`` and turn its failures into ModelLoadError."""
    import torch

    try:
        return loader(source, **kwargs)
    except torch.cuda.OutOfMemoryError as exc:
        raise ModelLoadError(f"out of GPU memory loading the {what} from {source}: use dtype='bf16' or "
                             "'fp16', device_map='auto' to spread over GPUs, or a larger GPU") from exc
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load the {what} from {source!r}: {exc}. {hint}") from exc


def load_anomshield(path: str | Path, options: ModelOptions, model_base: str | None = None) -> Any:
    """Build :class:`AnomShieldModel` from ``path`` on the device and dtype of ``options``."""
    from ecva_core.models.hub import fetch_model, is_hub_id

    spec = f"anomshield:{path}"
    hub = options.extra.get("hub")
    folder = Path(path).expanduser()
    if is_hub_id(str(path)):  # anomshield:org/name, a checkpoint on a hub
        folder = fetch_model(str(path), what=spec, spec=spec, local_hint=f"anomshield:DIR/{folder.name}",
                             hub=hub).path
    if not folder.is_dir():
        raise ModelLoadError(f"AnomShield checkpoint folder not found: {folder}. Point anomshield:PATH at a "
                             "training output folder (config.json with mm_* fields, adapter or weights)")
    cfg = AnomShieldConfig.from_folder(folder)
    is_lora = (folder / "adapter_config.json").is_file()
    lm_source = str(folder) if (not is_lora and has_lm_weights(folder)) else resolve_model_base(
        folder, cfg, model_base)
    lm_source = str(fetch_model(lm_source, what=f"the base language model of {spec}", spec=spec,
                                local_hint=f"{spec}@DIR/{lm_source}", hub=hub).path)
    # Both hub parts are resolved before any weights load, so a missing one fails in seconds.
    tower_source = resolve_vision_tower(cfg, folder, options.extra.get("vision_tower"))
    tower_hint = f"{folder.parent / tower_source} (mm_vision_tower is looked up next to the checkpoint)"
    tower_source = str(fetch_model(tower_source, what=f"the CLIP vision tower of {spec}", spec=spec,
                                   local_hint=tower_hint, hub=hub).path)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, MistralConfig

    from ecva_core.models.anomshield.modeling import AnomShieldModel
    from ecva_core.models.anomshield.vision import CLIPVisionTower, build_vision_model, load_image_processor

    device = options.resolved_device()
    dtype = options.resolved_dtype(device)
    hint = ("Download Mistral-7B-Instruct-v0.2 and pass its folder as the base "
            "(anomshield:PATH@BASE), or allow hub access (unset HF_HUB_OFFLINE).")
    text_config = MistralConfig.from_dict({k: v for k, v in cfg.text_config.items() if k != "_name_or_path"})
    load_kwargs: dict[str, Any] = {"config": text_config, "dtype": dtype,
                                   "attn_implementation": options.attn_implementation}
    if options.device_map or device.startswith("cuda"):
        load_kwargs["device_map"] = options.device_map or {"": device}  # straight to the GPU, no CPU copy
    language_model = _pretrained(AutoModelForCausalLM.from_pretrained, lm_source, "base language model", hint,
                                 **load_kwargs)
    if language_model.get_input_embeddings().weight.shape[0] != text_config.vocab_size:
        language_model.resize_token_embeddings(text_config.vocab_size)

    projector_state, projector_source = _projector_state(folder)
    lm_extras = {k: v for k, v in projector_state.items() if ".mm_projector." not in k}
    if lm_extras:
        from ecva_core.models.anomshield.modeling import official_to_local

        prefix = len("language_model.")
        language_model.load_state_dict({official_to_local(k)[prefix:]: v for k, v in lm_extras.items()},
                                       strict=False)
    if is_lora:
        try:
            from peft import PeftModel
        except ImportError as exc:
            raise ModelLoadError("this checkpoint has a LoRA adapter: install peft (see requirements.txt)") from exc
        try:
            language_model = PeftModel.from_pretrained(language_model, str(folder)).merge_and_unload()
        except (OSError, ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"cannot apply the LoRA adapter in {folder}: {exc}") from exc

    tower_hint = "Download openai/clip-vit-large-patch14 and pass vision_tower=PATH (or fix mm_vision_tower)."
    vision_model = _pretrained(build_vision_model, tower_source, "CLIP vision tower", tower_hint,
                               attn_implementation=options.attn_implementation)
    image_processor = load_image_processor(tower_source, int(vision_model.config.image_size))
    tokenizer_source = str(folder) if any((folder / f).is_file() for f in _TOKENIZER_FILES) else lm_source
    tokenizer = _pretrained(AutoTokenizer.from_pretrained, tokenizer_source, "tokenizer", hint)

    tower = CLIPVisionTower(vision_model, cfg.mm_vision_select_layer, cfg.mm_vision_select_feature)
    model = AnomShieldModel(cfg, language_model, tower, tokenizer, image_processor)
    model.load_official_projector(projector_state, projector_source)
    try:
        model.vision_tower.to(device=model.device, dtype=dtype)
        model.mm_projector.to(device=model.device, dtype=dtype)
    except torch.cuda.OutOfMemoryError as exc:
        raise ModelLoadError("out of GPU memory placing the vision tower and projector: free the GPU, use "
                             "dtype='fp16'/'bf16' or device_map='auto'") from exc
    return model.eval()
