"""Everything a model spec needs, fetched ahead for offline use (``ecva models download``).

An ``hf:`` spec needs its model; an ``anomshield:`` spec its checkpoint plus the base LM and the CLIP
tower the checkpoint's config names. :mod:`ecva_core.models.hub` fetches each part; this module knows
the parts, so the hub code never imports a backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ecva_core.errors import ModelLoadError
from ecva_core.models.hub import FetchedModel, fetch_model, is_hub_id, resolve_hub


@dataclass
class Prefetch:
    """What ``ecva models download`` fetched for a spec, and the spec that loads it with no hub."""

    spec: str
    offline_spec: str
    hub: str
    parts: list[FetchedModel]
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "spec": self.spec,
            "offline_spec": self.offline_spec,
            "hub": self.hub,
            "parts": [p.as_dict() for p in self.parts],
            "notes": self.notes,
        }


def prefetch(spec: str, hub: str | None = None, dest: Path | None = None) -> Prefetch:
    """Fetch everything ``spec`` needs: an ``hf:`` model; an ``anomshield:`` checkpoint with the base LM
    and CLIP tower its config names. ``dest``: put each hub model in ``dest/ORG/NAME`` (a hub checkpoint
    in ``dest/NAME``, so the ids its config names resolve next to it) instead of the hub's cache."""
    from ecva_core.models import parse_spec

    parsed = parse_spec(spec)
    chosen = resolve_hub(hub)

    def fetch(source: str, role: str, local_hint: str, flat: bool = False) -> FetchedModel:
        to = None
        if dest is not None and is_hub_id(source):
            to = dest / (source.rsplit("/", 1)[-1] if flat else source)
        part = fetch_model(source, what=f"the {role} of {spec}", spec=spec, local_hint=local_hint, hub=chosen, to=to)
        part.role = role
        return part

    if parsed.backend == "openai":
        raise ModelLoadError(f"{spec}: an openai: model runs on its own server; there are no weights to download")
    if parsed.backend == "hf":
        from ecva_core.models.hf import hf_model_id

        source = hf_model_id(parsed.model)
        model = fetch(source, "model", f"hf:DIR/{source}")
        return Prefetch(spec, f"hf:{model.path}", chosen, [model])

    from ecva_core.models.anomshield.config import AnomShieldConfig
    from ecva_core.models.anomshield.loader import has_lm_weights, resolve_model_base, resolve_vision_tower

    checkpoint = fetch(parsed.model, "checkpoint", f"anomshield:DIR/{Path(parsed.model).name}", flat=True)
    folder = checkpoint.path
    cfg = AnomShieldConfig.from_folder(folder)
    parts = [checkpoint]
    offline = f"anomshield:{folder}"
    if (folder / "adapter_config.json").is_file() or not has_lm_weights(folder):
        base_id = resolve_model_base(folder, cfg, parsed.extra)
        base = fetch(base_id, "base language model", f"anomshield:{folder}@DIR/{base_id}")
        parts.append(base)
        offline += f"@{base.path}"
    tower_id = resolve_vision_tower(cfg, folder, None)
    tower = fetch(tower_id, "vision tower", f"{folder.parent / tower_id}")
    parts.append(tower)
    notes = []
    expected = folder.parent / tower_id
    if tower.source != "local" and dest is not None and tower.path != expected:
        notes.append(
            f"the checkpoint looks for its vision tower {tower_id} at {expected}: copy {tower.path} there "
            "(or download the checkpoint with this command too, so both sit in the same folder)"
        )
    return Prefetch(spec, offline, chosen, parts, notes)
