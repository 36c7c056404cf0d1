"""Malformed submissions too big or too deep to commit: written at test time, streamed to disk.

``expectations.csv`` names them in its ``generated`` column; :func:`generate` writes one by that name.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

DEPTH = 100_000
CHUNK = 1 << 20


def _deep_array(path: Path) -> None:
    path.write_text("[" * DEPTH + "]" * DEPTH, encoding="utf-8")


def _deep_line(path: Path) -> None:
    path.write_text('{"video_file": "1", "output": ' + '{"a": ' * DEPTH + "1" + "}" * DEPTH + "}\n", encoding="utf-8")


def _deep_in_a_row(path: Path) -> None:
    row = '{"video_file": "1", "task_type": "Description", "output": ' + "[" * DEPTH + "]" * DEPTH + "}"
    path.write_text(f"[{row}]", encoding="utf-8")


def _upload_200mb(path: Path) -> None:
    """A 200 MB JSON list of answers, written a megabyte at a time (never held in memory)."""
    row = b'{"video_file": "00001.mp4", "output": "' + b"x" * 1000 + b'", "task_type": "Description"},\n'
    block = row * (CHUNK // len(row))
    with path.open("wb") as handle:
        handle.write(b"[\n")
        for _ in range(200 * CHUNK // len(block) + 1):
            handle.write(block)
        handle.write(row.rstrip(b",\n") + b"\n]\n")


GENERATORS: dict[str, Callable[[Path], None]] = {
    "deep_array": _deep_array,
    "deep_line": _deep_line,
    "deep_in_a_row": _deep_in_a_row,
    "upload_200mb": _upload_200mb,
}


def generate(kind: str, folder: Path, file_name: str) -> Path:
    """Write the generated case ``kind`` as ``folder/file_name`` and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / file_name
    GENERATORS[kind](path)
    return path
