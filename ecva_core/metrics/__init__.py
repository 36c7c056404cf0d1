"""Scoring: text metrics (``text``), auxiliary tasks (``auxiliary``), the AnomEval judge (``judge``)
and aggregation with statistics (``aggregate``). Import the submodule you need; nothing heavy loads here.
"""
