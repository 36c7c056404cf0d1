"""ECVA benchmark explorer (Streamlit): ``ecva serve explorer`` or ``streamlit run ecva_apps/explorer/app.py``.

Pages live in ``screens/``; each calls ``ecva_core`` for its data and only draws it.
"""

from __future__ import annotations

import streamlit as st

from ecva_apps.explorer import PAGES, state
from ecva_apps.explorer.ui import add_styles, guarded, md_escape


def _sidebar() -> None:
    ds = state.dataset()
    st.sidebar.caption(f"Dataset: **{md_escape(ds.name)}** · {len(ds.records)} videos")
    st.sidebar.caption(f"Results: `{state.settings().db_path}`")


def _start() -> None:
    with st.spinner("Preparing the dataset and scoring the demo submissions (first start only)..."):
        state.bootstrap()
    _sidebar()


st.set_page_config(page_title="ECVA explorer", page_icon=":material/travel_explore:", layout="wide")
add_styles()
page = st.navigation(
    [
        st.Page(path, title=title, url_path=url, icon=icon, default=i == 0)
        for i, (path, title, url, icon) in enumerate(PAGES)
    ]
)
guarded(_start)
page.run()
