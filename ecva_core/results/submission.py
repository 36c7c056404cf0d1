"""Read, validate and join a submission file to the ground truth by ``(video_id, task)``.

Accepted shapes: the official JSON list of ``{video_file, prompt, output, task_type,
human_expert_answer}``, the older one-file-per-task list without ``task_type`` (the task comes
from the caller or the file name, e.g. ``*_reason.json``), JSON Lines and CSV. Structural
problems reject the whole file (:class:`SubmissionRejected`, nothing is stored); row-level
problems that still leave a well-defined answer (``ERROR`` rows, empty outputs, unknown video
ids) are reported as warnings and counted in the coverage.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ecva_core.dataset.questions import is_probe_prompt
from ecva_core.errors import SubmissionError
from ecva_core.schema import KEYFRAMES_REMOVED_PROBE, RUN_FIELDS, Prediction, PredictionStatus, Task, canonical_video_id

if TYPE_CHECKING:
    from ecva_core.dataset import Dataset

DEFAULT_PROBE = KEYFRAMES_REMOVED_PROBE
_PROBE_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_STRING_FIELDS = ("prompt", "human_expert_answer", "task_type")
_KNOWN_FIELDS = {"video_file", "video_id", "output", "probe", *_STRING_FIELDS, *RUN_FIELDS}
_MAX_REPORTED_ERRORS = 50
_FILENAME_HINTS = {"classification": Task.CLASSIFICATION}


@dataclass(frozen=True)
class Problem:
    """One finding: ``row`` is the 1-based record number (None for the whole file)."""

    row: int | None
    field: str
    problem: str
    code: str = ""
    severity: str = "error"  # "error" rejects the file; "warning" is reported and counted

    def __str__(self) -> str:
        where = "file" if self.row is None else f"row {self.row}"
        if self.field:
            where += f", field {self.field!r}"
        return f"{where}: {self.problem}"

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "problem": self.problem, "code": self.code,
                "severity": self.severity}


@dataclass
class SubmissionReport:
    """What a submission file holds once validated and joined to a dataset.

    ``file_task``/``file_probe`` are how the file was read (the ``--task``/``--probe`` given for the whole
    file) and ``dataset_fingerprint`` the ground truth it was joined to: with the file hash they say
    which stored submission it is (:func:`ecva_core.results.scoring.submission_key_of`).
    """

    path: Path
    format: str
    file_hash: str
    predictions: list[Prediction] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    coverage: dict[str, Any] = field(default_factory=dict)
    tasks: list[Task] = field(default_factory=list)
    file_task: Task | None = None
    file_probe: str | None = None
    dataset_fingerprint: str = ""

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity != "error"]

    @property
    def ok(self) -> bool:
        """True when nothing structural is wrong, i.e. the file may be stored."""
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": str(self.path),
            "format": self.format,
            "file_hash": self.file_hash,
            "ok": self.ok,
            "tasks": [t.value for t in self.tasks],
            "coverage": self.coverage,
            "problems": [p.to_dict() for p in self.problems],
        }


class SubmissionRejected(SubmissionError):
    """A submission failed validation; ``problems`` lists every error found (row, field, problem)."""

    def __init__(self, path: Path, problems: list[Problem]) -> None:
        self.path = path
        self.problems = problems
        shown = "\n".join(f"  - {p}" for p in problems[:10])
        more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
        super().__init__(
            f"submission {path} was rejected, nothing was stored:\n{shown}{more}\n"
            "Fix the file (format: a JSON list of {video_file, prompt, output, task_type}) and submit again."
        )

    @property
    def first(self) -> Problem:
        return self.problems[0]


class _Abort(Exception):
    """Internal: a whole-file problem that makes reading further pointless."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem


def task_from_file_name(path: Path) -> Task | None:
    """Infer the task of an older one-file-per-task submission (``video_llama_reason.json`` -> Cause)."""
    stem = path.stem.lower()
    for hint, task in _FILENAME_HINTS.items():
        if hint in stem:
            return task
    for token in reversed(re.split(r"[^a-z]+", stem)):
        if not token:
            continue
        try:
            return Task.parse(token)
        except ValueError:
            continue
    return None


def validate_submission(
    path: Path | str,
    dataset: Dataset,
    task: Task | str | None = None,
    probe: str | None = None,
    max_mb: float | None = None,
    *,
    data: bytes | None = None,
    file_hash: str | None = None,
) -> SubmissionReport:
    """Validate ``path`` against ``dataset`` and report every problem; never raises for file content.

    A caller that already holds the file's bytes (an upload) passes them as ``data``, with their
    sha256 as ``file_hash``, so they are neither read nor hashed again.
    """
    path = Path(path)
    file_task = Task.parse(task) if isinstance(task, str) else task
    file_probe = _normalise_file_probe(probe)
    report = SubmissionReport(
        path=path,
        format=_format_of(path),
        file_hash="",
        file_task=file_task,
        file_probe=file_probe,
        dataset_fingerprint=dataset.fingerprint,
    )
    try:
        raw = _read_bytes(path, max_mb) if data is None else data
        report.file_hash = file_hash or hashlib.sha256(raw).hexdigest()
        text = _decode(raw, report.problems)
        records, report.format = _parse(text, report.format)
    except _Abort as abort:
        report.problems.append(abort.problem)
        return report
    if not records:
        report.problems.append(Problem(None, "", "the file holds no rows", "no_rows"))
        return report
    rows = _check_rows(records, report.problems, file_task, file_probe)
    if report.errors:
        return report
    _fill_missing_tasks(rows, report.problems, file_task, path)
    if report.errors:
        return report
    _join(rows, dataset, report)
    return report


def read_submission(
    path: Path | str,
    dataset: Dataset,
    task: Task | str | None = None,
    probe: str | None = None,
    max_mb: float | None = None,
) -> SubmissionReport:
    """Validate and join; raise :class:`SubmissionRejected` (a ``SubmissionError``) on any error."""
    report = validate_submission(path, dataset, task=task, probe=probe, max_mb=max_mb)
    if not report.ok:
        raise SubmissionRejected(report.path, report.errors)
    return report


def _normalise_file_probe(probe: str | bool | None) -> str | None:
    if probe is None or probe is False or probe == "":
        return None
    if probe is True:
        return DEFAULT_PROBE
    value = str(probe).strip().lower()
    if not _PROBE_RE.fullmatch(value):
        raise SubmissionError(
            f"probe name {probe!r} is not valid: use a short identifier such as {DEFAULT_PROBE!r}"
        )
    return value


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in {".jsonl", ".ndjson"}:
        return "jsonl"
    if suffix in {".csv", ".tsv"}:
        return "csv"
    return "json"


def _read_bytes(path: Path, max_mb: float | None) -> bytes:
    if max_mb is None:
        from ecva_core.config import get_settings

        max_mb = get_settings().max_submission_mb
    if not path.exists():
        raise _Abort(Problem(None, "", f"file not found: {path}", "not_found"))
    if not path.is_file():
        raise _Abort(Problem(None, "", f"{path} is not a file", "not_found"))
    size = path.stat().st_size
    if size > max_mb * 1024 * 1024:
        raise _Abort(Problem(
            None, "",
            f"file is {size / 1024 / 1024:.2f} MB, over the {max_mb:g} MB limit "
            "(raise ECVA_MAX_SUBMISSION_MB if this is intended)",
            "oversize",
        ))
    if size == 0:
        raise _Abort(Problem(None, "", "the file is empty", "empty_file"))
    return path.read_bytes()


def _decode(raw: bytes, problems: list[Problem]) -> str:
    """UTF-8 (a BOM is accepted and noted) or BOM-marked UTF-16; anything else is rejected."""
    if raw.startswith(b"\xef\xbb\xbf"):
        problems.append(Problem(None, "", "the file starts with a UTF-8 byte-order mark (accepted)",
                                "bom", "warning"))
        raw = raw[3:]
    elif raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        problems.append(Problem(None, "", "the file is UTF-16 (accepted; UTF-8 is preferred)",
                                "bom", "warning"))
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise _Abort(Problem(None, "", f"invalid UTF-16 at byte {exc.start}", "encoding")) from None
    nul = raw.find(b"\x00")
    if 0 <= nul < 1024:
        raise _Abort(Problem(None, "", "the file is binary, not a text submission", "encoding"))
    if nul >= 0:
        line = raw[:nul].count(b"\n") + 1
        raise _Abort(Problem(
            None, "", f"a NUL byte at byte {nul} (line {line}): the file is corrupt or not a text submission",
            "nul_byte",
        ))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise _Abort(Problem(
            None, "", f"not valid UTF-8 at byte {exc.start} (line {line}); save the file as UTF-8",
            "encoding",
        )) from None
    if not text.strip():
        raise _Abort(Problem(None, "", "the file holds only whitespace", "empty_file"))
    return text


def _parse(text: str, fmt: str) -> tuple[list[Any], str]:
    if fmt == "csv":
        return _parse_csv(text), fmt
    if fmt == "jsonl":
        return _parse_jsonl(text), fmt
    try:
        data = json.loads(text)
    except RecursionError:
        raise _Abort(_too_deep(None)) from None
    except json.JSONDecodeError as exc:
        lines = [ln for ln in text.splitlines() if ln.strip()]
        if len(lines) > 1 and all(ln.lstrip().startswith("{") for ln in lines[:2]):
            return _parse_jsonl(text), "jsonl"
        raise _Abort(Problem(
            None, "", f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}", "not_json"
        )) from None
    if not isinstance(data, list):
        raise _Abort(Problem(
            None, "", f"the top level is a JSON {_type_name(data)}, expected a list of answer objects",
            "not_list",
        ))
    return data, fmt


def _too_deep(row: int | None, where: str = "") -> Problem:
    return Problem(
        row, "", f"the JSON {where}is nested too deeply to be a submission (expected a list of flat answer objects)",
        "too_deep",
    )


def _parse_jsonl(text: str) -> list[Any]:
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except RecursionError:
            raise _Abort(_too_deep(len(records) + 1, f"line {number} ")) from None
        except json.JSONDecodeError as exc:
            raise _Abort(Problem(
                len(records) + 1, "", f"line {number} is not valid JSON: {exc.msg} (column {exc.colno})",
                "not_json",
            )) from None
    return records


def _parse_csv(text: str) -> list[Any]:
    dialect = "excel-tab" if "\t" in text.splitlines()[0] and "," not in text.splitlines()[0] else "excel"
    reader = csv.reader(io.StringIO(text), dialect=dialect)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except (StopIteration, csv.Error) as exc:
        raise _Abort(Problem(None, "", f"unreadable CSV header: {exc}", "csv_header")) from None
    header = ["video_file" if h == "video_id" else h for h in header]
    for required in ("video_file", "output"):
        if required not in header:
            raise _Abort(Problem(
                None, required, f"the CSV header has no {required!r} column (found: {', '.join(header)})",
                "missing_column",
            ))
    records: list[Any] = []
    try:
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                raise _Abort(Problem(
                    len(records) + 1, "",
                    f"CSV line {reader.line_num} has {len(cells)} cells, the header has {len(header)}",
                    "csv_ragged",
                ))
            records.append({h: (c if c != "" or h in {"output", "video_file"} else None)
                            for h, c in zip(header, cells, strict=True)})
    except csv.Error as exc:
        raise _Abort(Problem(len(records) + 1, "", f"CSV error at line {reader.line_num}: {exc}",
                             "csv_ragged")) from None
    return records


def _type_name(value: object) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", int: "number",
            float: "number", type(None): "null"}.get(type(value), type(value).__name__)


@dataclass
class _Row:
    number: int
    video_id: str | None
    output: str
    prompt: str
    task: Task | None
    probe: str | None
    error: bool


def _is_error_text(value: object) -> bool:
    return isinstance(value, str) and value.strip().upper() == "ERROR"


def _check_rows(
    records: list[Any], problems: list[Problem], file_task: Task | None, file_probe: str | None
) -> list[_Row]:
    rows: list[_Row] = []
    unknown_fields: set[str] = set()
    for number, record in enumerate(records, start=1):
        if len(problems) >= _MAX_REPORTED_ERRORS:
            break
        if not isinstance(record, dict):
            problems.append(Problem(number, "", f"expected an object, got a {_type_name(record)}",
                                    "row_not_object"))
            continue
        unknown_fields.update(set(record) - _KNOWN_FIELDS)
        row = _check_row(number, record, problems, file_task, file_probe)
        if row is not None:
            rows.append(row)
    if unknown_fields:
        problems.append(Problem(None, ", ".join(sorted(unknown_fields)), "unknown fields were ignored",
                                "unknown_field", "warning"))
    return rows


def _check_row(
    number: int, record: dict[str, Any], problems: list[Problem], file_task: Task | None,
    file_probe: str | None,
) -> _Row | None:
    before = len(problems)

    def error(field_name: str, text: str, code: str) -> None:
        problems.append(Problem(number, field_name, text, code))

    output = record.get("output")
    if "output" not in record:
        error("output", "missing (every row needs the model's answer)", "missing_field")
    elif not isinstance(output, str):
        error("output", f"expected a string, got a {_type_name(output)}", "wrong_type")
    is_error = _is_error_text(output)

    key = "video_file" if "video_file" in record else "video_id"
    raw_video = record.get(key)
    video_id: str | None = None
    if raw_video is None or (isinstance(raw_video, str) and raw_video.strip() in {"", "ERROR"}):
        if not is_error:
            error("video_file", "missing (every answered row needs the video it answers)",
                  "missing_field" if key not in record or raw_video in (None, "") else "bad_video")
    elif isinstance(raw_video, bool) or not isinstance(raw_video, str | int):
        error("video_file", f"expected a file name or id, got a {_type_name(raw_video)}", "wrong_type")
    else:
        video_id = canonical_video_id(raw_video)

    for name in _STRING_FIELDS:
        value = record.get(name)
        if value is not None and not isinstance(value, str):
            error(name, f"expected a string or null, got a {_type_name(value)}", "wrong_type")

    task = file_task
    task_text = record.get("task_type")
    if isinstance(task_text, str) and task_text.strip():
        try:
            row_task = Task.parse(task_text)
        except ValueError:
            error("task_type", f"unknown task type {task_text!r} (expected Description, Cause, Result, "
                               "Classification or Timestamp)", "unknown_task")
            row_task = None
        if row_task is not None and file_task is not None and row_task != file_task:
            error("task_type", f"row says {row_task.value} but the task given is {file_task.value}",
                  "task_conflict")
        task = row_task or task

    probe = file_probe
    if "probe" in record:
        value = record["probe"]
        if value is True:
            probe = DEFAULT_PROBE
        elif value in (None, False, ""):
            probe = file_probe
        elif not isinstance(value, str):
            error("probe", f"expected a probe name or null, got a {_type_name(value)}", "wrong_type")
        elif not _PROBE_RE.fullmatch(value.strip().lower()):
            error("probe", f"{value!r} is not a probe name (use e.g. {DEFAULT_PROBE!r})", "bad_probe")
        else:
            probe = value.strip().lower()

    if len(problems) > before:
        return None
    return _Row(number, video_id, output if isinstance(output, str) else "",
                str(record.get("prompt") or ""), task, probe, is_error)


def _fill_missing_tasks(rows: list[_Row], problems: list[Problem], given: Task | None, path: Path) -> None:
    """Rows without a task take the caller's task, else the one task all other rows share, else the
    task named by the file name (``*_reason.json`` -> Cause)."""
    missing = [r for r in rows if r.task is None]
    if not missing:
        return
    known = {r.task for r in rows if r.task is not None}
    shared = next(iter(known)) if len(known) == 1 else None
    from_name = task_from_file_name(path)
    fallback = given or shared or from_name
    if fallback is None:
        problems.append(Problem(
            missing[0].number, "task_type",
            f"no task type for {len(missing)} row(s) and none can be inferred from the file name "
            f"{path.name!r}: pass --task Description|Cause|Result|Classification|Timestamp",
            "no_task",
        ))
        return
    for row in missing:
        row.task = fallback
    source = "the file name" if fallback is from_name and not shared else "the other rows"
    if given is None:
        problems.append(Problem(
            missing[0].number, "task_type",
            f"{len(missing)} row(s) without task_type were taken as {fallback.value} (from {source})",
            "task_assumed", "warning",
        ))


def _join(rows: list[_Row], dataset: Dataset, report: SubmissionReport) -> None:
    """Join rows to the dataset's QA items by (video_id, task); fill predictions and coverage."""
    problems = report.problems
    tasks = sorted({r.task for r in rows if r.task is not None}, key=lambda t: list(Task).index(t))
    report.tasks = tasks
    subclips = any(r.video_id and "-" in r.video_id for r in rows)
    expected = {item.key for item in dataset.qa_items(tuple(tasks), include_subclips=subclips)}
    seen: dict[tuple[str, Task, str | None], int] = {}
    extra: list[_Row] = []
    unattributed = 0
    predictions: list[Prediction] = []
    for row in rows:
        assert row.task is not None
        if row.video_id is None:
            unattributed += 1
            problems.append(Problem(row.number, "video_file",
                                    "ERROR row without a video id: counted as failed, cannot be joined",
                                    "error_row_no_video", "warning"))
            continue
        key = (row.video_id, row.task, row.probe)
        if key in seen:
            variant = f" (probe {row.probe})" if row.probe else ""
            problems.append(Problem(
                row.number, "video_file",
                f"duplicate answer for video {row.video_id}, task {row.task.value}{variant}; "
                f"first given in row {seen[key]}", "duplicate",
            ))
            continue
        seen[key] = row.number
        if (row.video_id, row.task) not in expected:
            extra.append(row)
            continue
        if row.error:
            status = PredictionStatus.ERROR
        elif not row.output.strip():
            status = PredictionStatus.EMPTY
        else:
            status = PredictionStatus.OK
        predictions.append(Prediction(row.video_id, row.task, row.output, row.prompt, row.probe, status,
                                      row.number))
    if report.errors:
        return
    unusable = [r for r in extra if r.video_id in dataset.records]
    for row in extra[:20]:
        assert row.task is not None
        if row.video_id in dataset.records:
            text = (f"video {row.video_id} has no {row.task.value} item (the annotation marks it unusable or "
                    "lacks that answer): ignored")
        else:
            text = f"video {row.video_id} is not in the dataset: ignored"
        problems.append(Problem(row.number, "video_file", text, "unknown_video", "warning"))
    if not predictions and not unattributed:
        problems.append(Problem(
            None, "video_file",
            f"none of the {len(rows)} rows matches a video of the dataset {dataset.name!r} "
            "(is --data pointing at the right dataset?)", "no_match",
        ))
        return
    for p in predictions:
        if p.status is PredictionStatus.ERROR:
            problems.append(Problem(p.row, "output", "the model's inference failed (ERROR): counted as "
                                    "failed", "error_row", "warning"))
        elif p.status is PredictionStatus.EMPTY:
            problems.append(Problem(p.row, "output", "empty answer: counted as failed", "empty_output",
                                    "warning"))
    probe_worded = sum(1 for p in predictions if not p.probe and is_probe_prompt(p.prompt))
    if probe_worded and probe_worded * 2 >= len(predictions):
        problems.append(Problem(
            None, "prompt",
            f"{probe_worded} answers were asked with the hallucination-probe wording (answer None when unsure); "
            "if they were given with the key frames removed, score the file with --probe", "probe_prompt",
            "warning",
        ))
    report.predictions = predictions
    report.coverage = _coverage(predictions, expected, len(extra), unattributed, tasks)
    report.coverage.update(
        rows=len(rows),
        error_rows_in_file=sum(r.error for r in rows),
        extra_unscorable=len(unusable),
    )


def _coverage(
    predictions: list[Prediction], expected: set[tuple[str, Task]], extra: int, unattributed: int,
    tasks: Iterable[Task],
) -> dict[str, Any]:
    """Counts over the main answers (probe answers counted on their own when both are present)."""
    normal = [p for p in predictions if p.probe is None]
    main = normal or predictions
    probe_rows = len(predictions) - len(normal) if normal else 0
    by_task: dict[str, dict[str, int]] = {}
    for task in tasks:
        exp = {k for k in expected if k[1] == task}
        got = [p for p in main if p.task == task]
        by_task[task.value] = {
            "expected": len(exp),
            "matched": len(got),
            "missing": len(exp - {p.key for p in got}),
            "failed": sum(p.status is not PredictionStatus.OK for p in got),
        }
    matched_keys = {p.key for p in main}
    return {
        "expected": len(expected),
        "matched": len(main),
        "missing": len(expected - matched_keys),
        "extra": extra,
        "duplicate": 0,
        "failed": sum(p.status is not PredictionStatus.OK for p in main) + unattributed,
        "error_rows": sum(p.status is PredictionStatus.ERROR for p in main) + unattributed,
        "empty_rows": sum(p.status is PredictionStatus.EMPTY for p in main),
        "unattributed": unattributed,
        "probe_rows": probe_rows,
        "probe": sorted({p.probe for p in main if p.probe}),
        "by_task": by_task,
    }
