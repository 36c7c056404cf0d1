"""The result log: append-only JSON lines, flushed and fsynced as results arrive, replayed on start.

Each process writes its own file in the cache folder (one writer per file, so lines never
interleave); reading replays every file there. A line torn by a kill is skipped. For a key, a
successful answer wins over failures (greedy decoding gives every success the same text), so a
failed item is asked again on the next run and a success is never asked twice.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from ecva_core.infer.items import ItemResult
from ecva_core.infer.keys import process_tag

LOG_GLOB = "results-*.jsonl"


def read_results(folder: Path) -> dict[str, ItemResult]:
    """Every key's result from all logs in ``folder``: the first success, else the latest failure."""
    found: dict[str, ItemResult] = {}
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob(LOG_GLOB)):
        with path.open("r", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                try:
                    result = ItemResult.from_dict(json.loads(line))
                except (ValueError, KeyError, TypeError):
                    continue
                known = found.get(result.key)
                if known is None or (not known.ok):
                    found[result.key] = result
    return found


class ResultLog:
    """This process's log file; ``append`` (from any thread of the driver) makes results durable before it returns."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / f"results-{process_tag()}.jsonl"
        self._handle: IO[str] | None = None
        self._lock = threading.Lock()

    def append(self, results: Iterable[ItemResult]) -> int:
        """Write ``results`` (one line each), flush and fsync; returns how many were written."""
        lines = [json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in results]
        if not lines:
            return 0
        with self._lock:
            if self._handle is None:
                self.folder.mkdir(parents=True, exist_ok=True)
                self._handle = self.path.open("a", encoding="utf-8")
            self._handle.write("".join(lines))
            self._handle.flush()
            os.fsync(self._handle.fileno())
        return len(lines)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> ResultLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
