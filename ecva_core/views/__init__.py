"""Read views over the results database, shared by the CLI and the explorer.

Each module computes one view as typed dataclasses and frames; the apps only draw them:

- :mod:`~ecva_core.views.leaderboard`: per-model parts, the explorer's leaderboard, ``ecva leaderboard`` rows
- :mod:`~ecva_core.views.breakdown`: task x pillar, per category and per task
- :mod:`~ecva_core.views.compare`: two models paired over common questions (explorer and ``ecva compare``)
- :mod:`~ecva_core.views.questions`: the question explorer's table and one question's answers
- :mod:`~ecva_core.views.dataset`: dataset summaries
- :mod:`~ecva_core.views.leaderboard_cache`: per-model leaderboard parts on disk, warmed after a write

The write path (:mod:`ecva_core.results`) never imports this package: the commands that write call
:func:`warm_after_write` once the write is done.
"""

from ecva_core.views.leaderboard_cache import warm_after_write

__all__ = ["warm_after_write"]
