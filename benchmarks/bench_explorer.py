"""First render of the explorer's leaderboard with 20 models x 3,000 questions.

Builds a temporary results DB with synthetic scores for 20 models on 1,000 videos x 3 tasks
(the real annotation file's ids when ../shared/ecva is present, else the demo dataset's ids
repeated), then times, in this one process:

- ``library``: what the leaderboard page does on a cold cache: ``scores_frame()`` from SQLite,
  ``leaderboard_view`` (aggregates with bootstrap CIs) and the table filter/sort;
- ``warm``: the same with the cached loaders warm (``st.cache_data`` hit keyed on data_version);
- ``apptest``: the whole Leaderboard page rendered by Streamlit's AppTest, first run;
- ``baseline``: an uncached naive loop that reads each model's scores with its own query and
  averages them per task in Python (what an app without the library's frame/aggregate would do).

Prints a table, then one JSON line. Target: first render under 1.5 s.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ECVA_SHARED_DIR", REPO.parent / "shared" / "ecva"))
MODELS = 20
VIDEOS = 1000
TEXT_METRICS = ("bleu1", "bleu2", "bleu3", "bleu4", "rouge1", "rouge2", "rougeL", "meteor", "semantic")
JUDGE_METRICS = ("judge_consistency", "judge_logic", "judge_keyphrase")


def _dataset(home: Path):
    from ecva_core.dataset import load_dataset

    if (SHARED / "annotations.xlsx").exists():
        return load_dataset(SHARED / "annotations.xlsx")
    return load_dataset(None)


def build_db(path: Path, dataset) -> int:
    """Insert 20 synthetic models' predictions and scores (text + judge, incl. probe answers)."""
    from ecva_core.results.db import ResultsDB, ScoreRow
    from ecva_core.schema import SCORED_TASKS, Prediction, PredictionStatus

    items = dataset.qa_items(SCORED_TASKS)
    videos = sorted({i.video_id for i in items}, key=lambda v: (len(v), v))[:VIDEOS]
    keep = set(videos)
    items = [i for i in items if i.video_id in keep]
    db = ResultsDB(path)
    rng = np.random.default_rng(0)
    rows = 0
    for m in range(MODELS):
        skill = 0.2 + 0.6 * m / MODELS
        preds = [
            Prediction(
                i.video_id,
                i.task,
                "ERROR" if rng.random() < 0.01 else f"answer {m} {i.video_id}",
                status=PredictionStatus.OK,
                row=n + 1,
            )
            for n, i in enumerate(items)
        ]
        preds += [
            Prediction(i.video_id, i.task, "None", probe="no_keyframes", row=len(items) + n + 1)
            for n, i in enumerate(items)
        ]
        sub_id, _ = db.add_submission(f"model-{m:02d}", preds, key=f"k{m}", file_name=f"m{m}.json", file_hash=f"h{m}")
        stored = db.stored_predictions(sub_id)
        batch: list[ScoreRow] = []
        for p in stored:
            if p.probe:
                ok = rng.random() > 0.02
                batch.append(
                    ScoreRow(
                        p.id,
                        "judge_hallucination",
                        float(rng.random() < skill) if ok else None,
                        "ok" if ok else "failed",
                        "" if ok else "judge timeout",
                    )
                )
                continue
            for metric in TEXT_METRICS:
                batch.append(ScoreRow(p.id, metric, float(np.clip(rng.normal(skill * 0.6, 0.15), 0, 1)), "ok"))
            for metric in JUDGE_METRICS:
                ok = rng.random() > 0.02
                value = (rng.integers(0, 6) if metric == "judge_logic" else float(rng.random() < skill)) if ok else None
                batch.append(ScoreRow(p.id, metric, value, "ok" if ok else "failed", "" if ok else "bad reply"))
        rows += db.write_scores(batch)
    return rows


def _render(db_path: Path, dataset) -> float:
    from ecva_core.results.db import ResultsDB
    from ecva_core.results.queries import filter_leaderboard, leaderboard_view

    start = time.perf_counter()
    db = ResultsDB(db_path)
    scores = db.scores_frame()
    view = leaderboard_view(scores, dataset, mode="all")
    filter_leaderboard(view, "", "AnomEval", False, [])
    return time.perf_counter() - start


def _warm(db_path: Path, dataset) -> float:
    """The page's own cached path (state.leaderboard) when the cache already holds this version."""
    from apps.explorer import state
    from ecva_core.results.queries import filter_leaderboard

    state.leaderboard("all", (), ())
    start = time.perf_counter()
    view = state.leaderboard("all", (), ())
    filter_leaderboard(view, "", "AnomEval", False, [])
    return time.perf_counter() - start


def _baseline(db_path: Path) -> float:
    """Naive: one query per model, Python dicts and loops, no cache."""
    import sqlite3

    start = time.perf_counter()
    conn = sqlite3.connect(db_path)
    names = [r[0] for r in conn.execute("SELECT name FROM models")]
    table = {}
    for name in names:
        rows = conn.execute(
            "SELECT p.task, sc.metric, sc.value, sc.status FROM scores sc JOIN predictions p ON p.id = sc.prediction_id"
            " JOIN submissions s ON s.id = p.submission_id JOIN models m ON m.id = s.model_id"
            " WHERE m.name = ? AND p.probe = ''",
            (name,),
        ).fetchall()
        sums: dict[tuple[str, str], list[float]] = {}
        for task, metric, value, status in rows:
            sums.setdefault((task, metric), []).append(value if status == "ok" and value is not None else 0.0)
        boot = []
        values = sums.get(("Description", "judge_consistency"), [0.0])
        rng = np.random.default_rng(0)
        for _ in range(200):
            sample = [values[int(i)] for i in rng.integers(0, len(values), len(values))]
            boot.append(sum(sample) / len(sample))
        table[name] = {k: sum(v) / len(v) for k, v in sums.items()} | {"ci": (min(boot), max(boot))}
    conn.close()
    return time.perf_counter() - start


def _apptest() -> float:
    from streamlit.testing.v1 import AppTest

    start = time.perf_counter()
    at = AppTest.from_file(str(REPO / "apps" / "explorer" / "app.py"), default_timeout=600).run()
    elapsed = time.perf_counter() - start
    if at.exception or at.error:
        raise SystemExit(f"the leaderboard page failed: {[e.value for e in at.error]}")
    return elapsed


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        os.environ["ECVA_HOME"] = str(home)
        db_path = home / "bench.db"
        os.environ["ECVA_DB"] = str(db_path)
        dataset = _dataset(home)
        if (SHARED / "annotations.xlsx").exists():
            os.environ["ECVA_DATA"] = str(SHARED / "annotations.xlsx")
        t0 = time.perf_counter()
        rows = build_db(db_path, dataset)
        build_s = time.perf_counter() - t0
        library = [_render(db_path, dataset) for _ in range(3)]
        baseline = [_baseline(db_path) for _ in range(3)]
        apptest = _apptest()
        warm = [_warm(db_path, dataset) for _ in range(3)]
    result = {
        "models": MODELS,
        "questions": VIDEOS * 3,
        "score_rows": rows,
        "first_render_library_s": round(statistics.median(library), 3),
        "first_render_apptest_s": round(apptest, 3),
        "warm_render_s": round(statistics.median(warm), 3),
        "baseline_naive_loop_s": round(statistics.median(baseline), 3),
        "ratio_library_vs_baseline": round(statistics.median(library) / statistics.median(baseline), 3),
        "target_s": 1.5,
        "meets_target": statistics.median(library) < 1.5,
    }
    print(
        f"synthetic DB: {MODELS} models x {VIDEOS * 3} questions, {rows:,} score rows (built in {build_s:.1f} s)",
        file=sys.stderr,
    )
    print(f"{'measure':40s} {'seconds':>8s}")
    for label, key in (
        ("first render (SQL + aggregate + table)", "first_render_library_s"),
        ("first render, whole page in AppTest", "first_render_apptest_s"),
        ("warm render (cached loaders)", "warm_render_s"),
        ("baseline: naive per-model loop", "baseline_naive_loop_s"),
    ):
        print(f"{label:40s} {result[key]:8.3f}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
