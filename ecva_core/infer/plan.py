"""The work plan: every output row (video x task x variant) and the work items behind them.

Planning reads no pixels: each video is hashed and demuxed once (remembered by path, size and
mtime in the cache folder), and the frames each question sees follow from that alone. A video
that cannot be read is a row-level failure with its reason, never a stop; a probe that cannot
be made (no annotated moments, moments covering nearly the whole clip) is a recorded reason
instead of a probe row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ecva_core.dataset.questions import question_for
from ecva_core.errors import ConfigError, EcvaError
from ecva_core.infer.items import NORMAL, PROBE, WorkItem
from ecva_core.infer.keys import StatCache, cached_digest, item_key, model_fingerprint
from ecva_core.infer.probe import RANKED_METHOD, candidate_frames, ranked_method_spec
from ecva_core.schema import SCORED_TASKS, Task

if TYPE_CHECKING:
    from ecva_core.dataset import Dataset
    from ecva_core.schema import VideoRecord
    from ecva_core.video import VideoInfo

PROBE_MODES = ("annotated", "ranked", "none")
# A probe needs at least this share of the clip left once the annotated moments are cut out.
MIN_PROBE_SHARE = 0.05
DEFAULT_NUM_FRAMES = 16


@dataclass(frozen=True)
class PlanOptions:
    """What to run: model, generation settings, tasks, probe mode, frames and the share of videos."""

    spec: str
    model_options: dict[str, Any] = field(default_factory=dict)
    generation: dict[str, Any] = field(default_factory=dict)
    tasks: tuple[Task, ...] = SCORED_TASKS
    probe: str = "annotated"
    num_frames: int | None = None
    videos: tuple[str, ...] = ()
    limit: int | None = None
    shards: int = 1
    shard_index: int = 0


@dataclass(frozen=True)
class RowSpec:
    """One row of the output: answered by work item ``key``, or failed at planning with ``reason``."""

    video_id: str
    video_file: str
    task: str
    variant: str
    prompt: str
    key: str | None
    reason: str | None = None


@dataclass
class Plan:
    """Rows in output order, the distinct work items behind them, and the probes that were skipped."""

    rows: list[RowSpec]
    items: list[WorkItem]
    probe_skipped: dict[str, str]
    num_frames: int
    videos: int


def video_order(video_id: str) -> tuple[int, str]:
    """Natural order of ids (``2`` before ``10``), the order of rows in every output."""
    return (len(video_id), video_id)


def shard_of(video_id: str, shards: int) -> int:
    """The shard a video belongs to: a stable hash, so all of a video's items share one shard."""
    return int(hashlib.sha256(video_id.encode()).hexdigest()[:16], 16) % shards


def default_num_frames(spec: str) -> int:
    """The model's own frame count, read without loading it (AnomShield: its config.json)."""
    from ecva_core.models import parse_spec

    parsed = parse_spec(spec)
    if parsed.backend == "anomshield":
        from ecva_core.models.anomshield.config import AnomShieldConfig

        return AnomShieldConfig.from_folder(Path(parsed.model).expanduser()).num_frames
    return DEFAULT_NUM_FRAMES


def select_records(dataset: Dataset, options: PlanOptions) -> list[VideoRecord]:
    """The usable source videos asked for (``videos`` or the first ``limit``), then this shard's."""
    from ecva_core.dataset import is_subclip
    from ecva_core.schema import canonical_video_id

    records = sorted(
        (r for r in dataset.records.values() if r.usable and not is_subclip(r.video_id)),
        key=lambda r: video_order(r.video_id),
    )
    if options.videos:
        wanted = [canonical_video_id(v) for v in options.videos]
        known = {r.video_id for r in records}
        unknown = [v for v in wanted if v not in known]
        if unknown:
            raise ConfigError(f"--videos: {', '.join(unknown)} not among the usable videos of {dataset.name!r}")
        keep = set(wanted)
        records = [r for r in records if r.video_id in keep]
    if options.limit is not None:
        records = records[: max(0, options.limit)]
    if options.shards > 1:
        records = [r for r in records if shard_of(r.video_id, options.shards) == options.shard_index]
    return records


def _facts_of(path: str) -> dict[str, Any]:
    """Content hash and stream facts of one video (runs in a worker process); ``error`` on failure."""
    from ecva_core.video.info import probe

    try:
        info, _table = probe(Path(path), decode_check=False)
        digest = cached_digest(Path(path), None)
    except (EcvaError, OSError) as exc:
        return {"error": str(exc)}
    return {
        "sha256": digest,
        "info": {
            "fps": info.fps,
            "frame_count": info.frame_count,
            "duration": info.duration,
            "width": info.width,
            "height": info.height,
            "codec": info.codec,
        },
    }


def video_facts(paths: Sequence[Path], cache: StatCache, pool: Executor | None) -> dict[Path, dict[str, Any]]:
    """``_facts_of`` for every path, from the cache where known, else in the worker ``pool``."""
    out: dict[Path, dict[str, Any]] = {}
    missing: list[Path] = []
    for path in paths:
        known = cache.get(path, "video") if path.is_file() else None
        if known:
            out[path] = known
        else:
            missing.append(path)
    if pool is not None and len(missing) > 4:
        found = list(pool.map(_facts_of, [str(p) for p in missing], chunksize=4))
    else:
        found = [_facts_of(str(p)) for p in missing]
    for path, facts in zip(missing, found, strict=True):
        out[path] = facts
        if "error" not in facts:
            cache.put(path, "video", facts)
    return out


def _info(facts: dict[str, Any]) -> VideoInfo:
    from ecva_core.video import VideoInfo

    return VideoInfo(**facts["info"])


def annotated_probe_frames(record: VideoRecord, info: VideoInfo, num_frames: int) -> tuple[tuple[int, ...] | None, str]:
    """The probe's frames with the annotated moments cut out, or None and the reason there is no probe."""
    from ecva_core.video import frame_indices
    from ecva_core.video.sampling import window_range

    moments = record.annotation.moments
    if not moments:
        return None, "no annotated anomaly moments to remove"
    cut: set[int] = set()
    for segment in moments:
        cut.update(window_range(segment, info.fps, info.frame_count))
    left = info.frame_count - len(cut)
    if left < max(1, MIN_PROBE_SHARE * info.frame_count):
        return None, (
            f"the annotated moments cover {len(cut) / info.frame_count:.0%} of the clip; under "
            f"{MIN_PROBE_SHARE:.0%} of its frames would be left for a probe"
        )
    return tuple(frame_indices(info, num_frames=num_frames, exclude=moments)), ""


def build_plan(
    dataset: Dataset, options: PlanOptions, cache: StatCache, pool: Executor | None = None, judge_model: str = ""
) -> Plan:
    """Plan every row for the chosen videos (new videos hashed and indexed in ``pool``).

    ``judge_model`` names the ranker of ``--probe ranked``, part of those probes' cache keys.
    """
    from ecva_core.video import frame_indices

    if options.probe not in PROBE_MODES:
        raise ConfigError(f"--probe must be one of {', '.join(PROBE_MODES)}, not {options.probe!r}")
    num_frames = options.num_frames or default_num_frames(options.spec)
    model = model_fingerprint(options.spec, options.model_options, cache)
    records = select_records(dataset, options)
    paths = {r.video_id: dataset.video_path(r.video_id) for r in records}
    facts = video_facts([p for p in paths.values() if p is not None], cache, pool)
    tasks = tuple(t for t in Task if t in options.tasks)
    rows: list[RowSpec] = []
    items: dict[str, WorkItem] = {}
    skipped: dict[str, str] = {}
    for record in records:
        path = paths[record.video_id]
        video_facts_ = facts.get(path) if path is not None else None
        if path is None:
            reason: str | None = f"video file for {record.video_id} ({record.video_file}) not found under the dataset"
        else:
            reason = video_facts_.get("error") if video_facts_ else "video could not be read"
        normal_frames: tuple[int, ...] = ()
        probe_frames: tuple[int, ...] | None = None
        probe_reason = ""
        if reason is None and video_facts_ is not None:
            info = _info(video_facts_)
            normal_frames = tuple(frame_indices(info, num_frames=num_frames))
            if options.probe == "annotated":
                probe_frames, probe_reason = annotated_probe_frames(record, info, num_frames)
            elif options.probe == "ranked":
                probe_frames = candidate_frames(info)
        elif options.probe == "annotated" and not record.annotation.moments:
            probe_reason = "no annotated anomaly moments to remove"
        if options.probe != "none" and probe_reason and any(t in SCORED_TASKS for t in tasks):
            skipped[record.video_id] = probe_reason
        for task in tasks:
            variants = [NORMAL]
            if task in SCORED_TASKS and options.probe != "none" and not probe_reason:
                variants.append(PROBE)
            for variant in variants:
                prompt = question_for(task, probe=variant == PROBE)
                if reason is not None or video_facts_ is None:
                    rows.append(
                        RowSpec(
                            record.video_id,
                            record.video_file,
                            task.value,
                            variant,
                            prompt,
                            None,
                            reason or "video could not be read",
                        )
                    )
                    continue
                frames = normal_frames if variant == NORMAL else (probe_frames or ())
                method = ""
                method_spec: dict[str, Any] = {"num_frames": num_frames}
                if variant == PROBE:
                    method = options.probe
                    if method == RANKED_METHOD:
                        method_spec = ranked_method_spec(judge_model)
                key = item_key(
                    model,
                    options.generation,
                    prompt,
                    video_facts_["sha256"],
                    frames,
                    variant,
                    {"method": method, **method_spec},
                )
                rows.append(RowSpec(record.video_id, record.video_file, task.value, variant, prompt, key))
                items.setdefault(
                    key, WorkItem(key, record.video_id, str(path), task.value, variant, prompt, frames, method)
                )
    return Plan(rows, list(items.values()), skipped, num_frames, len(records))
