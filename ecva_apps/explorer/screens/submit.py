"""Submit page: upload a submission, read its validation report, then score it with a live progress bar."""

from __future__ import annotations

import math

import streamlit as st

from ecva_apps.explorer import state
from ecva_apps.explorer.ui import guarded, md_escape
from ecva_apps.explorer.upload import ACCEPTED_TYPES, StagedUpload, check_model_name, validate_upload
from ecva_core.errors import EcvaError
from ecva_core.results import queries
from ecva_core.results.submission import DEFAULT_PROBE
from ecva_core.schema import Task

AUTO = "from the file"
STAGES = {
    "validate": "Validating",
    "text": "Text metrics",
    "auxiliary": "Classification and timestamps",
    "judge": "AnomEval judge",
}


def _options() -> tuple[str, str | None, str | None]:
    c1, c2, c3 = st.columns([2, 1, 1])
    model = c1.text_input("Model name", key="sub_model", placeholder="e.g. MyVLM-7B")
    task = c2.selectbox(
        "Task",
        [AUTO, *(t.value for t in Task)],
        key="sub_task",
        help="Only for older files that hold one task and have no task_type field.",
    )
    probe = c3.checkbox(
        "Key-frame-removed answers (probe)",
        key="sub_probe",
        help="The answers were given with the anomaly's key frames removed (hallucination pillar).",
    )
    return model, None if task == AUTO else task, DEFAULT_PROBE if probe else None


def _report(staged: StagedUpload) -> None:
    report = staged.report
    cov = report.coverage or {}
    st.subheader("Validation report")
    tasks = ", ".join(t.value for t in report.tasks) or "?"
    st.caption(f"{md_escape(staged.original_name)} · {report.format} · tasks: {tasks}")
    cols = st.columns(6)
    for col, name in zip(cols, ("expected", "matched", "missing", "extra", "duplicate", "failed"), strict=True):
        col.metric(name.capitalize(), cov.get(name, "—") if not isinstance(cov.get(name), list) else len(cov[name]))
    if report.problems:
        import pandas as pd

        st.dataframe(
            pd.DataFrame([p.to_dict() for p in report.problems]),
            hide_index=True,
            width="stretch",
            height=min(400, 38 + 35 * len(report.problems)),
        )
    if not report.ok:
        st.error(
            f"The file was rejected ({len(report.errors)} errors, listed above with their rows); "
            "nothing was stored. Fix the file and upload it again."
        )
    elif report.warnings:
        st.warning(f"{len(report.warnings)} warnings; the file can be scored.")
    else:
        st.success("The file is valid.")


def _score(staged: StagedUpload, model: str, task: str | None, probe: str | None) -> None:
    from ecva_core.results.scoring import score_submission

    ds = state.dataset()
    bar = st.progress(0.0, text="Scoring...")

    def progress(stage: str, done: int, total: int) -> None:
        bar.progress(min(1.0, done / total) if total else 1.0, text=f"{STAGES.get(stage, stage)}: {done}/{total}")

    summary = score_submission(staged.path, model, ds, state.open_db(), task=task, probe=probe, progress=progress)
    bar.progress(1.0, text="Updating the leaderboard...")
    state.leaderboard("all", (), ())
    bar.progress(1.0, text="Done")
    st.session_state["sub_done"] = {"model": model, "hash": staged.file_hash, "summary": summary}


def render() -> None:
    s = state.settings()
    ds = state.dataset()
    st.title("Submit a model")
    st.caption(
        "A JSON list of {video_file, prompt, output, task_type} (or JSONL / CSV with those columns); "
        f"up to {s.max_submission_mb:g} MB. Text metrics are always computed; the judge when configured."
    )
    model, task, probe = _options()
    upload = st.file_uploader(
        "Submission file",
        type=list(ACCEPTED_TYPES),
        key="sub_file",
        max_upload_size=max(1, math.ceil(s.max_submission_mb)),
    )
    done = st.session_state.pop("sub_done", None)
    if done:
        st.success(f"Scored {md_escape(done['model'])}: it is on the leaderboard now.")
        st.page_link("screens/leaderboard.py", label="Open the leaderboard", icon=":material/leaderboard:")
    if upload is None:
        return
    try:
        staged = validate_upload(upload.getvalue(), upload.name, ds, s, task=task, probe=probe)
    except EcvaError as exc:
        st.error(md_escape(exc))
        return
    _report(staged)
    if not staged.report.ok:
        return
    if done and done["hash"] == staged.file_hash:
        return
    previous = queries.scored_submission(state.open_db(), staged.file_hash)
    if previous is not None:
        st.info(
            f"This file was already scored as model {md_escape(previous['model'])} ({previous['created']}); "
            "it is not scored twice."
        )
        return
    if s.judge_configured:
        plan = queries.judge_plan(staged.report, ds, s, state.open_db())
        st.info(
            f"The judge ({s.judge_model}) will make about {plan.calls_needed} calls ({plan.cached} cached), "
            f"~{plan.est_tokens:,} tokens, estimated cost ${plan.est_cost:.2f}."
        )
    else:
        st.caption(
            "No judge is configured (ECVA_JUDGE_BASE_URL / ECVA_JUDGE_API_KEY): AnomEval is skipped, "
            "text metrics are computed."
        )
    if st.button("Score", type="primary", key="sub_score"):
        try:
            name = check_model_name(model)
        except EcvaError as exc:
            st.error(md_escape(exc))
            return
        _score(staged, name, task, probe)
        st.rerun()


guarded(render)
