"""The write path: submissions, the results database, its migrations, the scoring pipeline, export.

Import the pieces from their modules (``ecva_core.results.submission``, ``.db``, ``.export``,
``.scoring``); this package imports nothing heavy on its own and never imports the read views
(:mod:`ecva_core.views`), which the commands that write warm after the write.
"""
