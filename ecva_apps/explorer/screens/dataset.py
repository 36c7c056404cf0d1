"""Dataset page: counts by category, durations and moment lengths, quality flags, a thumbnail grid."""

from __future__ import annotations

import streamlit as st

from ecva_apps.explorer import media, state
from ecva_apps.explorer.ui import guarded, md_escape, open_question
from ecva_core.errors import EcvaError
from ecva_core.views import common, dataset

GRID_COLUMNS = 4
GRID_PAGE = 12


def _charts(ds) -> None:
    import plotly.express as px

    counts = dataset.category_counts(ds)
    left, right = st.columns(2)
    with left:
        st.subheader("Videos by category")
        majors = counts.groupby(["major", "major_name"], as_index=False)["videos"].sum()
        majors["label"] = majors["major"].astype(str) + " " + majors["major_name"]
        fig = px.bar(majors, x="videos", y="label", orientation="h", labels={"label": ""})
        fig.update_layout(height=max(250, 28 * len(majors)), margin={"l": 0, "r": 0, "t": 10, "b": 0})
        fig.update_yaxes(autorange="reversed")
        st.plotly_chart(fig, width="stretch")
    with right:
        st.subheader("By sub-category")
        st.dataframe(counts, hide_index=True, width="stretch", height=320)

    durations = state.durations()
    lengths = dataset.moment_lengths(ds)
    left, right = st.columns(2)
    with left:
        st.subheader("Clip durations")
        known = durations.dropna(subset=["duration_s"])
        if known.empty:
            st.info("No clip durations are known for this dataset (the videos are not available).")
        else:
            st.plotly_chart(
                px.histogram(known, x="duration_s", nbins=30, labels={"duration_s": "seconds"}),
                width="stretch",
            )
    with right:
        st.subheader("Anomaly moment lengths")
        if lengths.empty:
            st.info("No annotated moments.")
        else:
            st.plotly_chart(
                px.histogram(lengths, x="length_s", nbins=30, labels={"length_s": "seconds"}), width="stretch"
            )


def _flags(ds) -> None:
    flags = dataset.flags_frame(ds)
    st.subheader(f"Quality flags ({len(flags)})")
    if flags.empty:
        st.success("No annotation problems were found.")
        return
    fields = sorted(flags["field"].unique())
    chosen = st.multiselect("Fields", fields, default=[], key="ds_flag_fields", placeholder="All fields")
    shown = flags[flags["field"].isin(chosen)] if chosen else flags
    st.dataframe(shown, hide_index=True, width="stretch", height=260)


def _grid(ds) -> None:
    cats = common.video_categories(ds)
    st.subheader("Clips")
    options = sorted(cats["major_name"].unique())
    chosen = st.multiselect("Category", options, key="ds_grid_cats", placeholder="All categories")
    ids = cats[cats["major_name"].isin(chosen)]["video_id"].tolist() if chosen else cats["video_id"].tolist()
    pages = max(1, -(-len(ids) // GRID_PAGE))
    page = st.number_input("Page", min_value=1, max_value=pages, value=1, key="ds_grid_page") if pages > 1 else 1
    shown = ids[(page - 1) * GRID_PAGE : page * GRID_PAGE]
    cols = st.columns(GRID_COLUMNS)
    for i, vid in enumerate(shown):
        with cols[i % GRID_COLUMNS]:
            _tile(ds, vid)


def _tile(ds, vid: str) -> None:
    record = ds.records[vid]
    path = ds.video_path(vid)
    if path is None:
        st.caption("video file not available")
    else:
        try:
            st.image(media.thumbnail_path(str(path), dataset.first_moment_start(ds, vid) or None), width="stretch")
        except EcvaError as exc:
            st.caption(f"no thumbnail: {md_escape(exc)}")
    cat = record.annotation.category
    st.caption(f"{record.video_file} · {cat.code if cat else 'no category'}")
    if st.button("Open questions", key=f"ds_open_{vid}"):
        open_question(vid)


def render() -> None:
    ds = state.dataset()
    st.title("Dataset")
    report = ds.validation_report()
    a, b, c = st.columns(3)
    a.metric("Videos", report["videos"])
    b.metric("Scored questions", report["qa_items"])
    c.metric("Quality flags", len(report["flags"]))
    st.caption(f"Annotation file: `{ds.annotation_file.name}`" + (" · generated demo dataset" if ds.is_demo else ""))
    _charts(ds)
    _flags(ds)
    _grid(ds)


guarded(render)
