"""The Streamlit explorer: ``app.py`` is the script Streamlit runs; its pages live in ``screens/``.

The folder is not called ``pages/``: Streamlit would treat that name as its legacy auto-discovered
pages and show raw file names in the sidebar of a page opened by its URL.
"""

from pathlib import Path

APP_SCRIPT = Path(__file__).resolve().parent / "app.py"

# (script, sidebar title, URL path, icon): the navigation every page URL shows
PAGES: tuple[tuple[str, str, str, str], ...] = (
    ("screens/leaderboard.py", "Leaderboard", "leaderboard", ":material/leaderboard:"),
    ("screens/breakdown.py", "Breakdown", "breakdown", ":material/grid_on:"),
    ("screens/questions.py", "Question explorer", "questions", ":material/quiz:"),
    ("screens/compare.py", "Compare", "compare", ":material/compare_arrows:"),
    ("screens/submit.py", "Submit", "submit", ":material/upload_file:"),
    ("screens/dataset.py", "Dataset", "dataset", ":material/video_library:"),
)
