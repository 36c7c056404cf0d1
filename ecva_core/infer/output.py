"""The submission file ``ecva infer`` writes: the official list format plus what the model saw.

Each row: ``video_file``, ``prompt``, ``output``, ``task_type`` (as ``ecva score`` and the Submit
page read them), ``probe`` on probe rows, ``frames`` (the seconds the model saw), ``model`` (the
spec); a failed item is ``"output": "ERROR"`` with its ``error``; a ranked probe row carries its
``keyframes`` (captions, ranking, removed frame times). Rows are in one canonical order and the
file is written in one canonical form, so the same answers always give the same bytes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ecva_core.infer.items import PROBE, ItemResult
from ecva_core.infer.plan import Plan, video_order
from ecva_core.results.submission import DEFAULT_PROBE
from ecva_core.schema import Task, canonical_video_id

ERROR_OUTPUT = "ERROR"
_TASK_ORDER = {task.value: index for index, task in enumerate(Task)}


def row_order(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """Video (natural order), task (benchmark order), normal before probe."""
    video = canonical_video_id(row.get("video_file", ""))
    return (*video_order(video), _TASK_ORDER.get(str(row.get("task_type")), 99), 1 if row.get("probe") else 0)


def build_rows(plan: Plan, results: Mapping[str, ItemResult], spec: str) -> list[dict[str, Any]]:
    """One row per planned row; an item without a usable result is an ERROR row with the reason."""
    rows = []
    for spec_row in plan.rows:
        result = results.get(spec_row.key) if spec_row.key else None
        row: dict[str, Any] = {"video_file": spec_row.video_file, "prompt": spec_row.prompt}
        if result is not None and result.ok:
            row["output"] = result.output
        else:
            row["output"] = ERROR_OUTPUT
        row["task_type"] = spec_row.task
        if spec_row.variant == PROBE:
            row["probe"] = DEFAULT_PROBE
        row["frames"] = list(result.frames) if result is not None and result.ok else []
        row["model"] = spec
        if result is not None and result.ok and result.extra:
            row["keyframes"] = result.extra
        if row["output"] == ERROR_OUTPUT:
            row["error"] = (
                spec_row.reason or (result.error if result is not None else None) or "not answered in this run"
            )
        rows.append(row)
    rows.sort(key=row_order)
    return rows


def dump_rows(rows: Iterable[Mapping[str, Any]]) -> bytes:
    """The canonical bytes of a submission: a JSON list with one row per line, UTF-8."""
    lines = [json.dumps(dict(row), ensure_ascii=False) for row in rows]
    return ("[\n" + ",\n".join(lines) + "\n]\n").encode("utf-8")


def write_rows(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    """Write atomically: a reader sees the old file or the whole new one, never half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(dump_rows(rows))
    os.replace(tmp, path)
