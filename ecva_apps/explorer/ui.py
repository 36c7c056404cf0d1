"""Small rendering helpers shared by the explorer's pages: the error guard, escaped text, and all of its HTML."""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Callable, Iterable

import streamlit as st

from ecva_core.errors import EcvaError
from ecva_core.views.phrases import highlight_spans

log = logging.getLogger("ecva.explorer")

# Keys in st.session_state that one page sets to open another on a given question or model.
OPEN_VIDEO = "open_video"
OPEN_TASK = "open_task"
OPEN_MODELS = "open_models"
OPEN_MAJORS = "open_majors"
OPEN_TASKS = "open_tasks"


STARTING_MODELS = 3
"""How many models a page that compares models starts with (the user adds more): a first render then
reads a few models' scores, not every model's."""


def starting_models(models: list[str]) -> list[str]:
    """The models a multi-model page shows before the user picks (the first ``STARTING_MODELS``)."""
    return models[:STARTING_MODELS]


def plot_text(text: object) -> str:
    """Text for a plotly hover label, which renders a subset of HTML: escaped so a name shows literally."""
    return html.escape(str(text))


def md_escape(text: object) -> str:
    """Text that Markdown shows literally (for names and messages that came from users or files)."""
    return re.sub(r"([\\`*_{}\[\]()#+!|<>~$])", r"\\\1", str(text))


def guarded(render: Callable[[], None]) -> None:
    """Run a page body; user errors become their message, anything else a generic note (never a traceback)."""
    try:
        render()
    except EcvaError as exc:
        st.error(md_escape(exc))
    except Exception:
        log.exception("explorer page failed")
        st.error("Something went wrong while drawing this page; the details are in the server log.")


def add_styles() -> None:
    """The page styles the HTML below relies on (the marked key phrases of an answer)."""
    st.markdown(
        "<style>.ecva-answer mark{background:#ffe58a;padding:0 2px;border-radius:2px}</style>",
        unsafe_allow_html=True,
    )


def highlight_html(text: str, phrases: Iterable[str]) -> str:
    """``text`` HTML-escaped, with key-phrase matches wrapped in ``<mark>`` (safe for unsafe_allow_html)."""
    out: list[str] = []
    pos = 0
    for start, end in highlight_spans(text, phrases):
        out.append(html.escape(text[pos:start]))
        out.append(f"<mark>{html.escape(text[start:end])}</mark>")
        pos = end
    out.append(html.escape(text[pos:]))
    return "".join(out).replace("\n", "<br>")


def escaped_with_marks(text: str, phrases: Iterable[str]) -> None:
    """Show untrusted text with key phrases marked: every character is HTML-escaped before marking."""
    st.markdown(
        f"<div class='ecva-answer'>{highlight_html(text, phrases)}</div>",
        unsafe_allow_html=True,
    )


def open_question(
    video_id: str | None = None,
    task: str | None = None,
    models: Iterable[str] = (),
    majors: Iterable[str] = (),
    tasks: Iterable[str] = (),
) -> None:
    """Switch to the question explorer on a question, or with filters (models, categories, tasks) preset."""
    st.session_state[OPEN_VIDEO] = video_id
    st.session_state[OPEN_TASK] = task
    st.session_state[OPEN_MODELS] = list(models)
    st.session_state[OPEN_MAJORS] = list(majors)
    st.session_state[OPEN_TASKS] = list(tasks)
    st.switch_page("screens/questions.py")
