"""Leaderboard page: one row per model with AnomEval and text metrics, CIs, coverage, charts, downloads."""

from __future__ import annotations

import streamlit as st

from ecva_apps.explorer import state
from ecva_apps.explorer.ui import guarded, open_question, plot_text
from ecva_core.metrics.protocol import HALLUCINATION_READINGS, READING_LABELS
from ecva_core.results.export import table_csv
from ecva_core.schema import SCORED_TASKS, Task
from ecva_core.views import common, leaderboard, questions


def _controls(sortable: list[str], view_columns: list[str], majors: dict[str, int]) -> dict:
    with st.container(border=True):
        c1, c2, c3, c4 = st.columns([1.2, 2, 2, 2])
        mode = c1.radio(
            "Failures",
            ["all", "valid"],
            horizontal=True,
            key="lb_mode",
            help="all: a failed answer or judge call counts 0 · valid: failures are left out",
        )
        cats = c2.multiselect("Category", sorted(majors), key="lb_majors", placeholder="All categories")
        tasks = c3.multiselect(
            "Task",
            [t.value for t in SCORED_TASKS],
            key="lb_tasks",
            placeholder="All tasks",
            format_func=lambda t: f"{t} ({Task.parse(t).facet})",
        )
        search = c4.text_input("Search models", key="lb_search", placeholder="part of a model name")
        c1, c2, c3, c4 = st.columns([2, 1, 2, 3])
        sort = c1.selectbox("Sort by", sortable, key="lb_sort")
        ascending = c2.toggle("Ascending", key="lb_asc", value=sort == "model")
        hallucination = c3.selectbox(
            "Hallucination pillar",
            HALLUCINATION_READINGS,
            key="lb_hallucination",
            format_func=lambda r: READING_LABELS[r].split(" (")[0],
            help="What feeds the 40 % hallucination pillar: "
            + "; ".join(f"{r}: {label}" for r, label in READING_LABELS.items()),
        )
        columns = c4.multiselect("Columns", view_columns, key="lb_columns", placeholder="Default columns")
    return {
        "hallucination": hallucination,
        "mode": mode,
        "majors": tuple(majors[c] for c in cats),
        "tasks": tuple(tasks),
        "search": search,
        "sort": sort,
        "ascending": ascending,
        "columns": columns,
    }


def _task_bars(per_task, label: str):
    """Grouped bars per task (What/Why/How), one trace per model with its CI as error bars.

    Drawn with graph objects: Streamlit already loads them, while plotly.express costs a fresh
    app process about 0.2 s of imports before its first leaderboard.
    """
    import plotly.graph_objects as go

    fig = go.Figure()
    for model in per_task["model"].unique():
        rows = per_task[per_task["model"] == model]
        fig.add_trace(
            go.Bar(
                x=rows["facet"],
                y=rows["mean"],
                name=str(model),
                legendgroup=str(model),
                offsetgroup=str(model),
                error_y={
                    "type": "data",
                    "array": rows["high"] - rows["mean"],
                    "arrayminus": rows["mean"] - rows["low"],
                },
                hovertemplate=f"model={plot_text(model)}<br>%{{x}}<br>{plot_text(label)}=%{{y}}<extra></extra>",
            )
        )
    fig.update_layout(barmode="group", xaxis_title_text="", yaxis_title_text=label)
    fig.update_xaxes(categoryorder="array", categoryarray=["What", "Why", "How"])
    return fig


def _charts(view: leaderboard.LeaderboardView) -> None:
    import plotly.graph_objects as go

    left, right = st.columns([3, 2])
    with left:
        per_task = view.per_task
        st.subheader(f"{view.chart_label} per task")
        if per_task.empty:
            st.info("No scores to chart yet.")
        else:
            fig = _task_bars(per_task, view.chart_label)
            fig.update_layout(height=360, margin={"l": 0, "r": 0, "t": 10, "b": 0}, legend_title_text="")
            st.plotly_chart(fig, width="stretch")
    with right:
        st.subheader("AnomEval pillars")
        pillars = view.pillars.dropna(subset=["value"])
        if pillars.empty:
            st.info("Pillar scores need the judge (set ECVA_JUDGE_BASE_URL or ECVA_JUDGE_API_KEY and score again).")
        else:
            fig = go.Figure()
            for model, group in pillars.groupby("model", sort=True):
                fig.add_trace(
                    go.Scatterpolar(
                        r=[*group["value"], group["value"].iloc[0]],
                        theta=[*group["pillar"], group["pillar"].iloc[0]],
                        name=str(model),
                        fill="toself",
                        opacity=0.6,
                    )
                )
            fig.update_layout(
                height=360, margin={"l": 30, "r": 30, "t": 20, "b": 20}, polar={"radialaxis": {"range": [0, 1]}}
            )
            st.plotly_chart(fig, width="stretch")


def _column_config(table) -> dict:
    """Number formats and the help text of the library's columns."""
    config = {}
    for column in table.columns:
        help_text = leaderboard.LEADERBOARD_HELP.get(column)
        if column in ("model", "Pillars", "Protocol") or column.endswith("CI"):
            config[column] = st.column_config.TextColumn(column, help=help_text)
        elif column in ("Questions", "Failed answers", "Failed scores", "Skipped scores"):
            config[column] = st.column_config.NumberColumn(column, help=help_text, format="%d")
        else:
            config[column] = st.column_config.NumberColumn(column, help=help_text, format="%.3f")
    return config


def _pick_model() -> None:
    """A clicked table row chooses the model whose questions the button opens."""
    rows = st.session_state["lb_table"].selection.rows
    shown = st.session_state.get("lb_shown", [])
    if rows and rows[0] < len(shown):
        st.session_state["lb_model"] = shown[rows[0]]


def render() -> None:
    ds = state.dataset()
    st.title("Leaderboard")
    base = state.leaderboard("all", (), ())
    if base.table.empty:
        st.info("No model has been scored yet: upload a submission on the Submit page.")
        st.page_link("screens/submit.py", label="Submit a model", icon=":material/upload_file:")
        return
    cats = common.video_categories(ds)
    majors = dict(cats[["major_name", "major"]].drop_duplicates().itertuples(index=False, name=None))
    headline = base.default_columns[1] if len(base.default_columns) > 1 else "model"
    sortable = [headline, *(c for c in base.table.columns if c != headline and not c.endswith("CI"))]
    opts = _controls(sortable, list(base.table.columns), majors)
    view = state.leaderboard(opts["mode"], opts["majors"], opts["tasks"], opts["hallucination"])
    table = leaderboard.filter_leaderboard(view, opts["search"], opts["sort"], opts["ascending"], opts["columns"])
    st.caption(view.note)
    st.session_state["lb_shown"] = list(table["model"])
    if st.session_state.get("lb_model") not in st.session_state["lb_shown"]:
        st.session_state.pop("lb_model", None)
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        key="lb_table",
        on_select=_pick_model,
        selection_mode="single-row",
        column_config=_column_config(table),
    )
    c1, c2, c3 = st.columns([2, 1, 1])
    model = c1.selectbox("Model", list(table["model"]), key="lb_model") if not table.empty else None
    if model and c1.button("Open its questions", key="lb_open"):
        first = questions.first_question(ds, state.model_scores([model]), model)
        if first:
            open_question(first[0], first[1], [model])
    c2.download_button("Download CSV", table_csv(table).encode(), "leaderboard.csv", "text/csv")
    c3.download_button(
        "Download JSON", table.to_json(orient="records", indent=1).encode(), "leaderboard.json", "application/json"
    )
    _charts(view)


guarded(render)
