"""Question explorer: filter questions, then see the clip, the expert answers and every model's answer."""

from __future__ import annotations

import streamlit as st

from ecva_apps.explorer import media, state
from ecva_apps.explorer.ui import (
    OPEN_MAJORS,
    OPEN_MODELS,
    OPEN_TASK,
    OPEN_TASKS,
    OPEN_VIDEO,
    escaped_with_marks,
    guarded,
    md_escape,
    starting_models,
)
from ecva_core.errors import EcvaError
from ecva_core.metrics import measures
from ecva_core.schema import SCORED_TASKS, Task
from ecva_core.views import common, dataset, questions
from ecva_core.views.phrases import phrases_found

PICK = "qx_pick"


def _filters(ds) -> questions.QuestionFilter:
    models = state.scored_models()
    cats = common.video_categories(ds)
    majors = dict(cats[["major_name", "major"]].drop_duplicates().itertuples(index=False, name=None))
    _preset("qx_models", st.session_state.pop(OPEN_MODELS, None), models)
    st.session_state.setdefault("qx_models", starting_models(models))
    _preset("qx_majors", st.session_state.pop(OPEN_MAJORS, None), majors)
    _preset("qx_tasks", st.session_state.pop(OPEN_TASKS, None), [t.value for t in SCORED_TASKS])
    metrics = state.score_measures()
    with st.container(border=True):
        c1, c2, c3, c4 = st.columns([2, 1, 2, 2])
        chosen_models = c1.multiselect("Models", models, key="qx_models", placeholder="All models")
        metric = c2.selectbox("Score", metrics, key="qx_metric", format_func=measures.label) if metrics else None
        chosen_majors = c3.multiselect("Category", sorted(majors), key="qx_majors", placeholder="All")
        tasks = c4.multiselect(
            "Task",
            [t.value for t in SCORED_TASKS],
            format_func=lambda t: f"{t} ({Task.parse(t).facet})",
            key="qx_tasks",
            placeholder="All tasks",
        )
        c1, c2, c3, c4 = st.columns([2, 1, 2, 2])
        low, high = c1.slider("Mean score between", 0.0, 1.0, (0.0, 1.0), step=0.05, key="qx_range")
        failures = c2.checkbox("Only failures", key="qx_failures")
        disagree = c3.slider("Models disagree by at least", 0.0, 1.0, 0.0, step=0.05, key="qx_disagree")
        search = c4.text_input("Search in answers", key="qx_search", placeholder="words in a model's answer")
    return questions.QuestionFilter(
        metric=metric,
        models=tuple(chosen_models),
        majors=tuple(majors[m] for m in chosen_majors),
        tasks=tuple(tasks),
        score_min=low if low > 0 else None,
        score_max=high if high < 1 else None,
        failures_only=failures,
        disagree_min=disagree if disagree > 0 else None,
        search=search,
    )


def _preset(key: str, values: list[str] | None, allowed) -> None:
    """Apply filters another page asked for (only known values; nothing when it asked for none)."""
    if values:
        st.session_state[key] = [v for v in values if v in allowed]


def _pick_from_table() -> None:
    rows = st.session_state["qx_table"].selection.rows
    keys = st.session_state.get("qx_keys", [])
    if rows and rows[0] < len(keys):
        st.session_state[PICK] = keys[rows[0]]


def _label(key: str) -> str:
    vid, task = key.split("|", 1)
    return f"video {vid} · {task} ({Task.parse(task).facet})"


def _clip(ds, vid: str) -> None:
    import plotly.graph_objects as go

    path = ds.video_path(vid)
    start = dataset.first_moment_start(ds, vid)
    if path is None:
        st.info(f"The video file for {vid} is not available in this dataset folder.")
    else:
        try:
            st.video(media.preview_path(str(path)), start_time=int(start))
        except EcvaError as exc:
            st.warning(md_escape(exc))
    moments = dataset.moments_frame(ds, vid)
    if moments.empty:
        st.caption("No annotated moments.")
        return
    fig = go.Figure(
        go.Bar(
            x=moments["end"] - moments["start"],
            base=moments["start"],
            y=["moments"] * len(moments),
            orientation="h",
            text=moments["moment"].map(lambda m: f"#{m}"),
            hovertext=moments["description"],
            marker_color="#d62728",
        )
    )
    fig.update_layout(
        height=130,
        margin={"l": 0, "r": 0, "t": 20, "b": 0},
        showlegend=False,
        xaxis_title="seconds",
        title_text="Anomaly moments",
        title_font_size=13,
    )
    duration = dataset.video_duration(ds, vid)
    if duration:
        fig.update_xaxes(range=[0, duration])
    st.plotly_chart(fig, width="stretch")


def _expert(ds, vid: str) -> list[str]:
    record = ds.records[vid]
    cat = record.annotation.category
    from ecva_core.taxonomy import category_name

    st.markdown(f"**Category:** {category_name(cat) if cat else 'not parsed'} (`{cat.code if cat else '?'}`)")
    phrases = list(record.annotation.key_phrases)
    answers = dataset.expert_answers(ds, vid)
    for task in SCORED_TASKS:
        st.markdown(f"**Expert {task.facet} ({task.value})**")
        escaped_with_marks(answers[task.value], phrases)
    st.markdown("**Key phrases**")
    st.text(" · ".join(p for p in phrases if p) or "(none)")
    return phrases


def _answers(vid: str, task: str, phrases: list[str], models: list[str]) -> None:
    answers = [a for a in state.question_answers(vid, task) if not models or a["model"] in models]
    if not answers:
        st.info("No model answered this question yet.")
        return
    st.subheader("Model answers")
    per_row = min(3, len(answers))
    for start in range(0, len(answers), per_row):
        cols = st.columns(per_row)
        for col, answer in zip(cols, answers[start : start + per_row], strict=False):
            with col, st.container(border=True):
                title = answer["model"] + (f" · probe: {answer['probe']}" if answer["probe"] else "")
                st.markdown(f"**{md_escape(title)}**")
                if answer["status"] and answer["status"] != "ok":
                    st.error(f"prediction {answer['status']}")
                escaped_with_marks(answer["output"] or "(no answer)", phrases)
                found = phrases_found(answer["output"], phrases)
                st.caption(f"key phrases found: {len(found)}/{len([p for p in phrases if p])}")
                import pandas as pd

                table = pd.DataFrame(answer["scores"], columns=["metric", "value", "status", "reason", "judge"])
                st.dataframe(table, hide_index=True, width="stretch")


def render() -> None:
    ds = state.dataset()
    st.title("Question explorer")
    opened = st.session_state.pop(OPEN_VIDEO, None)
    opened_task = st.session_state.pop(OPEN_TASK, None)
    flt = _filters(ds)
    if opened and opened in ds.records:
        st.session_state[PICK] = f"{opened}|{opened_task or SCORED_TASKS[0].value}"
    rows = state.question_rows(flt)
    keys = (rows["video_id"] + "|" + rows["task"]).tolist()
    st.session_state["qx_keys"] = keys
    st.caption(f"{len(rows)} questions match · score shown: {measures.label(flt.metric or 'none yet')}")
    st.dataframe(
        rows.round(3),
        hide_index=True,
        width="stretch",
        height=260,
        key="qx_table",
        on_select=_pick_from_table,
        selection_mode="single-row",
    )
    pick = st.session_state.get(PICK)
    if opened and pick and pick not in keys:
        keys = [pick, *keys]
    if not keys:
        st.info("No question matches these filters.")
        return
    if PICK not in st.session_state or st.session_state[PICK] not in keys:
        st.session_state[PICK] = keys[0]
    key = st.selectbox("Question", keys, format_func=_label, key=PICK)
    vid, task = key.split("|", 1)
    st.divider()
    left, right = st.columns([3, 2])
    with left:
        _clip(ds, vid)
    with right:
        phrases = _expert(ds, vid)
    _answers(vid, task, phrases, list(flt.models))


guarded(render)
