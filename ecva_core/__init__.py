"""ecva_core: the library behind the ECVA explorer (dataset, video, models, metrics, results)."""

__version__ = "0.1.0"
