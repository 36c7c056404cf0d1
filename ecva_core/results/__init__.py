"""Submissions, the results database and the scoring pipeline.

Import the pieces from their modules (``ecva_core.results.submission``, ``.db``, ``.export``,
``.scoring``); this package imports nothing heavy on its own.
"""
