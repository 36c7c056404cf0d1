"""The results database: migrations, atomic submissions, concurrency, frames, export/import."""

from __future__ import annotations

import csv
import json
import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from ecva_core.errors import ResultsError
from ecva_core.results.db import AGGREGATE_COLUMNS, ANSWER_STATUS_COLUMNS, SCORE_COLUMNS, ResultsDB, ScoreRow
from ecva_core.results.export import escape_cell, export_model, import_results, unescape_cell
from ecva_core.results.migrations import SCHEMA_VERSION, migrate
from ecva_core.schema import Prediction, PredictionStatus, Task


def _preds(n: int = 3, output: str = "an answer") -> list[Prediction]:
    return [Prediction(str(i), Task.CAUSE, f"{output} {i}", "Why?", None, PredictionStatus.OK, i)
            for i in range(1, n + 1)]


def _add(db: ResultsDB, model: str, key: str, preds: list[Prediction] | None = None) -> int:
    sid, _ = db.add_submission(model, preds if preds is not None else _preds(), key=key, file_name="f.json",
                               file_hash=key, coverage={"matched": 3})
    return sid


def test_new_database_is_wal_at_current_version(tmp_path: Path) -> None:
    db = ResultsDB(tmp_path / "r.db")
    assert db.schema_version() == SCHEMA_VERSION
    with sqlite3.connect(db.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"models", "submissions", "predictions", "scores", "runs", "meta"} <= tables


def test_old_version_database_is_migrated_with_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, target=1)
    conn.execute("INSERT INTO models (name, created) VALUES ('old-model', '2025-01-01')")
    conn.execute("INSERT INTO submissions (model_id, key, file_name, file_hash, created)"
                 " VALUES (1,'k','a.json','h','x')")
    conn.execute("INSERT INTO predictions (submission_id, video_id, task, output, status)"
                 " VALUES (1,'7','Cause','o','ok')")
    conn.execute("INSERT INTO scores (prediction_id, metric, value, status) VALUES (1,'bleu1',0.5,'ok')")
    conn.close()
    db = ResultsDB(path)
    assert db.schema_version() == SCHEMA_VERSION
    frame = db.scores_frame()
    assert frame.to_dict("records") == [{"model": "old-model", "submission_id": 1, "video_id": "7", "task": "Cause",
                                         "probe": "", "metric": "bleu1", "value": 0.5, "status": "ok", "reason": "",
                                         "judge_model": "", "prompt_version": ""}]
    assert db.submissions()[0]["dataset"] == "" and db.runs() == []


def test_version_2_database_with_judge_scores_migrates_to_3_losing_nothing(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, target=2)
    conn.execute("INSERT INTO models (name, created) VALUES ('m', '2025-01-01')")
    conn.execute("INSERT INTO submissions (model_id, key, file_name, file_hash, created, dataset, dataset_fingerprint)"
                 " VALUES (1,'k','a.json','h','x','demo','fp')")
    conn.executemany("INSERT INTO predictions (submission_id, video_id, task, probe, output, status)"
                     " VALUES (1,?,?,?,?,?)",
                     [("7", "Cause", "", "o", "ok"), ("7", "Cause", "no_keyframes", "None", "ok"),
                      ("8", "Result", "", "ERROR", "error")])
    conn.executemany("INSERT INTO scores (prediction_id, metric, value, status, reason) VALUES (?,?,?,?,?)",
                     [(1, "bleu1", 0.5, "ok", ""), (1, "judge_consistency", 1.0, "ok", "same event"),
                      (1, "judge_logic", 4.0, "ok", "sound"), (2, "judge_hallucination", 1.0, "ok", "abstains"),
                      (3, "judge_logic", None, "failed", "the model's inference failed (ERROR row)")])
    conn.execute("INSERT INTO runs (submission_id, started, finished, status, counts) VALUES (1,'s','f','done','{}')")
    version_before = conn.execute("SELECT value FROM meta WHERE key='data_version'").fetchone()[0]
    conn.close()
    db = ResultsDB(path)
    assert db.schema_version() == SCHEMA_VERSION >= 3
    assert db.data_version() > version_before  # app caches of the old frame shape are invalidated
    frame = db.scores_frame()
    assert len(frame) == 5 and set(frame["judge_model"]) == {""} and set(frame["prompt_version"]) == {""}
    rows = {(r["video_id"], r["probe"], r["metric"]): (r["value"], r["status"], r["reason"])
            for r in frame.to_dict("records")}
    assert rows[("7", "", "judge_consistency")] == (1.0, "ok", "same event")
    assert rows[("7", "no_keyframes", "judge_hallucination")] == (1.0, "ok", "abstains")
    assert rows[("8", "", "judge_logic")][1:] == ("failed", "the model's inference failed (ERROR row)")
    assert len(db.predictions_frame()) == 3 and len(db.runs()) == 1 and db.submissions()[0]["dataset"] == "demo"
    assert [(s.metric, s.judge_model, s.latest) for s in db.judge_scores(1)][:2] == [
        ("judge_consistency", "", True), ("judge_logic", "", True)]
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert check.execute("PRAGMA foreign_key_check").fetchall() == []
        indexes = {r[0] for r in check.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "scores_metric" in indexes
    db.delete_model("m")  # cascades still reach the rebuilt scores table
    with sqlite3.connect(path) as check:
        assert check.execute("SELECT COUNT(*) FROM scores").fetchone()[0] == 0


def test_judge_scores_of_several_judges_coexist_and_the_latest_is_shown(tmp_path: Path) -> None:
    db = ResultsDB(tmp_path / "r.db")
    sid = _add(db, "m", "k")
    preds = db.stored_predictions(sid)
    db.write_scores(ScoreRow(p.id, "bleu1", 0.3, "ok") for p in preds)
    db.write_scores(ScoreRow(p.id, "judge_logic", 1.0, "ok", "a", "judge-a", "logic-v1") for p in preds)
    db.write_scores(ScoreRow(p.id, "judge_logic", 5.0, "ok", "b", "judge-b", "logic-v1") for p in preds)
    latest = db.scores_frame()
    assert len(latest) == 6
    judged = latest[latest["metric"] == "judge_logic"]
    assert set(judged["value"]) == {5.0} and set(judged["judge_model"]) == {"judge-b"}
    only_a = db.scores_frame(judge_model="judge-a")
    assert set(only_a.loc[only_a["metric"] == "judge_logic", "value"]) == {1.0}
    assert set(only_a.loc[only_a["metric"] == "bleu1", "value"]) == {0.3}  # text metrics are kept
    assert db.scores_frame(judge_model="nobody")["metric"].tolist() == ["bleu1"] * 3
    states = db.judge_scores(sid)
    assert {(s.judge_model, s.latest) for s in states} == {("judge-a", False), ("judge-b", True)}
    version = db.data_version()
    assert db.activate_judge_scores((s.prediction_id, s.metric, s.judge_model, s.prompt_version)
                                    for s in states if s.judge_model == "judge-a") == 3
    assert db.data_version() > version
    back = db.scores_frame()
    assert set(back.loc[back["metric"] == "judge_logic", "judge_model"]) == {"judge-a"}
    db.write_scores([ScoreRow(preds[0].id, "judge_logic", 3.0, "ok", "b again", "judge-b", "logic-v1")])
    mixed = db.scores_frame().set_index("video_id")
    assert mixed.loc[mixed["metric"] == "judge_logic", "judge_model"].to_dict() == {
        "1": "judge-b", "2": "judge-a", "3": "judge-a"}
    assert len(db.judge_scores(sid)) == 6  # replaced in place, never duplicated


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    ResultsDB(path)
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(ResultsError, match="newer than this release"):
        ResultsDB(path)


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ResultsError, match="cannot open"):
        ResultsDB(path)


def test_submission_is_all_or_nothing(tmp_path: Path) -> None:
    db = ResultsDB(tmp_path / "r.db")
    version = db.data_version()
    bad = [*_preds(), _preds()[0]]  # a repeated (video, task, probe) violates the unique key mid-insert
    with pytest.raises(sqlite3.IntegrityError):
        _add(db, "m", "k1", bad)
    assert db.models() == [] and db.submissions() == [] and db.data_version() == version


@pytest.mark.parametrize("name", ["VideoLLaMA2", "Qwen/Qwen2-VL-7B (int4)", "ÄnomGPT 1.5:beta_2", "x" * 80])
def test_model_names_that_follow_the_rule_are_stored(tmp_path: Path, name: str) -> None:
    db = ResultsDB(tmp_path / "r.db")
    _add(db, f" {name} ", "k")
    assert [m["model"] for m in db.models()] == [name]


@pytest.mark.parametrize("name", ["", "   ", "=cmd|' /C calc'!A0", "+1", "-1", "@sum", "_x", "a;b", "a\tb", "x" * 81])
def test_model_names_against_the_rule_are_refused_with_it(tmp_path: Path, name: str) -> None:
    db = ResultsDB(tmp_path / "r.db")
    with pytest.raises(ResultsError, match="letter or digit first"):
        _add(db, name, "k")
    with pytest.raises(ResultsError, match="letter or digit first"):
        db.storable_model_name(name)
    assert db.models() == [] and db.submissions() == []


def test_a_name_stored_before_the_rule_stays_readable_and_writable(tmp_path: Path) -> None:
    db = ResultsDB(tmp_path / "r.db")
    with sqlite3.connect(db.path) as conn:  # as an older version stored it (any 1-200 characters)
        conn.execute("INSERT INTO models (name, created) VALUES ('[old] model; v1', '2025-01-01')")
    assert db.storable_model_name("[old] model; v1") == "[old] model; v1"
    sid = _add(db, "[old] model; v1", "k")
    assert db.submission(sid)["model"] == "[old] model; v1"
    assert [m["model"] for m in db.models()] == ["[old] model; v1"]
    assert db.delete_model("[old] model; v1")


def test_same_key_is_recognised_and_not_stored_twice(tmp_path: Path) -> None:
    db = ResultsDB(tmp_path / "r.db")
    first, new = db.add_submission("m", _preds(), key="k", file_name="a", file_hash="h")
    again, new_again = db.add_submission("m", _preds(), key="k", file_name="a", file_hash="h")
    assert (first, new) == (again, not new_again) == (first, True)
    assert db.models()[0]["predictions"] == 3


def test_scores_frame_latest_submission_wins_and_data_version_moves(tmp_path: Path) -> None:
    db = ResultsDB(tmp_path / "r.db")
    old = _add(db, "m", "k1")
    new = _add(db, "m", "k2", _preds(2, "better"))
    v0 = db.data_version()
    for sid, value in ((old, 0.1), (new, 0.9)):
        db.write_scores(ScoreRow(p.id, "bleu1", value, "ok") for p in db.stored_predictions(sid))
    assert db.data_version() > v0
    frame = db.scores_frame()
    assert list(frame.columns) == SCORE_COLUMNS
    by_video = dict(zip(frame["video_id"], frame["value"], strict=True))
    assert by_video == {"1": 0.9, "2": 0.9, "3": 0.1}
    preds = db.predictions_frame(models=["m"])
    assert sorted(preds["output"]) == ["an answer 3", "better 1", "better 2"]
    assert db.scored_metrics(new) == {p.id: {"bleu1"} for p in db.stored_predictions(new)}
    assert db.scores_frame(models=["other"]).empty


def test_delete_model_removes_everything(tmp_path: Path) -> None:
    db = ResultsDB(tmp_path / "r.db")
    sid = _add(db, "gone", "k")
    db.write_scores([ScoreRow(db.stored_predictions(sid)[0].id, "bleu1", 1.0, "ok")])
    run = db.start_run(sid)
    db.finish_run(run, "done", {"n": 1})
    _add(db, "kept", "k")
    assert db.delete_model("gone") is True and db.delete_model("gone") is False
    assert [m["model"] for m in db.models()] == ["kept"]
    assert db.scores_frame().empty and db.runs() == []


def _submit_in_process(args: tuple[str, int]) -> int:
    path, worker = args
    db = ResultsDB(path)
    preds = _preds(150)
    sid, _ = db.add_submission(f"model-{worker}", preds, key=f"k{worker}", file_name="f", file_hash="h")
    stored = db.stored_predictions(sid)
    for start in range(0, len(stored), 25):
        db.write_scores(ScoreRow(p.id, "bleu1", worker / 10, "ok") for p in stored[start : start + 25])
    return sid


def test_concurrent_submissions_from_four_processes_all_land(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    ResultsDB(path)
    with multiprocessing.get_context("fork").Pool(4) as pool:
        ids = pool.map(_submit_in_process, [(path, w) for w in range(4)])
    db = ResultsDB(path)
    assert len(set(ids)) == 4
    frame = db.scores_frame()
    assert len(frame) == 600
    assert frame.groupby("model")["value"].first().to_dict() == {f"model-{w}": w / 10 for w in range(4)}


def test_judge_cache_lives_in_the_same_file(tmp_path: Path) -> None:
    db = ResultsDB(tmp_path / "r.db")
    with db.judge_cache() as cache:
        assert cache.count() == 0
    with sqlite3.connect(db.path) as conn:
        assert conn.execute("SELECT name FROM sqlite_master WHERE name='judge_cache'").fetchone()
    assert db.schema_version() == SCHEMA_VERSION


@pytest.mark.parametrize("cell", ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tx", "\rx", "'=x", "'", "plain", "", "19-1"])
def test_cell_escaping_round_trips(cell: str) -> None:
    escaped = escape_cell(cell)
    assert not str(escaped).startswith(("=", "+", "-", "@", "\t", "\r"))
    assert unescape_cell(str(escaped)) == cell


def _populated(tmp_path: Path) -> ResultsDB:
    db = ResultsDB(tmp_path / "src.db")
    evil = [Prediction("1", Task.CAUSE, '=HYPERLINK("http://evil","x")', "@prompt"),
            Prediction("2", Task.CAUSE, "ERROR", "", None, PredictionStatus.ERROR, 2),
            Prediction("2", Task.CAUSE, "None", "", "no_keyframes", PredictionStatus.OK, 3),
            Prediction("3", Task.RESULT, "-a dash, a comma\nand a newline", "")]
    sid, _ = db.add_submission("evil-model", evil, key="k", file_name="=f.json", file_hash="h",
                               coverage={"matched": 4}, dataset="demo", dataset_fingerprint="fp")
    stored = db.stored_predictions(sid)
    db.write_scores([ScoreRow(stored[0].id, "bleu1", 0.25, "ok"),
                     ScoreRow(stored[0].id, "rougeL", 1 / 3, "ok"),
                     ScoreRow(stored[1].id, "bleu1", None, "failed", "-the model's inference failed")])
    return db


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_export_import_round_trip(fmt: str, tmp_path: Path) -> None:
    src = _populated(tmp_path)
    out = tmp_path / f"export.{fmt}"
    counts = export_model(src, "evil-model", out)
    assert counts == {"model": "evil-model", "file": str(out), "format": fmt, "submissions": 1, "predictions": 4,
                      "scores": 3}
    dst = ResultsDB(tmp_path / "dst.db")
    result = import_results(dst, out)
    assert result["predictions"] == 4 and result["scores"] == 3
    for frame in ("scores_frame", "predictions_frame"):
        a = getattr(src, frame)().drop(columns=["submission_id", *(["prediction_id"] if "pred" in frame else [])])
        b = getattr(dst, frame)().drop(columns=["submission_id", *(["prediction_id"] if "pred" in frame else [])])
        assert a.equals(b), (a, b)
    assert dst.submissions()[0]["coverage"] == {"matched": 4}
    assert import_results(dst, out)["skipped"] == 1  # importing twice adds nothing
    renamed = import_results(dst, out, model="copy")
    assert renamed["model"] == "copy" and len(dst.models()) == 2


def test_csv_export_has_no_formula_cells(tmp_path: Path) -> None:
    out = tmp_path / "e.csv"
    export_model(_populated(tmp_path), "evil-model", out)
    with out.open(encoding="utf-8", newline="") as handle:
        cells = [c for row in csv.reader(handle) for c in row]
    assert "'=HYPERLINK(\"http://evil\",\"x\")" in cells and "'@prompt" in cells and "'=f.json" in cells
    assert not [c for c in cells if c[:1] in {"=", "+", "-", "@", "\t", "\r"}]


def test_a_table_download_goes_through_the_same_formula_safe_writer() -> None:
    import pandas as pd

    from ecva_core.results.export import table_csv

    table = pd.DataFrame({"model": ["=cmd|' /C calc'!A0", "@sum", "plain"], "rougeL": [0.5, float("nan"), -0.25]})
    rows = list(csv.reader(table_csv(table).splitlines()))
    assert rows[0] == ["model", "rougeL"]
    assert rows[1:] == [["'=cmd|' /C calc'!A0", "0.5"], ["'@sum", ""], ["plain", "-0.25"]]  # numbers stay numbers
    assert [unescape_cell(row[0]) for row in rows[1:]] == list(table["model"])


def test_export_unknown_model_and_bad_import(tmp_path: Path) -> None:
    db = ResultsDB(tmp_path / "r.db")
    with pytest.raises(ResultsError, match="no model named 'x'"):
        export_model(db, "x", tmp_path / "x.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"hello": 1}))
    with pytest.raises(ResultsError, match="not an ECVA results export"):
        import_results(db, bad)
    with pytest.raises(ResultsError, match="unknown export format"):
        _add(db, "m", "k")
        export_model(db, "m", tmp_path / "x.xml")


def test_export_import_keeps_every_judges_scores_and_which_is_latest(tmp_path: Path) -> None:
    src = ResultsDB(tmp_path / "src.db")
    sid = _add(src, "m", "k")
    preds = src.stored_predictions(sid)
    src.write_scores(ScoreRow(p.id, "bleu1", 0.5, "ok") for p in preds)
    src.write_scores(ScoreRow(p.id, "judge_consistency", 1.0, "ok", "a", "judge-a", "consistency-v1") for p in preds)
    src.write_scores(ScoreRow(p.id, "judge_consistency", 0.0, "ok", "b", "judge-b", "consistency-v1") for p in preds)
    src.activate_judge_scores([(preds[0].id, "judge_consistency", "judge-a", "consistency-v1")])
    out = tmp_path / "e.json"
    assert export_model(src, "m", out)["scores"] == 9
    dst = ResultsDB(tmp_path / "dst.db")
    assert import_results(dst, out)["scores"] == 9
    for judge in (None, "judge-a", "judge-b"):
        a = src.scores_frame(judge_model=judge).drop(columns=["submission_id"])
        b = dst.scores_frame(judge_model=judge).drop(columns=["submission_id"])
        assert a.equals(b), (judge, a, b)
    latest = dst.scores_frame().set_index("video_id")
    assert latest.loc[latest["metric"] == "judge_consistency", "judge_model"].to_dict() == {
        "1": "judge-a", "2": "judge-b", "3": "judge-b"}
    csv_out = tmp_path / "e.csv"
    export_model(src, "m", csv_out)
    flat = ResultsDB(tmp_path / "flat.db")
    import_results(flat, csv_out)
    cols = ["video_id", "metric", "value", "status", "reason"]
    assert flat.scores_frame()[cols].equals(src.scores_frame()[cols])  # CSV keeps the latest verdicts' values
    judged = flat.scores_frame(judge_model="judge-a")
    assert set(judged.loc[judged["metric"] == "judge_consistency", "judge_model"]) == {"judge-a"}


def _two_model_db(path: Path) -> tuple[ResultsDB, list, list]:
    """Model a (two submissions, two judges, a probe answer) and model b (one submission, text only)."""
    db = ResultsDB(path)
    _add(db, "a", "k1")
    probe = [Prediction("1", Task.CAUSE, "None", probe="no_keyframes", row=9)]
    a2 = _add(db, "a", "k2", [*_preds(2, "better"), *probe])
    b1 = _add(db, "b", "k1", [*_preds(3), Prediction("4", Task.RESULT, "ERROR", status=PredictionStatus.ERROR, row=4)])
    for sid in db.submissions("a")[0]["id"], a2, b1:
        db.write_scores(ScoreRow(p.id, "bleu1", 0.1 * p.id, "ok") for p in db.stored_predictions(sid) if not p.probe)
    a_preds, b_preds = db.stored_predictions(a2), db.stored_predictions(b1)
    db.write_scores(ScoreRow(p.id, "judge_logic", 2.0, "ok", "long reason " * 20, "judge-a", "v1") for p in a_preds)
    db.write_scores(ScoreRow(p.id, "judge_logic", 4.0, "ok", "other", "judge-b", "v1") for p in a_preds[:1])
    db.write_scores([ScoreRow(a_preds[-1].id, "judge_hallucination", None, "failed", "timeout", "judge-a", "v1")])
    return db, a_preds, b_preds


def test_lean_frames_have_the_full_frames_rows_without_text(tmp_path: Path) -> None:
    db, _, _ = _two_model_db(tmp_path / "r.db")
    for models in (None, ["a"], ["b"], ["a", "b"], []):
        lean, full = db.aggregate_frame(models), db.scores_frame(models)
        assert list(lean.columns) == AGGREGATE_COLUMNS
        pd_equal(lean, full[AGGREGATE_COLUMNS])
        answers, preds = db.answer_status_frame(models), db.predictions_frame(models)
        assert list(answers.columns) == ANSWER_STATUS_COLUMNS
        pd_equal(answers, preds[ANSWER_STATUS_COLUMNS])
    lean = db.aggregate_frame(["a"])
    assert len(lean) == 7 and lean["value"].dtype == float  # latest submission, latest judge run
    assert lean.loc[lean["metric"] == "judge_logic", "value"].tolist() == [4.0, 2.0, 2.0]
    assert set(db.answer_status_frame(["b"])["status"]) == {"ok", "error"}


def pd_equal(a, b) -> None:
    import pandas as pd

    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_exact=True)


def test_model_stamps_change_only_for_the_model_a_write_touches(tmp_path: Path) -> None:
    db, a_preds, b_preds = _two_model_db(tmp_path / "r.db")
    stamps = db.model_stamps()
    assert sorted(stamps) == ["a", "b"] and len(set(stamps.values())) == 2

    def changed() -> set[str]:
        nonlocal stamps
        now = db.model_stamps()
        out = {m for m in now.keys() | stamps.keys() if now.get(m) != stamps.get(m)}
        stamps = now
        return out

    db.write_scores([ScoreRow(b_preds[0].id, "rougeL", 0.5, "ok")])
    assert changed() == {"b"}
    db.activate_judge_scores([(a_preds[0].id, "judge_logic", "judge-a", "v1")])
    assert changed() == {"a"}
    _add(db, "b", "k2")
    assert changed() == {"b"}
    db.start_run(db.submissions("a")[0]["id"])  # runs and reads change no model's scores
    db.scores_frame()
    assert changed() == set()
    _add(db, "c", "k")
    assert changed() == {"c"}
    db.delete_model("c")
    assert changed() == {"c"} and "c" not in stamps
    _add(db, "c", "k")  # recreated: a new stamp even though its rows look the same
    assert changed() == {"c"}
    export = tmp_path / "a.json"
    export_model(db, "a", export)
    import_results(ResultsDB(tmp_path / "other.db"), export)
    other = ResultsDB(tmp_path / "other.db")
    before = other.model_stamps()
    import_results(other, export, model="a2")
    after = other.model_stamps()
    assert before["a"] == after["a"] and "a2" in after
    first = _recreated(tmp_path / "same.db")
    assert _recreated(tmp_path / "same.db") != first  # a new file at the same path never reuses a stamp


def _recreated(path: Path) -> str:
    for leftover in path.parent.glob(path.name + "*"):
        leftover.unlink()
    db = ResultsDB(path)
    _add(db, "c", "k")
    return db.model_stamps()["c"]


def test_version_3_database_migrates_to_model_stamps_losing_nothing(tmp_path: Path) -> None:
    path = tmp_path / "v3.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, target=3)
    conn.executemany("INSERT INTO models (name, created) VALUES (?, '2025-01-01')", [("m",), ("n",)])
    conn.executemany("INSERT INTO submissions (model_id, key, file_name, file_hash, created) VALUES (?,?,'f','h','x')",
                     [(1, "k1"), (1, "k2"), (2, "k1")])
    conn.executemany("INSERT INTO predictions (submission_id, video_id, task, probe, output, status)"
                     " VALUES (?,?,?,?,?,?)",
                     [(1, "7", "Cause", "", "old", "ok"), (2, "7", "Cause", "", "new", "ok"),
                      (2, "7", "Cause", "no_keyframes", "None", "ok"), (3, "8", "Result", "", "ERROR", "error")])
    conn.executemany("INSERT INTO scores (prediction_id, metric, judge_model, prompt_version, value, status, reason,"
                     " version) VALUES (?,?,?,?,?,?,?,?)",
                     [(1, "bleu1", "", "", 0.1, "ok", "", 1), (2, "bleu1", "", "", 0.9, "ok", "", 2),
                      (2, "judge_logic", "j1", "v1", 1.0, "ok", "first", 2),
                      (2, "judge_logic", "j2", "v1", 5.0, "ok", "second", 3),
                      (3, "judge_hallucination", "j1", "v1", 1.0, "ok", "abstains", 2),
                      (4, "judge_logic", "", "", None, "failed", "ERROR row", 2)])
    conn.execute("UPDATE meta SET value = 3 WHERE key = 'data_version'")
    expected = [
        ("m", 2, "7", "Cause", "", "bleu1", 0.9, "ok", "", "", ""),
        ("m", 2, "7", "Cause", "", "judge_logic", 5.0, "ok", "second", "j2", "v1"),
        ("m", 2, "7", "Cause", "no_keyframes", "judge_hallucination", 1.0, "ok", "abstains", "j1", "v1"),
        ("n", 3, "8", "Result", "", "judge_logic", None, "failed", "ERROR row", "", ""),
    ]
    conn.close()
    db = ResultsDB(path)
    assert db.schema_version() == SCHEMA_VERSION >= 4
    frame = db.scores_frame()
    got = [tuple(None if isinstance(v, float) and v != v else v for v in row)
           for row in frame.itertuples(index=False, name=None)]
    assert got == expected
    assert db.aggregate_frame()["value"].tolist()[:3] == [0.9, 5.0, 1.0]
    assert len(db.predictions_frame()) == 3 and db.data_version() == 3
    with sqlite3.connect(path) as check:
        assert check.execute("SELECT COUNT(*) FROM scores").fetchone()[0] == 6  # older judge runs kept
        assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stamps = db.model_stamps()
    assert set(stamps) == {"m", "n"}
    db.write_scores([ScoreRow(4, "bleu1", 0.0, "ok")])
    after = db.model_stamps()
    assert after["m"] == stamps["m"] and after["n"] != stamps["n"]
    db.delete_model("m")
    assert set(db.model_stamps()) == {"n"}


def test_lean_reads_keep_only_the_asked_metrics_questions_and_names(tmp_path: Path) -> None:
    db = ResultsDB(tmp_path / "r.db")
    _add(db, "a", "ka")
    _add(db, "b", "kb")
    for sub in db.submissions():
        preds = db.stored_predictions(sub["id"])
        db.write_scores([ScoreRow(p.id, "bleu1", 0.5, "ok") for p in preds])
        db.write_scores([ScoreRow(preds[0].id, "judge_logic", None, "failed", "timeout")])
        db.write_scores([ScoreRow(p.id, "semantic", 0.7, "ok") for p in preds[1:]])
    full = db.aggregate_frame()
    only = db.aggregate_frame(["a"], ["semantic"])
    assert set(only["metric"]) == {"semantic"} and set(only["model"]) == {"a"} and len(only) == 2
    with_failed = db.aggregate_frame(None, ["semantic"], keep_failed=True)
    expected = full[(full["metric"] == "semantic") | (full["status"] == "failed")].reset_index(drop=True)
    assert with_failed.equals(expected) and (with_failed["metric"] == "judge_logic").sum() == 2
    assert db.metrics_by_model() == {m: ("bleu1", "judge_logic", "semantic") for m in ("a", "b")}
    assert db.metrics_by_model(["b"]).keys() == {"b"}
    one = db.scores_frame(question=("2", "Cause"))
    assert set(one["video_id"]) == {"2"} and set(one["model"]) == {"a", "b"} and len(one) == 4
    assert set(db.predictions_frame(question=("1", "Cause"))["video_id"]) == {"1"}
