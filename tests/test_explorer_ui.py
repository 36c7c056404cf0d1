"""The explorer's small drawing rules: which models a multi-model page starts with, escaped hover text."""

from __future__ import annotations

from ecva_apps.explorer.ui import STARTING_MODELS, plot_text, starting_models


def test_a_multi_model_page_starts_with_a_few_models_so_its_first_render_reads_few_scores() -> None:
    models = [f"model-{i:02d}" for i in range(20)]
    assert starting_models(models) == models[:STARTING_MODELS] and len(starting_models(models)) == 3
    assert starting_models(models[:2]) == models[:2] and starting_models([]) == []


def test_hover_text_shows_a_stored_name_literally() -> None:
    """Names stored by older versions may hold markup; plotly would render it in the hover label."""
    assert plot_text('<img src=x onerror="alert(1)">') == "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"
