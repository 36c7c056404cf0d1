"""Read the official annotation files (.xlsx first sheet, .csv, CUVA-style .json) into VideoRecords.

Headers are matched by meaning (``X3 - moment``, ``A3,moment``, ``video_id``...), not by exact
text. A bad cell becomes a QualityFlag on its record; only a file that cannot be read at all (or
has no recognisable id column) raises :class:`~ecva_core.errors.DataError`.

Sub-clip rows (``19-1``) stay records of their own: they point at their source video file
(``00019.mp4``), ``clip_window`` holds the annotated time cut and their moments are, as annotated,
in source-video time.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from ecva_core.dataset import cells
from ecva_core.errors import DataError
from ecva_core.schema import (
    Annotation,
    QualityFlag,
    Task,
    VideoRecord,
    canonical_video_id,
    video_file_name,
)

KIND_UNUSABLE = "unusable video"
KIND_COUNT_MISMATCH = "description count mismatch"
KIND_REASON_IS_RESULT = "reason equals result"
KIND_MISSING = "missing cell"
KIND_DUPLICATE = "duplicate video id"
KIND_BAD_ID = "unrecognised video id"
KIND_NO_TIME_CUT = "sub-clip without time cut"
KIND_MISSING_COLUMN = "missing column"

FIELDS = ("video_id", "category", "reason", "result", "moments", "descriptions", "key_phrases")
SUPPORTED_SUFFIXES = (".xlsx", ".xlsm", ".csv", ".json")

_SUBCLIP_ID = re.compile(r"(\d+)-(\d+)")
_EXAMPLE_ID = re.compile(r"^(example|e\.g\.|示例|样例|例)", re.IGNORECASE)


# --- headers ----------------------------------------------------------------------------------

_FIELD_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("key_phrases", ("key sentence", "key phrase", "keyphrase", "keyword", "key word", "key point")),
    ("reason", ("reason", "cause", "why")),
    ("result", ("result", "outcome", "effect", "consequence", "how")),
    ("moments", ("moment", "timestamp", "time", "when", "segment", "period")),
    ("descriptions", ("description", "describe", "what")),
    ("category", ("category", "categories", "class", "type", "label")),
    ("video_id", ("video id", "videoid", "video", "id", "vid", "visual input", "file", "name", "clip")),
    ("annotator", ("annotator",)),
    ("notes", ("note", "notes", "remark", "comment", "备注")),
)


def header_field(header: object) -> str | None:
    """Map a header to a field by meaning: X/A prefix, whitespace, full-width brackets and trailing
    notes in parentheses are ignored (``'X2 -  result （...）'`` -> ``"result"``)."""
    text = unicodedata.normalize("NFKC", str(header or "")).strip().lower()
    if text.startswith("备注"):
        return "notes"
    text = re.split(r"[(\[]", text, maxsplit=1)[0]
    prefix = re.match(r"^[xa]\s*(\d)(?![\d-])\s*[-_,:.]*\s*", text)
    rest = text[prefix.end() :] if prefix else text
    words = " " + " ".join(re.sub(r"[^a-z0-9]+", " ", rest).split()) + " "
    for name, keywords in _FIELD_WORDS:
        if any(f" {k} " in words or f" {k}s " in words for k in keywords):
            return name
    if prefix and not words.strip() and prefix.group(1) == "1":
        return "category"
    return None


def _map_header(row: Iterable[object]) -> dict[str, int]:
    mapping: dict[str, int] = {}
    for index, cell in enumerate(row):
        name = header_field(cell)
        if name and name not in mapping:
            mapping[name] = index
    return mapping


def _is_header(mapping: dict[str, int]) -> bool:
    return "video_id" in mapping and len(set(mapping) & set(FIELDS)) >= 2


# --- row sources ------------------------------------------------------------------------------


@dataclass
class _Row:
    """One annotation row, cells keyed by field, with every other cell kept for notes."""

    number: int
    cells: dict[str, object]
    extra: list[object] = field(default_factory=list)


def _rows_from_table(rows: Iterator[tuple[object, ...]], path: Path) -> Iterator[_Row]:
    mapping: dict[str, int] = {}
    number = 0
    for number, row in enumerate(rows, start=1):
        mapping = _map_header(row)
        if _is_header(mapping) or number >= 10:
            break
    if number == 0:
        raise DataError(f"{path}: the file holds no rows. Use the official sheet or a CSV with its columns.")
    if not _is_header(mapping):
        raise DataError(
            f"{path}: no header row with a video id column was found in the first {number} rows. "
            "Use the official sheet (first row: video_id, X1 ..., X2 - reason, ...) or a CSV with "
            "the same columns."
        )
    used = set(mapping.values())
    for number_after, row in enumerate(rows, start=number + 1):
        values = list(row)
        get = {name: values[i] if i < len(values) else None for name, i in mapping.items()}
        extra = [v for i, v in enumerate(values) if i not in used and v not in (None, "")]
        extra += [get.get("annotator"), get.get("notes")]
        yield _Row(number_after, get, [v for v in extra if v not in (None, "")])


def _xlsx_rows(path: Path) -> Iterator[_Row]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a non-spreadsheet
        raise DataError(f"{path}: not a readable .xlsx workbook ({exc}). Export the sheet again.") from exc
    try:
        sheet = workbook.worksheets[0]
        yield from _rows_from_table(sheet.iter_rows(values_only=True), path)
    except DataError:
        raise
    except Exception as exc:  # a damaged sheet fails while it is read: bad XML, a bad zip member, a CRC error
        raise DataError(
            f"{path}: the workbook is damaged and cannot be read to the end ({type(exc).__name__}: {exc}). "
            "Export the sheet again."
        ) from exc
    finally:
        workbook.close()


def _decode(path: Path) -> str:
    data = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise DataError(f"{path}: not UTF-8 or GB18030 text. Save the file as UTF-8.")


def _csv_rows(path: Path) -> Iterator[_Row]:
    text = _decode(path)
    if "\x00" in text:
        raise DataError(f"{path}: binary data, not a CSV file. Export the annotations as CSV.")
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text[:8192], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        yield from _rows_from_table((tuple(r) for r in reader), path)
    except csv.Error as exc:
        raise DataError(f"{path}: broken CSV ({exc}). Check the quoting around that line.") from exc


# --- records ----------------------------------------------------------------------------------


def _id_text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return unicodedata.normalize("NFKC", str(value if value is not None else "")).strip()


def _source_id(video_id: str) -> str:
    match = _SUBCLIP_ID.fullmatch(video_id)
    return str(int(match.group(1))) if match else video_id


def _file_for(raw_id: str, video_id: str) -> str:
    name = PurePath(raw_id).name
    if re.search(r"\.(mp4|avi|mkv|mov|webm)$", name, re.IGNORECASE) and not _SUBCLIP_ID.fullmatch(video_id):
        return name
    return video_file_name(_source_id(video_id))


class _Builder:
    """Turns rows into records and collects flags, keeping the first of duplicated ids."""

    def __init__(self) -> None:
        self.records: dict[str, VideoRecord] = {}
        self.orphan_flags: list[QualityFlag] = []
        self._columns_checked = False

    def _check_columns(self, row: _Row) -> None:
        """One flag per annotation column the file lacks (its cells then carry no flags)."""
        self._columns_checked = True
        for name in FIELDS[1:]:
            if name not in row.cells:
                problem = f"{KIND_MISSING_COLUMN}: no {name.replace('_', ' ')} column in the header"
                self.orphan_flags.append(QualityFlag("*", name, problem, None))

    def add_row(self, row: _Row) -> None:
        if not self._columns_checked:
            self._check_columns(row)
        raw_id = _id_text(row.cells.get("video_id"))
        content = [row.cells.get(f) for f in FIELDS[1:]]
        if not raw_id:
            if any(v not in (None, "") for v in content):
                self.orphan_flags.append(
                    QualityFlag(f"row {row.number}", "video_id", f"{KIND_BAD_ID}: empty id; row skipped", row.number)
                )
            return
        if _EXAMPLE_ID.match(raw_id):
            return
        video_id = canonical_video_id(raw_id)
        if not re.fullmatch(r"[\w.-]+", video_id):
            self.orphan_flags.append(
                QualityFlag(video_id, "video_id", f"{KIND_BAD_ID}: {raw_id!r}; row skipped", row.number)
            )
            return
        record = build_record(video_id, _file_for(raw_id, video_id), row.cells, row.extra, row.number)
        self.add(record)

    def add(self, record: VideoRecord) -> None:
        first = self.records.get(record.video_id)
        if first is not None:
            problem = f"{KIND_DUPLICATE}: row {record.source_row} repeats row {first.source_row}; kept the first"
            self.orphan_flags.append(QualityFlag(record.video_id, "video_id", problem, record.source_row))
            return
        self.records[record.video_id] = record

    def result(self) -> tuple[list[VideoRecord], list[QualityFlag]]:
        records = sorted(self.records.values(), key=_sort_key)
        flags = [f for r in records for f in r.flags] + self.orphan_flags
        return records, flags


def _sort_key(record: VideoRecord) -> tuple[int, int, str]:
    match = re.fullmatch(r"(\d+)(?:-(\d+))?", record.video_id)
    if match:
        return (int(match.group(1)), int(match.group(2) or 0), "")
    return (1 << 30, 0, record.video_id)


_CELL_PARSERS = {
    "category": cells.parse_categories,
    "moments": cells.parse_moments,
    "descriptions": cells.parse_descriptions,
    "key_phrases": cells.parse_key_phrases,
}


def build_record(
    video_id: str,
    video_file: str,
    values: dict[str, object],
    extra: Iterable[object] = (),
    row: int | None = None,
) -> VideoRecord:
    """Parse one row's cells into a VideoRecord carrying a flag for every problem found.

    Only the fields present in ``values`` are parsed and checked, so a source without (say) a
    moment column yields no moment flags.
    """
    flags: list[QualityFlag] = []

    def flag(field_name: str, problems: Iterable[str]) -> None:
        flags.extend(QualityFlag(video_id, field_name, p, row) for p in problems)

    reason = cells.clean_text(values.get("reason"))
    result = cells.clean_text(values.get("result"))
    unusable = cells.is_unusable_marker(reason)
    if unusable:
        note = cells.clean_text(values.get("category"))
        detail = f" (annotator note: {note!r})" if note and not note.startswith("[") else ""
        flag("video", [f"{KIND_UNUSABLE}: reason is '/'{detail}"])

    parsed: dict[str, list] = {}
    for name, parser in _CELL_PARSERS.items():
        parsed[name], problems = parser(values.get(name)) if name in values else ([], [])
        flag(name, problems)

    if "moments" in values and "descriptions" in values:
        entries = cells.moment_entry_count(values.get("moments"))
        count = len(parsed["descriptions"])
        if entries != count:
            flag("descriptions", [f"{KIND_COUNT_MISMATCH}: {count} descriptions for {entries} moment segments"])
    if not unusable:
        for name, text in (("reason", reason), ("result", result)):
            if name in values and not text:
                flag(name, [f"{KIND_MISSING}: {name} is empty"])
    if reason and reason.lower() == result.lower():
        flag("reason", [f"{KIND_REASON_IS_RESULT}: the Why and How answers are identical"])

    clip_window = next((w for w in map(cells.parse_time_cut, extra) if w is not None), None)
    if clip_window is None and _SUBCLIP_ID.fullmatch(video_id):
        flag("clip_window", [f"{KIND_NO_TIME_CUT}: no 'MM:SS-MM:SS' cut found in the row's notes"])

    annotation = Annotation(
        categories=parsed["category"],
        moments=parsed["moments"],
        descriptions=parsed["descriptions"],
        reason=reason,
        result=result,
        key_phrases=parsed["key_phrases"],
    )
    return VideoRecord(video_id, video_file, annotation, flags, clip_window=clip_window, source_row=row)


# --- CUVA-style JSON --------------------------------------------------------------------------

_CUVA_KEYS = {"task", "output"}
_KEY_PHRASE_KEYS = ("key_phrases", "keyphrases", "key_sentences", "keywords", "key_words")


def _json_records(path: Path) -> list[dict[str, object]]:
    try:
        data = json.loads(_decode(path))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: invalid JSON at line {exc.lineno} ({exc.msg}). Fix or re-export it.") from exc
    except RecursionError:
        raise DataError(
            f"{path}: the JSON is nested too deeply to be annotations (a list of flat records is expected)."
        ) from None
    if isinstance(data, dict):
        data = next(
            (v for k, v in data.items() if k in ("data", "annotations", "records") and isinstance(v, list)), data
        )
    if not isinstance(data, list) or not data or not all(isinstance(x, dict) for x in data):
        raise DataError(f"{path}: expected a JSON list of annotation records (objects).")
    return data


def _cuva_rows(path: Path, records: list[dict[str, object]]) -> Iterator[tuple[str, str, dict[str, object], int]]:
    """Group CUVA QA records (``ID, task, visual_input, instruction, output``) by video."""
    grouped: dict[str, tuple[str, dict[str, object], int]] = {}
    for number, item in enumerate(records, start=1):
        visual = _id_text(item.get("visual_input") or item.get("video_file") or item.get("video_id"))
        if not visual:
            raise DataError(f"{path}: record {number} (ID {item.get('ID')!r}) has no visual_input video name.")
        video_id = canonical_video_id(visual)
        entry = grouped.setdefault(video_id, (_file_for(visual, video_id), {}, number))
        values = entry[1]
        try:
            task = Task.parse(str(item.get("task", "")))
        except ValueError:
            task = None
        output = item.get("output")
        if task is Task.DESCRIPTION:
            text = cells.normalize(output)
            values["descriptions"] = text if text.startswith("[") else f"[{text}]"
        elif task is Task.CAUSE:
            values["reason"] = output
        elif task is Task.RESULT:
            values["result"] = output
        elif task is Task.CLASSIFICATION:
            values["category"] = output
        elif task is Task.TIMESTAMP:
            values["moments"] = output
        for key in _KEY_PHRASE_KEYS:
            if key in item and "key_phrases" not in values:
                phrases = item[key]
                values["key_phrases"] = json.dumps(phrases) if isinstance(phrases, list) else phrases
    for video_id, (video_file, values, number) in grouped.items():
        yield video_id, video_file, values, number


def _read_json(path: Path) -> tuple[list[VideoRecord], list[QualityFlag]]:
    records = _json_records(path)
    builder = _Builder()
    if all(set(r) >= _CUVA_KEYS for r in records[:50]):
        for video_id, video_file, values, number in _cuva_rows(path, records):
            builder.add(build_record(video_id, video_file, values, (), number))
        return builder.result()
    header = list(records[0].keys())
    rows = [tuple(header)] + [tuple(r.get(k) for k in header) for r in records]
    for row in _rows_from_table(iter(rows), path):
        builder.add_row(row)
    return builder.result()


# --- entry point ------------------------------------------------------------------------------


def read_annotations(path: Path) -> tuple[list[VideoRecord], list[QualityFlag]]:
    """Records (sorted by id) and every quality flag, from an .xlsx, .csv or CUVA .json file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: annotation file not found. Pass a dataset folder or an .xlsx/.csv/.json file.")
    suffix = path.suffix.lower()
    if suffix == ".json":
        return _read_json(path)
    if suffix in (".xlsx", ".xlsm"):
        rows = _xlsx_rows(path)
    elif suffix in (".csv", ".tsv", ".txt"):
        rows = _csv_rows(path)
    else:
        raise DataError(f"{path}: unsupported annotation format {suffix!r}; use .xlsx, .csv or .json.")
    builder = _Builder()
    for row in rows:
        builder.add_row(row)
    return builder.result()
