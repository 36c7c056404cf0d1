"""Export and import one model's full results (submissions, predictions, scores) as JSON or CSV.

CSV cells that a spreadsheet would run as a formula (starting with ``= + - @``, a tab or a
carriage return) are written with a leading apostrophe and read back without it, so a model's
output can never execute in the spreadsheet of the person who opens the export.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ecva_core.errors import ResultsError
from ecva_core.results.db import ResultsDB

if TYPE_CHECKING:
    import pandas as pd


FORMAT_NAME = "ecva-results"
FORMAT_VERSION = 1
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CSV_COLUMNS = [
    "model", "submission_key", "file_name", "file_hash", "created", "dataset", "dataset_fingerprint",
    "coverage", "video_id", "task", "probe", "prediction_status", "row", "prompt", "output",
    "metric", "value", "score_status", "reason", "judge_model", "prompt_version",
]
# Columns an older export may lack; they read as empty.
OPTIONAL_CSV_COLUMNS = {"judge_model", "prompt_version"}


def escape_cell(value: object) -> object:
    """Neutralise a text cell a spreadsheet would treat as a formula (numbers pass unchanged)."""
    if isinstance(value, str) and value and (value.startswith(_FORMULA_START) or value.startswith("'")):
        return "'" + value
    return value


def unescape_cell(value: str) -> str:
    """Undo :func:`escape_cell`."""
    if value.startswith("'") and len(value) > 1 and value[1] in {*_FORMULA_START, "'"}:
        return value[1:]
    return value


def export_model(db: ResultsDB, model: str, out: Path | str, fmt: str | None = None) -> dict[str, Any]:
    """Write ``model``'s results to ``out`` (format from ``fmt`` or the file suffix); return counts."""
    out = Path(out)
    fmt = (fmt or out.suffix.lstrip(".") or "json").lower()
    submissions = db.dump_model(model)
    if fmt == "json":
        payload = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "model": model,
                   "submissions": submissions}
        text = json.dumps(payload, ensure_ascii=False, indent=1)
    elif fmt == "csv":
        text = _to_csv(model, submissions)
    else:
        raise ResultsError(f"unknown export format {fmt!r}: use json or csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8", newline="")
    return {
        "model": model,
        "file": str(out),
        "format": fmt,
        "submissions": len(submissions),
        "predictions": sum(len(s["predictions"]) for s in submissions),
        "scores": sum(len(p["scores"]) for s in submissions for p in s["predictions"]),
    }


def import_results(
    db: ResultsDB,
    path: Path | str,
    model: str | None = None,
) -> dict[str, Any]:
    """Load an export (JSON or CSV) into ``db`` in one transaction; ``model`` renames on import
    (``ecva results import`` then warms the explorer's views, :func:`ecva_core.views.warm_after_write`)."""
    path = Path(path)
    if not path.is_file():
        raise ResultsError(f"file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ResultsError(
            f"{path} is not UTF-8 text (byte {exc.start}); import a file written by `ecva results export`"
        ) from None
    if "\x00" in text:
        raise ResultsError(f"{path} holds a NUL byte: it is corrupt or not an ECVA results export")
    try:
        if path.suffix.lower() == ".csv":
            name, submissions = _from_csv(text, path)
        else:
            name, submissions = _from_json(text, path)
        target = model or name
        counts = db.load_model(target, submissions)
    except (KeyError, TypeError, ValueError, AttributeError, csv.Error, sqlite3.IntegrityError) as exc:
        # Every write is one transaction, so a malformed export stores nothing.
        raise ResultsError(
            f"{path} is not a well-formed ECVA results export ({type(exc).__name__}: {exc}); nothing was stored"
        ) from None
    return {"model": target, "file": str(path), **counts}


def write_csv(header: Sequence[object], rows: Iterable[Sequence[object]]) -> str:
    """CSV text with every cell through :func:`escape_cell`: the one writer of CSV that a person may
    open in a spreadsheet (result exports, the explorer's downloads)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in itertools.chain([header], rows):
        writer.writerow([escape_cell(c) for c in row])
    return buffer.getvalue()


def table_csv(table: pd.DataFrame) -> str:
    """A table (the explorer's leaderboard) as formula-safe CSV; a missing value is an empty cell."""
    cells = table.astype(object).where(table.notna(), None)
    return write_csv(list(table.columns), cells.itertuples(index=False, name=None))


def _to_csv(model: str, submissions: list[dict[str, Any]]) -> str:
    return write_csv(CSV_COLUMNS, _csv_rows(model, submissions))


def _csv_rows(model: str, submissions: list[dict[str, Any]]) -> Iterator[list[object]]:
    for sub in submissions:
        head = [model, sub["key"], sub["file_name"], sub["file_hash"], sub["created"], sub["dataset"],
                sub["dataset_fingerprint"], json.dumps(sub["coverage"], ensure_ascii=False)]
        for pred in sub["predictions"]:
            body = [pred["video_id"], pred["task"], pred["probe"], pred["status"],
                    "" if pred["row"] is None else pred["row"], pred["prompt"], pred["output"]]
            for score in pred["scores"] or [None]:
                tail = (["", "", "", "", "", ""] if score is None else
                        [score["metric"], "" if score["value"] is None else repr(float(score["value"])),
                         score["status"], score["reason"], score.get("judge_model") or "",
                         score.get("prompt_version") or ""])
                yield head + body + tail


def _from_json(text: str, path: Path) -> tuple[str, list[dict[str, Any]]]:
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise ResultsError(f"{path} is nested too deeply to be an ECVA results export") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise ResultsError(f"{path} is not an ECVA results export (made by `ecva results export`)")
    if int(payload.get("version", 0)) > FORMAT_VERSION:
        raise ResultsError(f"{path} was written by a newer ecva (export version {payload['version']})")
    return str(payload["model"]), list(payload["submissions"])


def _from_csv(text: str, path: Path) -> tuple[str, list[dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or not set(CSV_COLUMNS) - OPTIONAL_CSV_COLUMNS <= set(reader.fieldnames):
        raise ResultsError(f"{path} is not an ECVA results CSV export (columns: {', '.join(CSV_COLUMNS)})")
    model = ""
    subs: dict[str, dict[str, Any]] = {}
    preds: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for number, raw in enumerate(reader, start=2):
        row = {k: unescape_cell(v or "") for k, v in raw.items() if k is not None}
        model = model or row["model"]
        sub = subs.get(row["submission_key"])
        if sub is None:
            try:
                coverage = json.loads(row["coverage"] or "{}")
            except json.JSONDecodeError:
                raise ResultsError(f"{path}, line {number}: the coverage cell is not JSON") from None
            sub = subs[row["submission_key"]] = {
                "key": row["submission_key"], "file_name": row["file_name"], "file_hash": row["file_hash"],
                "created": row["created"], "dataset": row["dataset"],
                "dataset_fingerprint": row["dataset_fingerprint"], "coverage": coverage, "predictions": [],
            }
        pkey = (row["submission_key"], row["video_id"], row["task"], row["probe"])
        pred = preds.get(pkey)
        if pred is None:
            pred = preds[pkey] = {
                "video_id": row["video_id"], "task": row["task"], "probe": row["probe"],
                "status": row["prediction_status"], "row": int(row["row"]) if row["row"] else None,
                "prompt": row["prompt"], "output": row["output"], "scores": [],
            }
            sub["predictions"].append(pred)
        if row["metric"]:
            try:
                value = float(row["value"]) if row["value"] else None
            except ValueError:
                raise ResultsError(f"{path}, line {number}: value {row['value']!r} is not a number") from None
            pred["scores"].append({"metric": row["metric"], "value": value, "status": row["score_status"],
                                   "reason": row["reason"], "judge_model": row.get("judge_model", ""),
                                   "prompt_version": row.get("prompt_version", "")})
    if not model:
        raise ResultsError(f"{path} holds no results")
    return model, list(subs.values())
