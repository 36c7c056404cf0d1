"""Cached browser previews and thumbnails for the pages (made by ``ecva_core.video``, cached on disk too)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ecva_apps.explorer import state


@st.cache_data(show_spinner=False, max_entries=256)
def preview_path(video: str) -> str:
    """An H.264 MP4 of the clip that a browser can play."""
    from ecva_core.video import browser_preview

    return str(browser_preview(Path(video), cache_dir=state.settings().cache_dir))


@st.cache_data(show_spinner=False, max_entries=2048)
def thumbnail_path(video: str, at: float | None) -> str:
    """A JPEG still of the clip (at the first annotated moment when there is one)."""
    from ecva_core.video import thumbnail

    return str(thumbnail(Path(video), cache_dir=state.settings().cache_dir, at=at, width=320))
