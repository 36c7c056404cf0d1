"""Versioned schema of the results database, applied with ``PRAGMA user_version``.

Each migration is a list of statements that moves the schema from version ``n - 1`` to ``n``.
Migrations only add; a database written by an older release opens and upgrades in place.
"""

from __future__ import annotations

import sqlite3

from ecva_core.errors import ResultsError

_SCORE_OWNER = (
    "SELECT s.model_id FROM predictions p JOIN submissions s ON s.id = p.submission_id WHERE p.id = {row}.prediction_id"
)

MIGRATIONS: dict[int, list[str]] = {
    1: [
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
        "INSERT INTO meta (key, value) VALUES ('data_version', 0)",
        """CREATE TABLE models (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            created TEXT NOT NULL
        )""",
        """CREATE TABLE submissions (
            id INTEGER PRIMARY KEY,
            model_id INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
            key TEXT NOT NULL,
            file_name TEXT NOT NULL,
            file_hash TEXT NOT NULL,
            created TEXT NOT NULL,
            coverage TEXT NOT NULL DEFAULT '{}',
            UNIQUE (model_id, key)
        )""",
        """CREATE TABLE predictions (
            id INTEGER PRIMARY KEY,
            submission_id INTEGER NOT NULL REFERENCES submissions(id) ON DELETE CASCADE,
            video_id TEXT NOT NULL,
            task TEXT NOT NULL,
            probe TEXT NOT NULL DEFAULT '',
            output TEXT NOT NULL,
            prompt TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL,
            row INTEGER,
            UNIQUE (submission_id, video_id, task, probe)
        )""",
        """CREATE TABLE scores (
            prediction_id INTEGER NOT NULL REFERENCES predictions(id) ON DELETE CASCADE,
            metric TEXT NOT NULL,
            value REAL,
            status TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (prediction_id, metric)
        )""",
    ],
    2: [
        "ALTER TABLE submissions ADD COLUMN dataset TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE submissions ADD COLUMN dataset_fingerprint TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE submissions ADD COLUMN problems TEXT NOT NULL DEFAULT '[]'",
        """CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            submission_id INTEGER NOT NULL REFERENCES submissions(id) ON DELETE CASCADE,
            started TEXT NOT NULL,
            finished TEXT,
            status TEXT NOT NULL,
            counts TEXT NOT NULL DEFAULT '{}'
        )""",
        "CREATE INDEX predictions_key ON predictions (video_id, task, probe)",
        "CREATE INDEX scores_metric ON scores (metric)",
    ],
    # Judge scores record their judge model and prompt version, and several judges' verdicts on one
    # answer coexist; ``version`` (the data version of the write) orders them, so the latest judge run
    # is what readers show by default. Rows from older releases keep an empty (unrecorded) judge model.
    3: [
        """CREATE TABLE scores_v3 (
            prediction_id INTEGER NOT NULL REFERENCES predictions(id) ON DELETE CASCADE,
            metric TEXT NOT NULL,
            judge_model TEXT NOT NULL DEFAULT '',
            prompt_version TEXT NOT NULL DEFAULT '',
            value REAL,
            status TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            version INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (prediction_id, metric, judge_model, prompt_version)
        )""",
        "INSERT INTO scores_v3 (prediction_id, metric, value, status, reason)"
        " SELECT prediction_id, metric, value, status, reason FROM scores",
        "DROP TABLE scores",
        "ALTER TABLE scores_v3 RENAME TO scores",
        "CREATE INDEX scores_metric ON scores (metric)",
        "UPDATE meta SET value = value + 1 WHERE key = 'data_version'",
    ],
    # Per-model change stamp: ``models.changed`` is the data version of the last write that touched the
    # model's submissions, predictions or scores (kept by triggers, so every writer keeps it), letting
    # apps cache one model's aggregates and recompute only the models a write changed; ``instance`` tells
    # a database from another one later created at the same path.
    4: [
        "ALTER TABLE models ADD COLUMN changed INTEGER NOT NULL DEFAULT 0",
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('instance', abs(random()))",
        "UPDATE models SET changed = (SELECT value FROM meta WHERE key = 'data_version')",
        *(
            f"CREATE TRIGGER {name} AFTER {event} ON {table} BEGIN UPDATE models SET changed ="
            f" (SELECT value + 1 FROM meta WHERE key = 'data_version') WHERE id = ({owner}); END"
            for name, event, table, owner in (
                ("submissions_stamp_insert", "INSERT", "submissions", "NEW.model_id"),
                ("submissions_stamp_delete", "DELETE", "submissions", "OLD.model_id"),
                (
                    "predictions_stamp_insert",
                    "INSERT",
                    "predictions",
                    "SELECT model_id FROM submissions WHERE id = NEW.submission_id",
                ),
                (
                    "predictions_stamp_update",
                    "UPDATE",
                    "predictions",
                    "SELECT model_id FROM submissions WHERE id = NEW.submission_id",
                ),
                (
                    "predictions_stamp_delete",
                    "DELETE",
                    "predictions",
                    "SELECT model_id FROM submissions WHERE id = OLD.submission_id",
                ),
                ("scores_stamp_insert", "INSERT", "scores", _SCORE_OWNER.format(row="NEW")),
                ("scores_stamp_update", "UPDATE", "scores", _SCORE_OWNER.format(row="NEW")),
                ("scores_stamp_delete", "DELETE", "scores", _SCORE_OWNER.format(row="OLD")),
            )
        ),
    ],
    # Upload log of the explorer's Submit page: who uploaded what and what became of it, shown to whoever
    # holds the submit token. Writing it does not bump the data version (no score or answer changes).
    5: [
        """CREATE TABLE upload_log (
            id INTEGER PRIMARY KEY,
            created TEXT NOT NULL,
            model TEXT NOT NULL DEFAULT '',
            file_name TEXT NOT NULL DEFAULT '',
            file_hash TEXT NOT NULL DEFAULT '',
            client TEXT NOT NULL DEFAULT '',
            outcome TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT ''
        )""",
    ],
}

SCHEMA_VERSION = max(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Bring the schema up to ``target`` in one transaction; safe when several processes race."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = schema_version(conn)
        if current > SCHEMA_VERSION:
            raise ResultsError(
                f"the results database has schema version {current}, newer than this release "
                f"understands ({SCHEMA_VERSION}); upgrade ecva or use another --db"
            )
        for version in range(current + 1, target + 1):
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return max(current, target)
