"""The results database: models, submissions, predictions, scores and runs in one SQLite file (WAL).

Every write is one short ``BEGIN IMMEDIATE`` transaction on a fresh connection, so several
processes can submit at once, a submission lands completely or not at all, and scores written
batch by batch survive a ``kill -9``. The judge cache lives in the same file
(:meth:`ResultsDB.judge_cache`). Reads return pandas frames for the aggregation code and apps.

A judge score records its judge model and prompt version; verdicts of several judges on one answer
are all kept, stamped with the data version of their write, and readers show the latest judge run
per (answer, metric) unless asked for one judge model.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ecva_core.errors import ResultsError
from ecva_core.results.migrations import SCHEMA_VERSION, migrate, schema_version
from ecva_core.results.model_name import check_model_name
from ecva_core.schema import Prediction

if TYPE_CHECKING:
    import pandas as pd

    from ecva_core.metrics.judge.cache import JudgeCache

SCORE_COLUMNS = ["model", "submission_id", "video_id", "task", "probe", "metric", "value", "status", "reason",
                 "judge_model", "prompt_version"]
_INSERT_SCORE = (
    "INSERT OR REPLACE INTO scores (prediction_id, metric, value, status, reason, judge_model, prompt_version,"
    " version) VALUES (?,?,?,?,?,?,?,?)"
)
_NEXT_VERSION = "SELECT value + 1 FROM meta WHERE key = 'data_version'"
_IS_JUDGE_METRIC = "substr(sc.metric, 1, 6) = 'judge_'"
_LATEST_SCORE = (
    "NOT EXISTS (SELECT 1 FROM scores newer WHERE newer.prediction_id = sc.prediction_id"
    " AND newer.metric = sc.metric{judge} AND (newer.version > sc.version OR (newer.version = sc.version"
    " AND newer.rowid > sc.rowid)))"
)
_INSERT_PREDICTION = (
    "INSERT INTO predictions (submission_id, video_id, task, probe, output, prompt, status, row)"
    " VALUES (?,?,?,?,?,?,?,?)"
)
_INSERT_SUBMISSION = (
    "INSERT INTO submissions (model_id, key, file_name, file_hash, created, coverage, problems, dataset,"
    " dataset_fingerprint) VALUES (?,?,?,?,?,?,?,?,?)"
)
PREDICTION_COLUMNS = ["model", "submission_id", "prediction_id", "video_id", "task", "probe", "output",
                      "prompt", "status", "row"]
AGGREGATE_COLUMNS = ["model", "video_id", "task", "probe", "metric", "value", "status"]
ANSWER_STATUS_COLUMNS = ["model", "video_id", "task", "probe", "status"]
# Only the key columns go through the window's sort (answer and prompt text would be copied along).
_LEAN_PREDICTION = "p.id, p.video_id, p.task, p.probe"
_LATEST_PREDICTIONS = (
    "WITH latest AS (SELECT {columns}, m.name AS model, ROW_NUMBER() OVER (PARTITION BY s.model_id,"
    " p.video_id, p.task, p.probe ORDER BY p.submission_id DESC) AS rank FROM predictions p"
    " JOIN submissions s ON s.id = p.submission_id JOIN models m ON m.id = s.model_id{where})"
)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class StoredPrediction:
    """A prediction as stored: its row id is what scores refer to."""

    id: int
    video_id: str
    task: str
    probe: str
    output: str
    prompt: str
    status: str


@dataclass(frozen=True)
class ScoreRow:
    """One score to write: a value, or a failure/skip state with its reason.

    Judge scores also name the judge model and prompt version that produced them (text metrics
    leave both empty); a row replaces only the stored row with the same metric and judge.
    """

    prediction_id: int
    metric: str
    value: float | None
    status: str
    reason: str = ""
    judge_model: str = ""
    prompt_version: str = ""


@dataclass(frozen=True)
class JudgeScoreState:
    """A stored judge score of one answer: which judge produced it and whether it is the one shown."""

    prediction_id: int
    metric: str
    judge_model: str
    prompt_version: str
    latest: bool


class ResultsDB:
    """Open (creating and migrating as needed) the results database at ``path``."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._prepare()
        except sqlite3.DatabaseError as exc:
            raise ResultsError(f"cannot open the results database {self.path}: {exc}") from exc
        except OSError as exc:
            raise ResultsError(f"cannot create the results database {self.path}: {exc}") from exc

    def __repr__(self) -> str:
        return f"ResultsDB({str(self.path)!r})"

    def _prepare(self, attempts: int = 40) -> None:
        """Switch to WAL and migrate. SQLite answers "database is locked" at once, without waiting,
        when processes that open a new file together race for the journal-mode switch; retry then."""
        for attempt in range(attempts):
            try:
                with self._connection() as conn:
                    if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                        conn.execute("PRAGMA journal_mode=WAL")
                    if schema_version(conn) != SCHEMA_VERSION:
                        migrate(conn)
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == attempts - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout=60000")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=NORMAL")
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One all-or-nothing write transaction that also bumps the data version."""
        with self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'data_version'")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def schema_version(self) -> int:
        with self._connection() as conn:
            return schema_version(conn)

    def data_version(self) -> int:
        """A counter that changes on every write (apps use it as a cache key)."""
        with self._connection() as conn:
            return int(conn.execute("SELECT value FROM meta WHERE key = 'data_version'").fetchone()[0])

    def judge_cache(self) -> JudgeCache:
        """The judge cache table in this same file."""
        from ecva_core.metrics.judge.cache import JudgeCache

        return JudgeCache(self.path)

    # --- writing -------------------------------------------------------------------------------

    def add_submission(
        self,
        model: str,
        predictions: Sequence[Prediction],
        *,
        key: str,
        file_name: str,
        file_hash: str,
        coverage: dict[str, Any] | None = None,
        problems: Sequence[dict[str, Any]] = (),
        dataset: str = "",
        dataset_fingerprint: str = "",
        created: str | None = None,
    ) -> tuple[int, bool]:
        """Store a validated submission in one transaction; return ``(submission_id, is_new)``.

        ``key`` identifies the submission for ``model`` (file hash plus how it was read); storing
        the same key again returns the existing id and changes nothing.
        """
        with self._write() as conn:
            model_id = _ensure_model(conn, model)
            existing = conn.execute(
                "SELECT id FROM submissions WHERE model_id = ? AND key = ?", (model_id, key)
            ).fetchone()
            if existing:
                return int(existing[0]), False
            cur = conn.execute(
                _INSERT_SUBMISSION,
                (model_id, key, file_name, file_hash, created or now(), json.dumps(coverage or {}),
                 json.dumps(list(problems)), dataset, dataset_fingerprint),
            )
            submission_id = int(cur.lastrowid or 0)
            conn.executemany(
                _INSERT_PREDICTION,
                [(submission_id, p.video_id, p.task.value, p.probe or "", p.output, p.prompt, p.status.value,
                  p.row) for p in predictions],
            )
        return submission_id, True

    def write_scores(self, rows: Iterable[ScoreRow]) -> int:
        """Insert or replace a batch of scores in one transaction; return how many were written.

        The rows become the latest for their (answer, metric), so a new judge's verdicts are shown.
        """
        batch = [(r.prediction_id, r.metric, r.value, r.status, r.reason, r.judge_model, r.prompt_version)
                 for r in rows]
        if not batch:
            return 0
        with self._write() as conn:
            version = int(conn.execute(_NEXT_VERSION).fetchone()[0])
            conn.executemany(_INSERT_SCORE, [(*row, version) for row in batch])
        return len(batch)

    def activate_judge_scores(self, rows: Iterable[tuple[int, str, str, str]]) -> int:
        """Make stored judge scores, given as ``(prediction_id, metric, judge_model, prompt_version)``,
        the latest again (switching back to a judge that already scored costs no call); return how many."""
        keys = list(rows)
        if not keys:
            return 0
        with self._write() as conn:
            version = int(conn.execute(_NEXT_VERSION).fetchone()[0])
            conn.executemany(
                "UPDATE scores SET version = ? WHERE prediction_id = ? AND metric = ? AND judge_model = ?"
                " AND prompt_version = ?",
                [(version, *key) for key in keys],
            )
        return len(keys)

    def start_run(self, submission_id: int) -> int:
        with self._write() as conn:
            cur = conn.execute(
                "INSERT INTO runs (submission_id, started, status) VALUES (?, ?, 'running')",
                (submission_id, now()),
            )
            return int(cur.lastrowid or 0)

    def finish_run(self, run_id: int, status: str, counts: dict[str, Any]) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE runs SET finished = ?, status = ?, counts = ? WHERE id = ?",
                (now(), status, json.dumps(counts), run_id),
            )

    def storable_model_name(self, model: str) -> str:
        """The name ``model`` would be stored under: a stored name as it is, a new one checked against
        the model-name rule (:mod:`ecva_core.results.model_name`); check it before any work is done."""
        with self._connection() as conn:
            return _known_or_checked(conn, model)

    def delete_model(self, model: str) -> bool:
        """Remove a model with all its submissions, predictions, scores and runs."""
        with self._write() as conn:
            cur = conn.execute("DELETE FROM models WHERE name = ?", (model,))
            return cur.rowcount > 0

    def log_upload(
        self, outcome: str, *, model: str = "", file_name: str = "", file_hash: str = "", client: str = "",
        detail: str = "",
    ) -> int:
        """Append one entry to the upload log (never a token); it changes no score, so no data version bump."""
        with self._connection() as conn:
            cur = conn.execute(
                "INSERT INTO upload_log (created, model, file_name, file_hash, client, outcome, detail)"
                " VALUES (?,?,?,?,?,?,?)",
                (now(), model[:200], file_name[:200], file_hash, client[:100], outcome, detail[:500]),
            )
            return int(cur.lastrowid or 0)

    def upload_log(self, limit: int = 200) -> list[dict[str, Any]]:
        """The latest ``limit`` upload log entries, newest first."""
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT created, model, file_name, file_hash, client, outcome, detail FROM upload_log"
                " ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        names = ("time", "model", "file_name", "file_hash", "client", "outcome", "detail")
        return [dict(zip(names, r, strict=True)) for r in rows]

    # --- reading -------------------------------------------------------------------------------

    def models(self) -> list[dict[str, Any]]:
        """Every model with its number of submissions and predictions."""
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT m.name, m.created, COUNT(DISTINCT s.id), COUNT(p.id) FROM models m"
                " LEFT JOIN submissions s ON s.model_id = m.id"
                " LEFT JOIN predictions p ON p.submission_id = s.id GROUP BY m.id ORDER BY m.name"
            ).fetchall()
        return [{"model": n, "created": c, "submissions": s, "predictions": p} for n, c, s, p in rows]

    def submissions(self, model: str | None = None) -> list[dict[str, Any]]:
        sql = _SELECT_SUBMISSION
        args: tuple[Any, ...] = ()
        if model is not None:
            sql += " WHERE m.name = ?"
            args = (model,)
        with self._connection() as conn:
            rows = conn.execute(sql + " ORDER BY s.id", args).fetchall()
        return [_submission_row(r) for r in rows]

    def submission_with_key(self, key: str) -> dict[str, Any] | None:
        """The first stored submission with this key (under any model), or None; one query, no scan in Python."""
        with self._connection() as conn:
            row = conn.execute(_SELECT_SUBMISSION + " WHERE s.key = ? ORDER BY s.id LIMIT 1", (key,)).fetchone()
        return None if row is None else _submission_row(row)

    def submission(self, submission_id: int) -> dict[str, Any]:
        for row in self.submissions():
            if row["id"] == submission_id:
                return row
        raise ResultsError(f"no submission with id {submission_id} in {self.path}")

    def stored_predictions(self, submission_id: int) -> list[StoredPrediction]:
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT id, video_id, task, probe, output, prompt, status FROM predictions"
                " WHERE submission_id = ? ORDER BY id",
                (submission_id,),
            ).fetchall()
        return [StoredPrediction(*r) for r in rows]

    def scored_metrics(self, submission_id: int) -> dict[int, set[str]]:
        """For each prediction of a submission, the metrics already stored (for resuming)."""
        done: dict[int, set[str]] = {}
        with self._connection() as conn:
            for pid, metric in conn.execute(
                "SELECT s.prediction_id, s.metric FROM scores s JOIN predictions p ON p.id = s.prediction_id"
                " WHERE p.submission_id = ?",
                (submission_id,),
            ):
                done.setdefault(pid, set()).add(metric)
        return done

    def judge_scores(self, submission_id: int) -> list[JudgeScoreState]:
        """Every stored judge score of a submission's answers, with its judge and whether it is the latest."""
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT sc.prediction_id, sc.metric, sc.judge_model, sc.prompt_version, "
                + _LATEST_SCORE.format(judge="")
                + " FROM scores sc JOIN predictions p ON p.id = sc.prediction_id WHERE p.submission_id = ? AND "
                + _IS_JUDGE_METRIC + " ORDER BY sc.prediction_id, sc.metric, sc.version, sc.rowid",
                (submission_id,),
            ).fetchall()
        return [JudgeScoreState(pid, metric, jm, pv, bool(latest)) for pid, metric, jm, pv, latest in rows]

    def runs(self, submission_id: int | None = None) -> list[dict[str, Any]]:
        sql = "SELECT id, submission_id, started, finished, status, counts FROM runs"
        args: tuple[Any, ...] = ()
        if submission_id is not None:
            sql += " WHERE submission_id = ?"
            args = (submission_id,)
        with self._connection() as conn:
            rows = conn.execute(sql + " ORDER BY id", args).fetchall()
        return [{"id": r[0], "submission_id": r[1], "started": r[2], "finished": r[3], "status": r[4],
                 "counts": json.loads(r[5])} for r in rows]

    def scores_frame(
        self,
        models: Sequence[str] | None = None,
        submission_id: int | None = None,
        dataset_fingerprint: str | None = None,
        judge_model: str | None = None,
        question: tuple[str, str] | None = None,
    ) -> pd.DataFrame:
        """One row per score with columns :data:`SCORE_COLUMNS` (``probe`` is "" for normal answers);
        ``question`` (video_id, task) keeps that question's scores only.

        When a model answered the same (video, task, probe) in several submissions, the latest wins.
        Judge metrics come from the latest judge run per (answer, metric); ``judge_model`` keeps only
        that judge's verdicts (text metrics are kept either way). ``judge_model``/``prompt_version``
        are "" for text metrics and for judge scores stored before judges were recorded.
        """
        import pandas as pd

        where, args = _filters(models, submission_id, dataset_fingerprint, question)
        judge_clause, judge_args = "", []
        if judge_model is not None:
            judge_clause = f" AND (NOT {_IS_JUDGE_METRIC} OR sc.judge_model = ?)"
            judge_args = [judge_model]
        latest_score = _LATEST_SCORE.format(judge=" AND newer.judge_model = sc.judge_model" if judge_model else "")
        sql = (
            _LATEST_PREDICTIONS.format(columns=_LEAN_PREDICTION + ", p.submission_id", where=where)
            + " SELECT l.model, l.submission_id, l.video_id, l.task, l.probe, sc.metric, sc.value, sc.status,"
            " sc.reason, sc.judge_model, sc.prompt_version FROM latest l JOIN scores sc ON sc.prediction_id = l.id"
            " WHERE l.rank = 1" + judge_clause + " AND " + latest_score
            + " ORDER BY l.model, l.video_id, l.task, l.probe, sc.metric"
        )
        with self._connection() as conn:
            rows = conn.execute(sql, [*args, *judge_args]).fetchall()
        frame = pd.DataFrame(rows, columns=SCORE_COLUMNS)
        frame["value"] = pd.to_numeric(frame["value"], errors="coerce").astype(float)
        return frame

    def predictions_frame(
        self,
        models: Sequence[str] | None = None,
        submission_id: int | None = None,
        dataset_fingerprint: str | None = None,
        question: tuple[str, str] | None = None,
    ) -> pd.DataFrame:
        """One row per stored prediction with columns :data:`PREDICTION_COLUMNS` (latest per question;
        ``question`` (video_id, task) keeps that question's answers only)."""
        import pandas as pd

        where, args = _filters(models, submission_id, dataset_fingerprint, question)
        sql = (
            _LATEST_PREDICTIONS.format(columns="p.*", where=where)
            + " SELECT model, submission_id, id, video_id, task, probe, output, prompt, status, row FROM latest"
            " WHERE rank = 1 ORDER BY model, video_id, task, probe"
        )
        with self._connection() as conn:
            rows = conn.execute(sql, args).fetchall()
        return pd.DataFrame(rows, columns=PREDICTION_COLUMNS)

    def model_stamps(self) -> dict[str, str]:
        """Per model, a stamp that changes whenever one of its submissions, predictions or scores is
        written (and when the model is recreated), so a cache of one model's aggregates can be kept
        until that model changes instead of until anything changes."""
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT (SELECT value FROM meta WHERE key = 'instance'), name, id, created, changed FROM models"
                " ORDER BY name"
            ).fetchall()
        return {name: f"{db_id}:{model_id}:{created}:{changed}" for db_id, name, model_id, created, changed in rows}

    def aggregate_frame(
        self, models: Sequence[str] | None = None, metrics: Sequence[str] | None = None, keep_failed: bool = False
    ) -> pd.DataFrame:
        """The rows and order of :meth:`scores_frame` with only :data:`AGGREGATE_COLUMNS`.

        What aggregates read: no reason, prompt, output or judge text is fetched, so reading one
        model's scores for its leaderboard row takes a fraction of the full frame's time. ``metrics``
        keeps those metrics' rows only, and with ``keep_failed`` every failed score too (a question
        view shows one measure and counts any failure).
        """
        import pandas as pd

        where, args = _filters(models, None, None)
        metric_clause = ""
        if metrics is not None:
            names = list(metrics)
            metric_clause = f" AND (sc.metric IN ({','.join('?' * len(names))})" if names else " AND (0"
            metric_clause += " OR sc.status = 'failed')" if keep_failed else ")"
            args = [*args, *names]
        sql = (
            _LATEST_PREDICTIONS.format(columns=_LEAN_PREDICTION, where=where)
            + " SELECT l.model, l.video_id, l.task, l.probe, sc.metric, sc.value, sc.status FROM latest l"
            " JOIN scores sc ON sc.prediction_id = l.id WHERE l.rank = 1" + metric_clause
            + " AND " + _LATEST_SCORE.format(judge="")
            + " ORDER BY l.model, l.video_id, l.task, l.probe, sc.metric"
        )
        with self._connection() as conn:
            rows = conn.execute(sql, args).fetchall()
        frame = pd.DataFrame(rows, columns=AGGREGATE_COLUMNS)
        frame["value"] = pd.to_numeric(frame["value"], errors="coerce").astype(float)
        return frame

    def metrics_by_model(self, models: Sequence[str] | None = None) -> dict[str, tuple[str, ...]]:
        """Per model with scores, the names of the metrics of its latest answers (what
        :meth:`aggregate_frame` would hold), read without fetching any value."""
        where, args = _filters(models, None, None)
        sql = (
            _LATEST_PREDICTIONS.format(columns=_LEAN_PREDICTION, where=where)
            + " SELECT DISTINCT l.model, sc.metric FROM latest l JOIN scores sc ON sc.prediction_id = l.id"
            " WHERE l.rank = 1 ORDER BY l.model, sc.metric"
        )
        with self._connection() as conn:
            rows = conn.execute(sql, args).fetchall()
        out: dict[str, list[str]] = {}
        for model, metric in rows:
            out.setdefault(model, []).append(metric)
        return {model: tuple(names) for model, names in out.items()}

    def answer_status_frame(self, models: Sequence[str] | None = None) -> pd.DataFrame:
        """The rows and order of :meth:`predictions_frame` with only :data:`ANSWER_STATUS_COLUMNS`
        (failure counts need no answer or prompt text)."""
        import pandas as pd

        where, args = _filters(models, None, None)
        sql = (
            _LATEST_PREDICTIONS.format(columns=_LEAN_PREDICTION + ", p.status", where=where)
            + " SELECT model, video_id, task, probe, status FROM latest WHERE rank = 1"
            " ORDER BY model, video_id, task, probe"
        )
        with self._connection() as conn:
            rows = conn.execute(sql, args).fetchall()
        return pd.DataFrame(rows, columns=ANSWER_STATUS_COLUMNS)

    # --- bulk copy (export/import) -------------------------------------------------------------

    def dump_model(self, model: str) -> list[dict[str, Any]]:
        """Every submission of ``model`` with its predictions and their scores (for export)."""
        subs = self.submissions(model)
        if not subs and model not in {m["model"] for m in self.models()}:
            raise ResultsError(f"no model named {model!r} in {self.path}; see `ecva leaderboard`")
        with self._connection() as conn:
            for sub in subs:
                preds = conn.execute(
                    "SELECT id, video_id, task, probe, output, prompt, status, row FROM predictions"
                    " WHERE submission_id = ? ORDER BY id",
                    (sub["id"],),
                ).fetchall()
                scores: dict[int, list[dict[str, Any]]] = {}
                for pid, metric, value, status, reason, judge_model, prompt_version in conn.execute(
                    "SELECT sc.prediction_id, sc.metric, sc.value, sc.status, sc.reason, sc.judge_model,"
                    " sc.prompt_version FROM scores sc JOIN predictions p ON p.id = sc.prediction_id"
                    " WHERE p.submission_id = ? ORDER BY sc.prediction_id, sc.metric, sc.version, sc.rowid",
                    (sub["id"],),
                ):
                    score = {"metric": metric, "value": value, "status": status, "reason": reason}
                    if judge_model or prompt_version:
                        score.update(judge_model=judge_model, prompt_version=prompt_version)
                    scores.setdefault(pid, []).append(score)
                sub["predictions"] = [
                    {"video_id": v, "task": t, "probe": pr, "output": o, "prompt": pm, "status": st,
                     "row": rw, "scores": scores.get(pid, [])}
                    for pid, v, t, pr, o, pm, st, rw in preds
                ]
        return subs

    def load_model(self, model: str, submissions: Sequence[dict[str, Any]]) -> dict[str, int]:
        """Insert dumped submissions for ``model`` in one transaction; known submission keys are skipped.

        Scores keep their judge model; several judges' scores of one answer keep their order (last = latest).
        """
        counts = {"submissions": 0, "skipped": 0, "predictions": 0, "scores": 0}
        with self._write() as conn:
            version = int(conn.execute(_NEXT_VERSION).fetchone()[0])
            model_id = _ensure_model(conn, model)
            for sub in submissions:
                if conn.execute("SELECT 1 FROM submissions WHERE model_id = ? AND key = ?",
                                (model_id, sub["key"])).fetchone():
                    counts["skipped"] += 1
                    continue
                cur = conn.execute(
                    _INSERT_SUBMISSION,
                    (model_id, sub["key"], sub.get("file_name", ""), sub.get("file_hash", ""),
                     sub.get("created") or now(), json.dumps(sub.get("coverage") or {}),
                     json.dumps(sub.get("problems") or []), sub.get("dataset", ""),
                     sub.get("dataset_fingerprint", "")),
                )
                sid = int(cur.lastrowid or 0)
                counts["submissions"] += 1
                for pred in sub.get("predictions", []):
                    pcur = conn.execute(
                        _INSERT_PREDICTION,
                        (sid, pred["video_id"], pred["task"], pred.get("probe") or "", pred["output"],
                         pred.get("prompt") or "", pred["status"], pred.get("row")),
                    )
                    pid = int(pcur.lastrowid or 0)
                    counts["predictions"] += 1
                    for sc in pred.get("scores", []):
                        conn.execute(
                            _INSERT_SCORE,
                            (pid, sc["metric"], sc.get("value"), sc["status"], sc.get("reason") or "",
                             sc.get("judge_model") or "", sc.get("prompt_version") or "", version),
                        )
                        counts["scores"] += 1
        return counts


_SELECT_SUBMISSION = (
    "SELECT s.id, m.name, s.key, s.file_name, s.file_hash, s.created, s.coverage, s.problems,"
    " s.dataset, s.dataset_fingerprint FROM submissions s JOIN models m ON m.id = s.model_id"
)


def _submission_row(r: Sequence[Any]) -> dict[str, Any]:
    return {"id": r[0], "model": r[1], "key": r[2], "file_name": r[3], "file_hash": r[4], "created": r[5],
            "coverage": json.loads(r[6]), "problems": json.loads(r[7]), "dataset": r[8],
            "dataset_fingerprint": r[9]}


def _known_or_checked(conn: sqlite3.Connection, model: str) -> str:
    """A stored model name as it is (older versions allowed other names), else the checked new name."""
    name = str(model or "").strip()
    if conn.execute("SELECT 1 FROM models WHERE name = ?", (name,)).fetchone():
        return name
    return check_model_name(name)


def _ensure_model(conn: sqlite3.Connection, model: str) -> int:
    """The id of ``model``, adding it when new (a new name must follow the model-name rule)."""
    name = _known_or_checked(conn, model)
    conn.execute("INSERT OR IGNORE INTO models (name, created) VALUES (?, ?)", (name, now()))
    return int(conn.execute("SELECT id FROM models WHERE name = ?", (name,)).fetchone()[0])


def _filters(
    models: Sequence[str] | None,
    submission_id: int | None,
    dataset_fingerprint: str | None,
    question: tuple[str, str] | None = None,
) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    if question is not None:
        clauses.append("p.video_id = ? AND p.task = ?")
        args.extend(question)
    if models is not None:
        names = list(models)
        clauses.append(f"m.name IN ({','.join('?' * len(names))})" if names else "0")
        args.extend(names)
    if submission_id is not None:
        clauses.append("s.id = ?")
        args.append(submission_id)
    if dataset_fingerprint is not None:
        clauses.append("s.dataset_fingerprint = ?")
        args.append(dataset_fingerprint)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args
