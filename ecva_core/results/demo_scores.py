"""The demo's first run: its bundled submissions scored into an empty database.

It lives in the write path rather than next to the generated demo (``ecva_core.dataset.demo``)
because it scores: the dataset package sits below ``results`` and never imports it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ecva_core.results.scoring import score_submission

if TYPE_CHECKING:
    from ecva_core.dataset import Dataset
    from ecva_core.results.db import ResultsDB

log = logging.getLogger(__name__)


def score_demo_submissions(ds: Dataset, db: ResultsDB, metrics: Sequence[str] | None = None) -> list[str]:
    """Score the demo dataset's submissions (each under its file's stem; ``metrics`` as in
    :func:`score_submission`) when ``db`` holds no model yet; return the models scored (none for a
    real dataset or a database already in use)."""
    if not ds.is_demo or ds.root is None or db.models():
        return []
    scored = []
    for path in sorted((ds.root / "submissions").glob("*.json")):
        log.info("scoring demo submission %s", path.name)
        score_submission(path, path.stem, ds, db, metrics=metrics)
        scored.append(path.stem)
    return scored
