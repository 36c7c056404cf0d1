"""The explorer's pages through Streamlit's AppTest, on the demo dataset with its three scored submissions."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from ecva_apps.explorer import APP_SCRIPT
from ecva_apps.explorer.ui import highlight_html
from ecva_apps.explorer.upload import stage_upload
from ecva_core.config import get_settings
from ecva_core.errors import SubmissionError
from ecva_core.results.db import ResultsDB

APP = str(APP_SCRIPT)
TIMEOUT = 120


@pytest.fixture(scope="module")
def scored_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The demo dataset and a results DB holding its three demo submissions (built once per module)."""
    from ecva_core.dataset import load_dataset
    from ecva_core.dataset.demo import ensure_demo
    from ecva_core.results.db import ResultsDB
    from ecva_core.results.scoring import score_submission

    root = tmp_path_factory.mktemp("explorer")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ECVA_HOME", str(root / "home"))
        demo = ensure_demo(root / "demo")
        ds = load_dataset(demo)
        db = ResultsDB(root / "template.db")
        for path in sorted((demo / "submissions").glob("*.json")):
            score_submission(path, path.stem, ds, db)
    return demo, root / "template.db"


@pytest.fixture
def app_env(
    scored_demo: tuple[Path, Path], isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Point the app at the demo data and a private copy of the scored DB."""
    demo, template = scored_demo
    db = isolated_home / "results.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(template, db)
    monkeypatch.setenv("ECVA_DATA", str(demo))
    monkeypatch.setenv("ECVA_DB", str(db))
    from streamlit import config

    before = config.get_option("server.address")
    config.set_option("server.address", "127.0.0.1")  # as `ecva serve explorer` serves it: loopback
    yield demo
    config.set_option("server.address", before)


def _app():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    return at.run()


def _errors(at) -> list[str]:
    return [e.value for e in at.error]


def _texts(at) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [t.value for t in at.text]
    return "\n".join(str(p) for p in parts)


def _table(at, index: int = 0):
    return at.dataframe[index].value


def _models(demo: Path) -> list[str]:
    return sorted(p.stem for p in (demo / "submissions").glob("*.json"))


def test_leaderboard_lists_models_and_filters_change_it(app_env: Path) -> None:
    at = _app()
    assert not at.exception and not _errors(at)
    table = _table(at)
    assert sorted(table["model"]) == _models(app_env)
    first = _models(app_env)[0]
    at.text_input(key="lb_search").set_value(first).run()
    assert list(_table(at)["model"]) == [first]
    at.text_input(key="lb_search").set_value("").run()
    before = _table(at).set_index("model")
    at.multiselect(key="lb_tasks").set_value(["Cause"]).run()
    after = _table(at).set_index("model")
    assert not before.equals(after)
    at.radio(key="lb_mode").set_value("valid").run()
    assert not _errors(at) and not at.exception
    assert {b.label for b in at.get("download_button")} >= {"Download CSV", "Download JSON"}


def test_leaderboard_opens_the_question_explorer_for_a_model(app_env: Path) -> None:
    at = _app()
    model = _models(app_env)[1]
    at.selectbox(key="lb_model").set_value(model).run()
    at.button(key="lb_open").click().run()
    assert at.title[0].value == "Question explorer"
    assert at.multiselect(key="qx_models").value == [model]


def test_breakdown_shows_tables_and_opens_questions(app_env: Path) -> None:
    at = _app()
    at.switch_page("screens/breakdown.py").run()
    assert not at.exception and not _errors(at)
    assert at.title[0].value == "Breakdown"
    assert len(at.dataframe) >= 1
    cats = at.selectbox(key="bd_open_cat").options
    assert len(cats) >= 2
    at.selectbox(key="bd_open_cat").set_value(cats[1]).run()
    at.button(key="bd_open").click().run()
    assert at.title[0].value == "Question explorer"
    assert at.multiselect(key="qx_majors").value == [cats[1]]


def test_question_explorer_filters_and_shows_answers(app_env: Path) -> None:
    at = _app()
    at.switch_page("screens/questions.py").run()
    assert not at.exception and not _errors(at)
    total = len(_table(at))
    assert total > 0
    at.multiselect(key="qx_tasks").set_value(["Result"]).run()
    only_result = _table(at)
    assert 0 < len(only_result) < total and set(only_result["task"]) == {"Result"}
    at.multiselect(key="qx_tasks").set_value([]).run()
    at.checkbox(key="qx_failures").check().run()
    failures = _table(at)
    assert len(failures) < total and (failures["failures"] > 0).all()
    at.checkbox(key="qx_failures").uncheck().run()
    at.text_input(key="qx_search").set_value("zzzz-no-such-answer").run()
    assert len(_table(at)) == 0
    at.text_input(key="qx_search").set_value("").run()
    text = _texts(at)
    assert "Expert What (Description)" in text and "Key phrases" in text
    assert "Model answers" in [s.value for s in at.subheader]


def test_compare_two_models(app_env: Path) -> None:
    at = _app()
    at.switch_page("screens/compare.py").run()
    assert not at.exception and not _errors(at)
    labels = {m.label for m in at.metric}
    assert "Common questions" in labels
    models = _models(app_env)
    at.selectbox(key="cmp_b").set_value(models[0]).run()
    at.selectbox(key="cmp_a").set_value(models[0]).run()
    assert any("two different models" in w.value for w in at.warning)


def test_dataset_page_counts_and_grid_opens_questions(app_env: Path) -> None:
    at = _app()
    at.switch_page("screens/dataset.py").run()
    assert not at.exception and not _errors(at)
    values = {m.label: m.value for m in at.metric}
    assert int(values["Videos"]) >= 12
    open_buttons = [b for b in at.button if b.key and b.key.startswith("ds_open_")]
    assert open_buttons
    vid = open_buttons[0].key.removeprefix("ds_open_")
    open_buttons[0].click().run()
    assert at.title[0].value == "Question explorer"
    assert at.selectbox(key="qx_pick").value.startswith(f"{vid}|")


def test_submit_rejects_a_bad_file_with_its_row(app_env: Path) -> None:
    at = _app()
    at.switch_page("screens/submit.py").run()
    bad = json.dumps([{"video_file": "00001.mp4", "output": 5, "task_type": "Description"}]).encode()
    at.file_uploader(key="sub_file").set_value(("bad.json", bad, "application/json")).run()
    assert not at.exception
    errors = _errors(at)
    assert errors and "rejected" in errors[0]
    problems = _table(at)
    assert 1 in set(problems["row"])
    at.file_uploader(key="sub_file").set_value(("broken.json", b"{not json", "application/json")).run()
    assert _errors(at) and not at.exception


def test_submit_scores_a_good_file_onto_the_leaderboard_once(app_env: Path) -> None:
    rows = json.loads(next((app_env / "submissions").glob("*.json")).read_text())
    rows[0]["output"] = "<script>alert('x')</script> " + str(rows[0]["output"])
    data = json.dumps(rows).encode()
    at = _app()
    at.switch_page("screens/submit.py").run()
    at.text_input(key="sub_model").set_value("=cmd|' /C calc'!A0").run()
    at.file_uploader(key="sub_file").set_value(("my answers.json", data, "application/json")).run()
    assert not _errors(at), _errors(at)
    at.button(key="sub_score").click().run()
    assert _errors(at) and "a letter or digit first" in _errors(at)[0]  # the library's one model-name rule
    at.text_input(key="sub_model").set_value("Uploaded-VLM").run()
    at.button(key="sub_score").click().run()
    assert not _errors(at) and not at.exception
    assert any("Uploaded-VLM" in s.value for s in at.success)
    stored = ResultsDB(get_settings().db_path).submissions(model="Uploaded-VLM")
    assert [s["file_name"] for s in stored] == ["my answers.json"]  # the upload's own name, not the staged file's
    at.switch_page("screens/leaderboard.py").run()
    assert "Uploaded-VLM" in set(_table(at)["model"])
    at.switch_page("screens/submit.py").run()
    at.file_uploader(key="sub_file").set_value(("again.json", data, "application/json")).run()
    assert any("already scored" in i.value for i in at.info)
    assert not [b for b in at.button if b.key == "sub_score"]


def test_submit_can_score_under_the_official_protocol(app_env: Path) -> None:
    """The Submit page's protocol setting reaches scoring: official BLEU/ROUGE are stored beside ours."""
    data = next((app_env / "submissions").glob("*.json")).read_bytes()
    at = _app()
    at.switch_page("screens/submit.py").run()
    at.text_input(key="sub_model").set_value("Official-VLM").run()
    at.selectbox(key="sub_protocol").set_value("official").run()
    at.file_uploader(key="sub_file").set_value(("official.json", data.replace(b"None", b"none"), "application/json"))
    at.run()
    at.button(key="sub_score").click().run()
    assert not _errors(at) and not at.exception, _errors(at)
    frame = ResultsDB(get_settings().db_path).scores_frame()
    assert {"bleu_official", "rougeL_official"} <= set(frame.loc[frame["model"] == "Official-VLM", "metric"])


def test_untrusted_text_is_escaped_before_marking() -> None:
    out = highlight_html("<img src=x onerror=alert(1)> the Car hit", ["car hit", "<img"])
    assert "<img" not in out and "&lt;" in out
    assert "<mark>Car hit</mark>" in out


def test_upload_names_never_choose_the_path(isolated_home: Path) -> None:
    settings = get_settings()
    path, digest = stage_upload(b"[]", "../../etc/passwd.json", settings)
    assert path.parent == settings.cache_dir / "uploads" and path.name.startswith(digest[:32])
    with pytest.raises(SubmissionError, match="accepted submission type"):
        stage_upload(b"[]", "answers.exe", settings)
    big = b"[" + b" " * (int(settings.max_submission_mb * 1024 * 1024) + 1) + b"]"
    with pytest.raises(SubmissionError, match="MB limit"):
        stage_upload(big, "answers.json", settings)


def _add_judge_scores(db_path: Path) -> None:
    """Give every stored demo answer judge verdicts, as a judged run would store them."""
    from ecva_core.results.db import ResultsDB, ScoreRow

    db = ResultsDB(db_path)
    rows = []
    for sub in db.submissions():
        strong = "strong" in sub["model"]
        for n, pred in enumerate(db.stored_predictions(sub["id"])):
            if pred.task not in ("Description", "Cause", "Result"):
                continue
            if pred.probe:
                rows.append(ScoreRow(pred.id, "judge_hallucination", float(strong or n % 2), "ok", "abstained"))
                continue
            rows.append(ScoreRow(pred.id, "judge_consistency", float(strong or n % 3 == 0), "ok", "same event"))
            rows.append(ScoreRow(pred.id, "judge_logic", 4.0 if strong else 2.0, "ok", "sound"))
            failed = n % 7 == 0 and not strong
            rows.append(
                ScoreRow(
                    pred.id,
                    "judge_keyphrase",
                    None if failed else 0.5,
                    "failed" if failed else "ok",
                    "judge timeout" if failed else "2 of 4 phrases",
                )
            )
    db.write_scores(rows)


def test_judged_scores_show_anomeval_pillars_and_reasons(app_env: Path) -> None:
    _add_judge_scores(get_settings().db_path)
    at = _app()
    table = _table(at)
    assert "AnomEval" in table.columns and "AnomEval 95% CI" in table.columns
    assert table.sort_values("AnomEval", ascending=False)["model"].iloc[0] == "demo-strong"
    assert not [i for i in at.info if "Pillar scores need the judge" in i.value]
    at.switch_page("screens/breakdown.py").run()
    assert not [i for i in at.info if "Pillar scores need the judge" in i.value]
    at.switch_page("screens/questions.py").run()
    assert at.selectbox(key="qx_metric").value == "anomeval"
    from ecva_core.results.db import ResultsDB

    frame = ResultsDB(get_settings().db_path).scores_frame()
    failed = frame[frame["reason"] == "judge timeout"].iloc[0]
    at.checkbox(key="qx_failures").check().run()
    at.selectbox(key="qx_pick").set_value(f"{failed['video_id']}|{failed['task']}").run()
    answers = [d.value for d in at.dataframe[1:]]
    assert any("judge timeout" in set(frame["reason"]) for frame in answers)


def test_submit_shows_the_judge_plan_before_scoring(app_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECVA_JUDGE_BASE_URL", "http://127.0.0.1:9/v1")
    data = next((app_env / "submissions").glob("*.json")).read_bytes()
    at = _app()
    at.switch_page("screens/submit.py").run()
    at.file_uploader(key="sub_file").set_value(("fresh.json", data.replace(b"None", b"none"), "application/json"))
    at.run()
    assert any("will make about" in i.value and "estimated cost" in i.value for i in at.info)


def test_serve_passes_data_and_db_to_the_app_process(tmp_path: Path) -> None:
    from ecva_apps.serve import explorer_command, explorer_env
    from ecva_core.errors import ConfigError

    command = explorer_command(8599)
    assert str(APP_SCRIPT) in command and "--server.headless=true" in command
    assert "--server.port=8599" in command and "--server.address=127.0.0.1" in command
    assert "--server.enableXsrfProtection=true" in command
    assert f"--server.maxUploadSize={math.ceil(get_settings().max_submission_mb)}" in command
    env = explorer_env(tmp_path, tmp_path / "r.db")
    assert env["ECVA_DATA"] == str(tmp_path.resolve()) and env["ECVA_DB"] == str((tmp_path / "r.db").resolve())
    with pytest.raises(ConfigError, match="no such file"):
        explorer_env(tmp_path / "missing", None)


def test_every_page_explains_an_empty_database(
    scored_demo: tuple[Path, Path], isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo, _ = scored_demo
    data = isolated_home.parent / "plain-dataset"
    data.mkdir()
    shutil.copy(demo / "annotations.csv", data / "annotations.csv")
    monkeypatch.setenv("ECVA_DATA", str(data))
    at = _app()
    assert any("No model has been scored yet" in i.value for i in at.info)
    for page in ("breakdown", "questions", "compare", "submit", "dataset"):
        at.switch_page(f"screens/{page}.py").run()
        assert not at.exception and not _errors(at), (page, _errors(at))


def test_leaderboard_parts_are_cached_per_model_and_recomputed_only_when_it_changes(
    app_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a write only the touched model is read again, and the combined parts draw the same table
    as one pass over every score and answer."""
    from ecva_apps.explorer import state
    from ecva_core.results.db import ResultsDB, ScoreRow
    from ecva_core.views.leaderboard import leaderboard_from_parts, leaderboard_view

    reads: list[tuple[str, ...]] = []
    lean = ResultsDB.aggregate_frame

    def counted(self, models=None):
        reads.append(tuple(models))
        return lean(self, models)

    monkeypatch.setattr(ResultsDB, "aggregate_frame", counted)
    ds = state.dataset()
    db = state.open_db()

    def view(mode="all", majors=(), tasks=()):
        return leaderboard_from_parts(
            state.leaderboard_parts(ds.fingerprint, mode, majors, tasks), ds, mode, majors, tasks
        )

    def reference(mode="all", majors=(), tasks=()):
        return leaderboard_view(db.scores_frame(), ds, mode, majors, tasks, predictions=db.predictions_frame())

    def same(a, b):  # same reduction per model on both paths; tolerance far below what a table shows
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9, atol=1e-12)

    models = _models(app_env)
    first = view()
    assert sorted(reads) == [(m,) for m in models]
    same(first.table, reference().table)
    same(first.per_task, reference().per_task)
    reads.clear()
    assert view().table.equals(first.table) and reads == []
    sid = db.submissions(models[1])[0]["id"]
    pred = next(p for p in db.stored_predictions(sid) if not p.probe)
    db.write_scores([ScoreRow(pred.id, "bleu1", 0.0, "ok")])
    again = view()
    assert reads == [(models[1],)]
    same(again.table, reference().table)
    assert not again.table.equals(first.table)
    reads.clear()
    filtered = view("valid", (), ("Cause",))
    assert len(reads) == len(models)
    same(filtered.table, reference("valid", (), ("Cause",)).table)
    reads.clear()
    db.delete_model(models[0])
    assert sorted(view().table["model"]) == models[1:] and reads == []  # the others are still cached


def test_models_scored_before_the_explorer_starts_are_not_aggregated_again(
    scored_demo: tuple[Path, Path], isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ecva score` leaves each model's leaderboard part on disk, so the first render reads none again."""
    from ecva_core.dataset import load_dataset
    from ecva_core.results.db import ResultsDB, ScoreRow
    from ecva_core.results.scoring import score_submission
    from ecva_core.views import leaderboard as views_leaderboard
    from ecva_core.views import warm_after_write

    demo, _ = scored_demo
    db = ResultsDB(isolated_home / "results.db")
    monkeypatch.setenv("ECVA_DATA", str(demo))
    monkeypatch.setenv("ECVA_DB", str(db.path))
    ds = load_dataset(demo)
    for path in sorted((demo / "submissions").glob("*.json")):
        score_submission(path, path.stem, ds, db, metrics=["bleu1", "rougeL"])
        warm_after_write(db, ds, path.stem)  # what `ecva score` does after the write
    computed: list[tuple[str, ...]] = []
    part = views_leaderboard.leaderboard_part

    def counted(scores, *args, **kwargs):
        computed.append(tuple(scores["model"].unique()))
        return part(scores, *args, **kwargs)

    monkeypatch.setattr(views_leaderboard, "leaderboard_part", counted)
    at = _app()
    assert not at.exception and not _errors(at)
    assert sorted(_table(at)["model"]) == _models(demo) and computed == []
    first = _models(demo)[0]
    pred = next(p for p in db.stored_predictions(db.submissions(first)[0]["id"]) if not p.probe)
    db.write_scores([ScoreRow(pred.id, "bleu1", 0.0, "ok")])  # a write that warms nothing
    at = _app()
    assert not at.exception and computed == [(first,)]
