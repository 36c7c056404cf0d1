"""``ecva score / leaderboard / compare / results`` through a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.official_checkout import FAKE_PROMPTS, write_official_checkout
from tests.openai_stub import OpenAIStub
from tests.submissions.tiny import answer_rows, write_tiny_annotations

REPO = Path(__file__).resolve().parents[1]
FAST = ("--metric", "bleu4", "--metric", "rougeL")


def ecva(*args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "ecva_core.cli.main", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture
def tiny(tmp_path: Path) -> dict[str, str]:
    annotations = write_tiny_annotations(tmp_path / "tiny")
    good, poor = tmp_path / "good.json", tmp_path / "poor.json"
    rows = answer_rows()
    rows[0]["output"] = "ERROR"
    good.write_text(json.dumps(rows), encoding="utf-8")
    poor.write_text(json.dumps(answer_rows(quality="poor")), encoding="utf-8")
    return {"data": str(annotations), "db": str(tmp_path / "r.db"), "good": str(good), "poor": str(poor)}


def test_score_json_is_one_object_with_scores_coverage_and_judge_status(tiny: dict[str, str]) -> None:
    proc = ecva("score", tiny["good"], "--model", "good", "--data", tiny["data"], "--db", tiny["db"], "--json", *FAST)
    summary = json.loads(proc.stdout)  # exactly one JSON document on stdout
    assert proc.stdout.count("\n") == 1
    assert summary["judge"]["status"] == "no judge configured"
    assert summary["coverage"]["matched"] == 18 and summary["coverage"]["failed"] == 1
    assert set(summary["tasks"]) == {"Description", "Cause", "Result"}
    assert summary["overall"]["bleu4"] is not None and summary["failures"]["failed_answer_scores"] > 0
    assert "text" in proc.stderr  # the progress bar went to stderr


def test_score_table_leaderboard_compare(tiny: dict[str, str]) -> None:
    human = ecva("score", tiny["good"], "--model", "good", "--data", tiny["data"], "--db", tiny["db"], *FAST)
    assert "no judge configured" in human.stdout and "rougeL" in human.stdout and "Coverage: 18 of 18" in human.stdout
    ecva("score", tiny["poor"], "--model", "poor", "--data", tiny["data"], "--db", tiny["db"], *FAST)
    board = json.loads(ecva("leaderboard", "--by", "task", "--db", tiny["db"], "--json").stdout)
    assert {(r["model"], r["task"]) for r in board["rows"]} >= {("good", "Cause"), ("poor", "Result")}
    assert board["notes"] == ["judge metrics: no judge configured"]
    text = ecva("leaderboard", "--variant", "valid", "--db", tiny["db"]).stdout
    assert "good" in text and "poor" in text and "semantic" not in text and "rougeL" in text
    by_cat = json.loads(
        ecva("leaderboard", "--by", "category", "--data", tiny["data"], "--db", tiny["db"], "--json").stdout
    )
    assert {r["category_name"] for r in by_cat["rows"]} == {
        "Fighting",
        "Animals Hurting People",
        "Water Incidents",
        "Vandalism",
        "Traffic Accidents",
        "Theft",
    }
    cmp = json.loads(ecva("compare", "good", "poor", "--db", tiny["db"], "--json").stdout)
    rouge = cmp["measures"]["rougeL"]
    assert rouge["n_questions"] == 18 and rouge["diff"] > 0 and rouge["significant"]
    assert cmp["judge_models"] == {}  # no judge scores stored
    assert "significant" in ecva("compare", "good", "poor", "--db", tiny["db"]).stdout


def test_results_export_import_round_trip(tiny: dict[str, str], tmp_path: Path) -> None:
    ecva("score", tiny["good"], "--model", "good", "--data", tiny["data"], "--db", tiny["db"], *FAST)
    for fmt in ("json", "csv"):
        out = tmp_path / f"good.{fmt}"
        exported = json.loads(
            ecva("results", "export", "good", "--format", fmt, "--out", str(out), "--db", tiny["db"], "--json").stdout
        )
        target = str(tmp_path / f"copy-{fmt}.db")
        imported = json.loads(
            ecva("results", "import", str(out), "--data", tiny["data"], "--db", target, "--json").stdout
        )
        assert imported["scores"] == exported["scores"] > 0
        board = json.loads(ecva("leaderboard", "--by", "model", "--db", target, "--json").stdout)
        assert [r["model"] for r in board["rows"]] == ["good"]
    assert json.loads(ecva("results", "delete", "good", "--db", tiny["db"], "--json").stdout) == {"deleted": "good"}
    gone = ecva("results", "delete", "good", "--db", tiny["db"], check=False)
    assert gone.returncode == 1 and "no model named 'good'" in gone.stderr


def _export(tiny: dict[str, str], tmp_path: Path) -> Path:
    """A results export of the model "good", scored in this process."""
    from ecva_core.dataset import load_dataset
    from ecva_core.results.db import ResultsDB
    from ecva_core.results.export import export_model
    from ecva_core.results.scoring import score_submission

    db = ResultsDB(tmp_path / "source.db")
    score_submission(tiny["good"], "good", load_dataset(Path(tiny["data"])), db, metrics=["bleu4", "rougeL"])
    out = tmp_path / "good.json"
    export_model(db, "good", out)
    return out


def test_results_import_warms_the_explorer_leaderboard_part(
    tiny: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An explorer started after `ecva results import` finds every model's part cached, and the view
    built from those parts equals the one computed from every score and answer."""
    from ecva_core.config import get_settings
    from ecva_core.dataset import load_dataset
    from ecva_core.results.db import ResultsDB
    from ecva_core.views import leaderboard_cache
    from ecva_core.views.leaderboard import leaderboard_from_parts, leaderboard_view

    export = str(_export(tiny, tmp_path))
    for name in ("good", "copy"):
        ecva("results", "import", export, "--model", name, "--data", tiny["data"], "--db", tiny["db"], "--json")

    def not_cached(*args: object) -> None:
        raise AssertionError(f"aggregated again: {args[2]!r}")

    monkeypatch.setattr(leaderboard_cache, "_compute", not_cached)
    db, ds = ResultsDB(Path(tiny["db"])), load_dataset(Path(tiny["data"]))
    (view,) = leaderboard_cache.FIRST_RENDER_VIEWS
    parts = leaderboard_cache.leaderboard_parts(db, ds, get_settings().cache_dir, *view)
    cached = leaderboard_from_parts(parts, ds, *view)
    scratch = leaderboard_view(db.scores_frame(), ds, *view, predictions=db.predictions_frame())
    assert sorted(cached.table["model"]) == ["copy", "good"]
    assert cached.table.equals(scratch.table) and cached.per_task.equals(scratch.per_task)


def test_results_import_succeeds_when_the_warm_fails(
    tiny: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from click.testing import CliRunner

    from ecva_core.cli.main import cli
    from ecva_core.results.db import ResultsDB
    from ecva_core.views import leaderboard_cache

    export = str(_export(tiny, tmp_path))

    def broken(*args: object, **kwargs: object) -> int:
        raise OSError("disk full")

    monkeypatch.setattr(leaderboard_cache, "warm_model", broken)
    result = CliRunner().invoke(
        cli, ["results", "import", export, "--data", tiny["data"], "--db", tiny["db"], "--json"]
    )
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout)
    assert counts["model"] == "good" and counts["scores"] > 0
    assert len(ResultsDB(Path(tiny["db"])).scores_frame(models=["good"])) == counts["scores"]
    assert "could not cache the leaderboard part of 'good'" in caplog.text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tests/submissions/malformed/output_number.json"], "row 2, field 'output'"),
        (["tests/submissions/malformed/truncated.json"], "not valid JSON"),
        (["does-not-exist.json"], "file not found"),
    ],
)
def test_bad_file_exits_1_with_a_clean_message(tiny: dict[str, str], args: list[str], message: str) -> None:
    proc = ecva("score", *args, "--model", "m", "--data", tiny["data"], "--db", tiny["db"], *FAST, check=False)
    assert proc.returncode == 1, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr and proc.stdout == ""


def test_usage_errors_and_unknown_models(tiny: dict[str, str]) -> None:
    assert ecva("score", tiny["good"], "--data", tiny["data"], check=False).returncode == 2  # no --model
    bad_metric = ecva("score", tiny["good"], "--model", "m", "--metric", "cider", "--data", tiny["data"], check=False)
    assert bad_metric.returncode == 2 and "unknown text metric" in bad_metric.stderr
    bad_task = ecva("score", tiny["good"], "--model", "m", "--task", "poem", "--data", tiny["data"], check=False)
    assert bad_task.returncode == 2 and "unknown task type" in bad_task.stderr
    unknown = ecva("compare", "a", "b", "--db", tiny["db"], check=False)
    assert unknown.returncode == 1 and "no model named 'a'" in unknown.stderr
    empty = ecva("leaderboard", "--db", tiny["db"])
    assert "No results yet" in empty.stdout


@pytest.mark.slow
def test_out_of_the_box_demo_scores_text_metrics_without_a_judge() -> None:
    demo = json.loads(ecva("data", "demo", "--json").stdout)
    strong = next(p for p in demo["submissions"] if "strong" in p)
    summary = json.loads(ecva("score", strong, "--model", "demo-strong", "--json").stdout)
    assert summary["judge"]["status"] == "no judge configured"
    assert summary["overall"]["semantic"] is not None and summary["overall"]["bleu4"] is not None
    assert summary["coverage"]["probe_rows"] > 0 and summary["coverage"]["missing"] == 0
    table = ecva("leaderboard").stdout
    assert "demo-strong" in table


def test_probe_only_file_without_judge_says_what_is_missing(tiny: dict[str, str], tmp_path: Path) -> None:
    rows = [{k: v for k, v in r.items() if k != "task_type"} for r in answer_rows(("Cause",))]
    path = tmp_path / "model_reason.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    proc = ecva(
        "score", str(path), "--model", "probe", "--probe", "--data", tiny["data"], "--db", tiny["db"], "--json", *FAST
    )
    summary = json.loads(proc.stdout)
    assert summary["coverage"]["probe"] == ["no_keyframes"] and summary["coverage"]["matched"] == 6
    assert "hallucination pillar only" in summary["note"]
    board = ecva("leaderboard", "--db", tiny["db"])
    assert "No results yet" not in board.stdout
    assert "probe: 6 probe answers; hallucination: not measured (no judge configured)" in board.stdout
    listed = json.loads(ecva("leaderboard", "--db", tiny["db"], "--json").stdout)
    assert listed["rows"] == [] and listed["unmeasured"] == [
        {
            "model": "probe",
            "answers": 0,
            "probe_answers": 6,
            "note": "hallucination: not measured (no judge configured)",
        }
    ]
    ecva("score", tiny["good"], "--model", "good", "--data", tiny["data"], "--db", tiny["db"], *FAST)
    mixed = json.loads(ecva("leaderboard", "--by", "model", "--db", tiny["db"], "--json").stdout)
    assert [r["model"] for r in mixed["rows"]] == ["good"] and [u["model"] for u in mixed["unmeasured"]] == ["probe"]
    assert "probe: 6 probe answers" in ecva("leaderboard", "--by", "model", "--db", tiny["db"]).stdout


def test_score_again_with_another_judge_model_rejudges_and_says_so(tiny: dict[str, str]) -> None:
    args = ("score", tiny["good"], "--model", "good", "--judge", "--data", tiny["data"], "--db", tiny["db"], *FAST)
    with OpenAIStub() as stub:
        env = {"ECVA_JUDGE_BASE_URL": stub.base_url, "ECVA_JUDGE_API_KEY": "cli-secret-key"}
        first = json.loads(ecva(*args, "--json", env={**env, "ECVA_JUDGE_MODEL": "judge-a"}).stdout)
        calls = stub.calls
        assert first["judge"]["model"] == "judge-a" and calls == 17 * 3
        second = ecva(*args, "--json", env={**env, "ECVA_JUDGE_MODEL": "judge-b"})
        summary = json.loads(second.stdout)
        assert stub.calls == 2 * calls
        assert "re-judging with judge-b, predictions unchanged" in second.stderr
        assert summary["judge"]["model"] == "judge-b" and summary["judge"]["previous_models"] == ["judge-a"]
        assert summary["resubmitted"] and summary["written"]["text_scores_written"] == 0
        board = json.loads(ecva("leaderboard", "--by", "model", "--db", tiny["db"], "--json", env=env).stdout)
        assert board["judge_models"] == {"good": ["judge-b"]}
        assert "judge: judge-b (latest judge run per answer)" in board["notes"]
        only_a = json.loads(
            ecva(
                "leaderboard", "--by", "model", "--judge-model", "judge-a", "--db", tiny["db"], "--json", env=env
            ).stdout
        )
        assert only_a["judge_models"] == {"good": ["judge-a"]}
        back = ecva(*args, env={**env, "ECVA_JUDGE_MODEL": "judge-a"})
        assert stub.calls == 2 * calls  # judge A's verdicts were kept: no call
        assert "re-judging with judge-a" in back.stderr and "re-judged with judge-a" in back.stderr
        assert "Judge: ok (judge-a)" in back.stdout
        same = ecva(*args, env={**env, "ECVA_JUDGE_MODEL": "judge-a"})
        assert stub.calls == 2 * calls and "re-judg" not in same.stderr and "nothing re-scored" in same.stderr
    assert b"cli-secret-key" not in b"".join(p.read_bytes() for p in Path(tiny["db"]).parent.glob("r.db*"))


def test_leaderboard_one_row_per_model_ranked_by_complete_anomeval_within_120_columns(
    tiny: dict[str, str], tmp_path: Path
) -> None:
    """ "good" is judged on all three pillars, "poor" has no probe answers (a partial AnomEval)."""
    probe = tmp_path / "good_probe.json"
    rows = answer_rows()
    for row in rows:
        row["output"] = "None"
    probe.write_text(json.dumps(rows), encoding="utf-8")
    with OpenAIStub() as stub:
        env = {"ECVA_JUDGE_BASE_URL": stub.base_url, "ECVA_JUDGE_API_KEY": "k"}
        base = ("--data", tiny["data"], "--db", tiny["db"], *FAST)
        ecva("score", tiny["poor"], "--model", "poor-" + "x" * 40, *base, env=env)
        ecva("score", tiny["good"], "--model", "good", *base, env=env)
        ecva("score", str(probe), "--model", "good", "--probe", *base, env=env)
        board = json.loads(ecva("leaderboard", "--db", tiny["db"], "--json", env=env).stdout)
        text = ecva("leaderboard", "--db", tiny["db"], env=env).stdout
        more = ecva("leaderboard", "--db", tiny["db"], "--metric", "judge_logic", env=env).stdout
        by_task = json.loads(ecva("leaderboard", "--by", "task", "--db", tiny["db"], "--json", env=env).stdout)
        cmp = json.loads(ecva("compare", "good", "poor-" + "x" * 40, "--db", tiny["db"], "--json", env=env).stdout)
        said = ecva("compare", "good", "poor-" + "x" * 40, "--db", tiny["db"], env=env).stdout
    assert [r["model"] for r in board["rows"]] == ["good", "poor-" + "x" * 40]  # one row per model
    good, poor = board["rows"]
    assert good["anomeval"] is not None and good["anomeval_covers"] == "basic+consistency+hallucination"
    assert poor["anomeval"] is None and poor["anomeval_partial"] is not None
    assert poor["anomeval_covers"] == "basic+consistency" and board["protocols"] == {
        "good": "default",
        poor["model"]: "default",
    }
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 120
    assert "AnomEval [95% CI]" in text and "(B+C)" in text and "protocol" in text
    first = next(i for i, line in enumerate(lines) if "good" in line)
    assert first < next(i for i, line in enumerate(lines) if "poor-" in line)
    assert "judge_logic" in more and "judge_logic" not in text
    assert [r["model"] for r in by_task["rows"]] == ["good"] * 3 + [poor["model"]] * 3  # a model's rows together
    assert cmp["missing_pillars"] == {poor["model"]: ["hallucination"]}
    assert cmp["measures"]["anomeval"]["diff"] is None and cmp["measures"]["consistency"]["diff"] is not None
    assert "hallucination not measured; AnomEval is not compared" in said


def test_score_protocol_official_reads_the_prompts_from_the_users_checkout(
    tiny: dict[str, str], tmp_path: Path
) -> None:
    args = ("score", tiny["good"], "--model", "good", "--protocol", "official", "--data", tiny["data"])
    args += ("--db", tiny["db"], *FAST, "--json")
    with OpenAIStub() as stub:
        env = {"ECVA_JUDGE_BASE_URL": stub.base_url, "ECVA_JUDGE_API_KEY": "k"}
        refused = ecva(*args, env=env, check=False)
        assert refused.returncode == 1 and stub.calls == 0 and refused.stdout == ""
        assert "ECVA_OFFICIAL_REPO is not set: clone https://github.com/Dulpy/ECVA" in refused.stderr
        assert "Traceback" not in refused.stderr
        lexical = json.loads(ecva(*args, "--no-judge", "--metric", "bleu_official", env=env).stdout)
        assert lexical["overall"]["bleu_official"] is not None and stub.calls == 0
        checkout = write_official_checkout(tmp_path / "official-ecva")
        judged = json.loads(ecva(*args, env={**env, "ECVA_OFFICIAL_REPO": str(checkout)}).stdout)
        systems = {r.body["messages"][0]["content"] for r in stub.requests}
    assert judged["judge"]["model"] == "gpt-4o" and judged["overall"]["judge_logic"] is not None
    assert systems == {FAKE_PROMPTS[name] for name in FAKE_PROMPTS if "REASONING" not in name}  # no probe answers


def test_score_and_import_apply_the_one_model_name_rule(tiny: dict[str, str], tmp_path: Path) -> None:
    """A name a spreadsheet would run (``=cmd|...``) is refused by `ecva score` and `ecva results import`
    with the rule in the message, before anything is stored."""
    from click.testing import CliRunner

    from ecva_core.cli.main import cli
    from ecva_core.results.db import ResultsDB

    export = str(_export(tiny, tmp_path))
    runner = CliRunner()
    scored = runner.invoke(cli, ["score", tiny["good"], "--model", "=cmd|' /C calc'!A0", "--data", tiny["data"],
                                 "--db", tiny["db"], *FAST])
    imported = runner.invoke(cli, ["results", "import", export, "--model", "@evil", "--data", tiny["data"],
                                   "--db", tiny["db"]])
    for result in (scored, imported):
        assert result.exit_code == 1, result.output
        assert "a letter or digit first" in result.output and "Traceback" not in result.output
    assert ResultsDB(Path(tiny["db"])).models() == []
