"""Submit page: upload a submission, read its validation report, then score it with a live progress bar.

Who may upload, and whether an upload may use the judge, is decided by ``ecva_core.sharing``; every
upload is written to the results database's upload log, shown here to whoever may submit.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import streamlit as st

from ecva_apps.explorer import state
from ecva_apps.explorer.ui import guarded, md_escape
from ecva_apps.explorer.upload import ACCEPTED_TYPES, StagedUpload, upload_digest, validate_upload
from ecva_core.errors import EcvaError
from ecva_core.metrics.protocol import PROTOCOL_LABELS, PROTOCOLS
from ecva_core.results.scoring import already_scored, judge_plan
from ecva_core.results.submission import DEFAULT_PROBE
from ecva_core.schema import Task
from ecva_core.sharing import SubmitAccess, judge_budget, sharing_settings, submit_access

if TYPE_CHECKING:
    from streamlit.runtime.uploaded_file_manager import UploadedFile

    from ecva_core.config import Settings
    from ecva_core.dataset import Dataset

AUTO = "from the file"
STAGES = {
    "validate": "Validating",
    "text": "Text metrics",
    "auxiliary": "Classification and timestamps",
    "judge": "AnomEval judge",
}


def _options() -> tuple[str, str | None, str | None, str]:
    c1, c2, c3, c4 = st.columns([2, 1, 1, 1])
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
    protocol = c4.selectbox(
        "Protocol",
        PROTOCOLS,
        key="sub_protocol",
        format_func=lambda p: PROTOCOL_LABELS[p].split(" (")[0],
        help=" · ".join(f"{name}: {label}" for name, label in PROTOCOL_LABELS.items()),
    )
    return model, None if task == AUTO else task, DEFAULT_PROBE if probe else None, protocol


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


def _client() -> str:
    """The visitor's address as Streamlit reports it (empty where it does not)."""
    address = st.context.ip_address
    return address if isinstance(address, str) else ""


def _log(
    outcome: str, *, model: str = "", file_name: str = "", file_hash: str = "", detail: str = "", attempt: str = ""
) -> None:
    """Write one upload-log entry, once per session for the same upload, outcome and ``attempt`` (pages rerun
    often; ``attempt`` tells apart tries that log the same fields and is kept in this session only)."""
    logged = st.session_state.setdefault("sub_logged", set())
    key = (outcome, file_hash, model, detail, attempt)
    if key in logged:
        return
    logged.add(key)
    state.open_db().log_upload(
        outcome, model=model, file_name=file_name, file_hash=file_hash, client=_client(), detail=detail
    )


def _access() -> SubmitAccess:
    """Ask the library whether this visitor may upload; on a shared explorer, with the token typed here."""
    sharing = sharing_settings()
    address = st.get_option("server.address")
    given = None
    if sharing.submit_token and not submit_access(address, None, sharing).can_submit:
        given = st.text_input("Submit token", type="password", key="sub_token") or None
    access = submit_access(address, given, sharing)
    if given and not access.can_submit:
        _log(
            "denied: wrong submit token",
            detail="an upload was refused: the submit token did not match",
            attempt=upload_digest(given.encode("utf-8")),
        )
    return access


def _upload_log() -> None:
    entries = state.open_db().upload_log()
    with st.expander(f"Upload log ({len(entries)} latest)", expanded=False):
        if not entries:
            st.caption("No uploads yet.")
            return
        import pandas as pd

        st.dataframe(pd.DataFrame(entries), hide_index=True, width="stretch")


def _score(staged: StagedUpload, model: str, judge: bool | None, protocol: str) -> None:
    from ecva_core.results.scoring import score_report

    ds = state.dataset()
    bar = st.progress(0.0, text="Scoring...")

    def progress(stage: str, done: int, total: int) -> None:
        bar.progress(min(1.0, done / total) if total else 1.0, text=f"{STAGES.get(stage, stage)}: {done}/{total}")

    meta = {"model": model, "file_name": staged.original_name, "file_hash": staged.file_hash}
    try:
        score_report(
            staged.report, model, ds, state.open_db(), judge, progress, file_name=staged.original_name,
            protocol=protocol,
        )
    except EcvaError as exc:
        _log("failed", **meta, detail=str(exc))
        raise
    _log("scored, text metrics only" if judge is False else "scored", **meta)
    bar.progress(1.0, text="Updating the leaderboard...")
    state.leaderboard("all", (), ())
    bar.progress(1.0, text="Done")
    st.session_state["sub_done"] = {"model": model, "hash": staged.file_hash}


def render() -> None:
    s = state.settings()
    ds = state.dataset()
    st.title("Submit a model")
    st.caption(
        "A JSON list of {video_file, prompt, output, task_type} (or JSONL / CSV with those columns); "
        f"up to {s.max_submission_mb:g} MB. Text metrics are always computed; the judge when configured."
    )
    access = _access()
    if not access.can_submit:
        st.warning(md_escape(access.reason))
        return
    model, task, probe, protocol = _options()
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
    if upload is not None:
        _handle(upload, model, task, probe, protocol, done, s, ds)
    if access.sees_upload_log:
        _upload_log()


def _handle(
    upload: UploadedFile,
    model: str,
    task: str | None,
    probe: str | None,
    protocol: str,
    done: dict[str, Any] | None,
    s: Settings,
    ds: Dataset,
) -> None:
    data = upload.getvalue()
    digest = upload_digest(data)
    meta = {"model": model.strip(), "file_name": upload.name, "file_hash": digest}
    try:
        staged = validate_upload(data, upload.name, ds, s, task=task, probe=probe, digest=digest)
    except EcvaError as exc:
        _log("refused", **meta, detail=str(exc))
        st.error(md_escape(exc))
        return
    _report(staged)
    if not staged.report.ok:
        _log("rejected", **meta, detail=str(staged.report.errors[0]))
        return
    if done and done["hash"] == staged.file_hash:
        return
    previous = already_scored(state.open_db(), staged.report)
    if previous is not None:
        _log("already scored", **meta, detail=f"as model {previous['model']}")
        st.info(
            f"This file was already scored as model {md_escape(previous['model'])} ({previous['created']}); "
            "it is not scored twice."
        )
        return
    _log("validated", **meta)
    judge: bool | None = None
    if s.judge_configured:
        plan = judge_plan(staged.report, ds, s, state.open_db())
        st.info(
            f"The judge ({s.judge_model}) will make about {plan.calls_needed} calls ({plan.cached} cached), "
            f"~{plan.est_tokens:,} tokens, estimated cost ${plan.est_cost:.2f}."
        )
        budget = judge_budget(plan, sharing_settings())
        if not budget.allowed:
            judge = False
            st.warning(
                f"Over this explorer's judge spend limit: {md_escape(budget.reason)}. "
                "This upload will be scored with text metrics only (AnomEval is skipped)."
            )
    else:
        st.caption(
            "No judge is configured (ECVA_JUDGE_BASE_URL / ECVA_JUDGE_API_KEY): AnomEval is skipped, "
            "text metrics are computed."
        )
    if st.button("Score", type="primary", key="sub_score"):
        try:
            name = state.open_db().storable_model_name(model)
        except EcvaError as exc:
            st.error(md_escape(exc))
            return
        _score(staged, name, judge, protocol)
        st.rerun()


guarded(render)
