"""Compare page: two models paired over their common questions, differences with 95% CIs."""

from __future__ import annotations

import streamlit as st

from ecva_apps.explorer import state
from ecva_apps.explorer.ui import guarded, open_question
from ecva_core.metrics import measures
from ecva_core.metrics.protocol import HALLUCINATION_READINGS, READING_LABELS


def _diff_chart(frame, title: str):
    import plotly.graph_objects as go

    fig = go.Figure(
        go.Bar(
            x=frame["diff"],
            y=frame["group"].astype(str),
            orientation="h",
            error_x={
                "type": "data",
                "symmetric": False,
                "array": frame["high"] - frame["diff"],
                "arrayminus": frame["diff"] - frame["low"],
            },
            marker_color=["#2ca02c" if d > 0 else "#d62728" for d in frame["diff"]],
        )
    )
    fig.add_vline(x=0, line_color="grey")
    fig.update_layout(
        height=max(200, 30 * len(frame) + 80),
        margin={"l": 0, "r": 0, "t": 30, "b": 0},
        title_text=title,
        title_font_size=14,
        xaxis_title="A - B",
    )
    st.plotly_chart(fig, width="stretch")


def render() -> None:
    st.title("Compare two models")
    models = state.scored_models()
    if len(models) < 2:
        st.info("Comparing needs at least two scored models.")
        return
    c1, c2, c3, c4 = st.columns([2, 2, 2, 1])
    a = c1.selectbox("Model A", models, index=0, key="cmp_a")
    b = c2.selectbox("Model B", models, index=1, key="cmp_b")
    metric = c3.selectbox("Score", state.score_measures(), key="cmp_metric", format_func=measures.label)
    mode = c4.radio("Failures", ["all", "valid"], horizontal=True, key="cmp_mode")
    hallucination = st.selectbox(
        "Hallucination pillar",
        HALLUCINATION_READINGS,
        key="cmp_hallucination",
        format_func=lambda r: READING_LABELS[r],
    )
    if a == b:
        st.warning("Choose two different models.")
        return
    view = state.compare(a, b, metric, mode, hallucination)
    st.caption(view.note)
    if "AnomEval not compared" in view.note:
        st.warning("These models measure different AnomEval pillars: compare Basic, Consistency and Hallucination.")
    if view.questions.empty:
        st.info(f"{a} and {b} have no scored question in common for this score.")
        return
    m1, m2, m3 = st.columns(3)
    m1.metric("Common questions", len(view.questions))
    m2.metric(
        f"Mean difference (A - B), {view.metric_label}",
        f"{view.overall['diff']:+.3f}",
        help="paired over common questions; 95% CI by video bootstrap",
    )
    m3.metric("95% CI", f"[{view.overall['low']:+.3f}, {view.overall['high']:+.3f}]")
    left, right = st.columns(2)
    with left:
        _diff_chart(view.by_task, "Per task")
        st.dataframe(view.by_task.round(4), hide_index=True, width="stretch")
    with right:
        _diff_chart(view.by_category, "Per major category")
        st.dataframe(view.by_category.round(4), hide_index=True, width="stretch")

    import plotly.express as px

    st.subheader("Per-question scores")
    fig = px.scatter(
        view.questions,
        x="a",
        y="b",
        color="task",
        custom_data=["video_id", "task"],
        hover_data=["video_id"],
        labels={"a": f"{a}", "b": f"{b}"},
        opacity=0.7,
    )
    fig.add_shape(type="line", x0=0, y0=0, x1=1, y1=1, line={"dash": "dot", "color": "grey"})
    fig.update_layout(height=420, margin={"l": 0, "r": 0, "t": 10, "b": 0})
    event = st.plotly_chart(fig, width="stretch", key="cmp_scatter", on_select="rerun", selection_mode="points")
    points = event.selection.points if event and event.selection else []
    if points and len(points[0].get("customdata") or []) == 2:
        vid, task = points[0]["customdata"]
        open_question(str(vid), str(task), [a, b])

    st.subheader("Where they differ most")
    top = view.questions.head(20)
    event = st.dataframe(
        top.round(3), hide_index=True, width="stretch", key="cmp_top", on_select="rerun", selection_mode="single-row"
    )
    rows = event.selection.rows if event else []
    if rows:
        row = top.iloc[rows[0]]
        open_question(row["video_id"], row["task"], [a, b])
    labels = [f"{r.video_id}|{r.task}" for r in top.itertuples()]
    c1, c2 = st.columns([3, 1])
    pick = c1.selectbox("Question", labels, key="cmp_pick")
    if pick and c2.button("Open in the question explorer", key="cmp_open"):
        vid, task = pick.split("|", 1)
        open_question(vid, task, [a, b])


guarded(render)
