"""``ecva infer merge``: join shard files into the one submission a single run would have written."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ecva_core.errors import SubmissionError
from ecva_core.infer.output import row_order, write_rows
from ecva_core.schema import canonical_video_id


def _row_id(row: dict[str, Any]) -> tuple[str, str, str]:
    return (canonical_video_id(row.get("video_file", "")), str(row.get("task_type")), str(row.get("probe") or ""))


def merge_shards(paths: Sequence[Path], out: Path) -> dict[str, Any]:
    """Read every shard file, refuse overlaps that disagree, write the rows in canonical order."""
    if not paths:
        raise SubmissionError("ecva infer merge needs at least one shard file")
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    source: dict[tuple[str, str, str], Path] = {}
    for path in paths:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise SubmissionError(f"cannot read shard file {path}: {exc}") from None
        except ValueError as exc:
            raise SubmissionError(f"shard file {path} is not valid JSON: {exc}") from None
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise SubmissionError(f"shard file {path} is not a JSON list of answer objects")
        for number, row in enumerate(data, start=1):
            row_id = _row_id(row)
            if row_id in rows and rows[row_id] != row:
                raise SubmissionError(
                    f"{path} row {number} answers video {row_id[0]}, task {row_id[1]} again, "
                    f"differently from {source[row_id]}: were the shards made by different runs?"
                )
            rows[row_id] = row
            source[row_id] = Path(path)
    ordered = sorted(rows.values(), key=row_order)
    write_rows(out, ordered)
    return {
        "out": str(out),
        "shards": len(paths),
        "rows": len(ordered),
        "errors": sum(1 for r in ordered if r.get("output") == "ERROR"),
    }
