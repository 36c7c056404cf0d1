"""Breakdown page: scores per task x pillar, per major category and per metric; a cell opens its questions."""

from __future__ import annotations

import streamlit as st

from ecva_apps.explorer import state
from ecva_apps.explorer.ui import guarded, open_question, starting_models
from ecva_core.metrics import measures
from ecva_core.views import common


def _heatmap(frame, title: str, key: str, zmax: float | None = 1.0):
    """A grid of coloured cells for ``frame`` (rows x columns); a clicked cell comes back as (row, column).

    Drawn as square scatter markers rather than a plotly heatmap, because only point traces send
    Streamlit selection events when clicked.
    """
    import plotly.graph_objects as go

    long = frame.rename_axis("row").reset_index().melt(id_vars="row", var_name="column", value_name="value")
    long = long.dropna(subset=["value"])
    rows, cols = [str(r) for r in frame.index], [str(c) for c in frame.columns]
    size = max(18, min(46, int(640 / max(1, len(cols))) - 6))
    fig = go.Figure(
        go.Scatter(
            x=long["column"].astype(str),
            y=long["row"].astype(str),
            mode="markers+text",
            text=long["value"].map(lambda v: f"{v:.2f}"),
            textfont={"color": "white", "size": 11},
            marker={
                "symbol": "square",
                "size": size,
                "color": long["value"],
                "colorscale": "Viridis",
                "cmin": 0,
                "cmax": zmax if zmax is not None else float(long["value"].max() or 1),
                "showscale": True,
                "colorbar": {"title": {"text": "score"}},
            },
            hovertemplate="%{y} · %{x}: %{marker.color:.3f}<extra>click to open the questions</extra>",
        )
    )
    fig.update_xaxes(categoryorder="array", categoryarray=cols, side="bottom")
    fig.update_yaxes(categoryorder="array", categoryarray=list(reversed(rows)))
    fig.update_layout(
        height=max(220, 40 * len(rows) + 90),
        margin={"l": 0, "r": 0, "t": 30, "b": 0},
        title_text=title,
        title_font_size=14,
        plot_bgcolor="white",
        clickmode="event+select",
    )
    event = st.plotly_chart(fig, width="stretch", key=key, on_select="rerun", selection_mode="points")
    points = event.selection.points if event and event.selection else []
    if points:
        return str(points[0].get("y")), str(points[0].get("x"))
    return None


def render() -> None:
    st.title("Breakdown")
    models = state.scored_models()
    if not models:
        st.info("No model has been scored yet: upload a submission on the Submit page.")
        return
    c1, c2, c3 = st.columns([3, 2, 1])
    chosen = c1.multiselect("Models", models, default=starting_models(models), key="bd_models")
    metric = c2.selectbox(
        "Score for tasks and categories",
        state.score_measures(),
        key="bd_metric",
        format_func=measures.label,
    )
    mode = c3.radio("Failures", ["all", "valid"], horizontal=True, key="bd_mode")
    if not chosen:
        st.info("Choose at least one model.")
        return
    view = state.breakdown(tuple(chosen), metric, mode)
    clicked = None
    st.subheader("Task x pillar")
    if view.task_pillar.empty:
        st.info("Pillar scores need the judge; the tables below use the offline metrics.")
    else:
        clicked = _heatmap(view.task_pillar, "rows: model · task", "bd_tp", zmax=1.0) or clicked
    st.subheader(f"Per major category ({view.metric_label})")
    cell = _heatmap(view.by_category, "rows: category, columns: model", "bd_cat", zmax=None)
    if cell:
        open_question(models=[cell[1]], majors=[cell[0]])
    st.subheader(f"Per task ({view.metric_label})")
    cell = _heatmap(view.by_task, "rows: task, columns: model", "bd_task", zmax=None)
    if cell:
        open_question(models=[cell[1]], tasks=[common.task_of_label(cell[0])])
    st.subheader("Per metric")
    st.dataframe(view.by_metric.round(4), width="stretch")
    if clicked:
        model, task = common.split_model_task(clicked[0])
        open_question(models=[model], tasks=[task])
    with st.container(border=True):
        st.markdown("**Open the questions behind a cell**")
        c1, c2, c3, c4 = st.columns([2, 2, 2, 1])
        model = c1.selectbox("Model", chosen, key="bd_open_model")
        cats = ["all", *view.by_category.index.astype(str)]
        cat = c2.selectbox("Category", cats, key="bd_open_cat")
        tasks = ["all", *(common.task_of_label(t) for t in view.by_task.index.astype(str))]
        task = c3.selectbox("Task", tasks, key="bd_open_task")
        if c4.button("Open", key="bd_open"):
            open_question(models=[model], majors=[] if cat == "all" else [cat], tasks=[] if task == "all" else [task])


guarded(render)
