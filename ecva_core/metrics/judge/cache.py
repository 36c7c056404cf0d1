"""Persistent judge cache: one SQLite table (WAL) keyed by prompt version, judge model and inputs.

Only verdicts that parsed are stored, one autocommitted row per verdict as it arrives, so a run
killed mid-way keeps everything already judged and a repeated run makes no calls for it. The
table can live in its own file or in the results database (several processes may share it).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ecva_core.errors import JudgeError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS judge_cache (
    key TEXT PRIMARY KEY,
    judge TEXT NOT NULL,
    judge_model TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    score INTEGER NOT NULL,
    value REAL NOT NULL,
    reason TEXT NOT NULL,
    tokens_in INTEGER NOT NULL DEFAULT 0,
    tokens_out INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
)
"""

_INSERT = (
    "INSERT OR REPLACE INTO judge_cache (key, judge, judge_model, prompt_version, score, value, reason,"
    " tokens_in, tokens_out, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)"
)


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        raise JudgeError(f"cannot read the judge cache at {path}: {exc}") from exc


def cache_key(prompt_version: str, judge_model: str, judge: str, inputs: dict[str, object]) -> str:
    """sha256 over the canonical JSON of everything that determines a verdict."""
    parts = [prompt_version, judge_model, judge, inputs]
    payload = json.dumps(parts, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CachedVerdict:
    """A stored verdict: the judge's raw score, the metric value derived from it, and its reason."""

    score: int
    value: float
    reason: str
    tokens_in: int
    tokens_out: int


class JudgeCache:
    """The ``judge_cache`` table in ``db_path``; safe to share between threads and processes."""

    def __init__(self, db_path: Path | str) -> None:
        self.db_path = Path(db_path)
        try:
            self.db_path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.db_path, timeout=30.0, isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA busy_timeout=30000")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise JudgeError(f"cannot open the judge cache at {self.db_path}: {exc}") from exc
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> JudgeCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get_many(self, keys: Iterable[str]) -> dict[str, CachedVerdict]:
        """The stored verdicts among ``keys`` (missing keys are simply absent)."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, CachedVerdict] = {}
        with self._lock, _reading(self.db_path):
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(
                    f"SELECT key, score, value, reason, tokens_in, tokens_out FROM judge_cache WHERE key IN ({marks})",
                    chunk,
                ).fetchall()
                for key, score, value, reason, t_in, t_out in rows:
                    found[key] = CachedVerdict(int(score), float(value), reason, int(t_in), int(t_out))
        return found

    def get(self, key: str) -> CachedVerdict | None:
        return self.get_many([key]).get(key)

    def put(
        self,
        key: str,
        *,
        judge: str,
        judge_model: str,
        prompt_version: str,
        verdict: CachedVerdict,
    ) -> None:
        """Store one parsed verdict, committed at once (autocommit)."""
        row = (
            key,
            judge,
            judge_model,
            prompt_version,
            verdict.score,
            verdict.value,
            verdict.reason,
            verdict.tokens_in,
            verdict.tokens_out,
            datetime.now(UTC).isoformat(timespec="seconds"),
        )
        with self._lock:
            try:
                self._conn.execute(_INSERT, row)
            except sqlite3.Error as exc:
                raise JudgeError(f"cannot write to the judge cache at {self.db_path}: {exc}") from exc

    def count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM judge_cache").fetchone()[0])
