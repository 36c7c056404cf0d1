"""The one rule for a model name, applied wherever a name is first stored.

A model name keys the results and is shown in every table, chart and export, so it is kept plain:
a letter or digit first (a cell opening with ``=``, ``+``, ``-`` or ``@`` is a formula to a
spreadsheet), then letters, digits, spaces and ``. _ - : + ( ) /`` (``org/model`` as on the hubs),
at most 80 characters. The database applies it to new names only: a name an older version stored
keeps working for reading, re-scoring, export and deletion.
"""

from __future__ import annotations

import re

from ecva_core.errors import ResultsError

MODEL_NAME_MAX = 80
MODEL_NAME_RULE = (
    f"1 to {MODEL_NAME_MAX} characters: a letter or digit first, then letters, digits, spaces and . _ - : + ( ) /"
)
_MODEL_NAME = re.compile(rf"[^\W_][\w .:+()/\-]{{0,{MODEL_NAME_MAX - 1}}}")


def check_model_name(name: str) -> str:
    """The name without surrounding spaces, or ResultsError saying the rule."""
    cleaned = str(name or "").strip()
    if not cleaned:
        raise ResultsError(f"a model name is needed (for example 'MyVLM-7B'): {MODEL_NAME_RULE}")
    if not _MODEL_NAME.fullmatch(cleaned):
        raise ResultsError(f"model name {cleaned[:100]!r} is not allowed: a model name is {MODEL_NAME_RULE}")
    return cleaned
