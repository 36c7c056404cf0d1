"""The project's own exception types: problems a user can cause and fix.

The CLI and the apps print these as plain messages (no traceback); anything else is a bug.
"""


class EcvaError(Exception):
    """Base class: a user-fixable problem whose message says what is wrong and what to do."""


class ConfigError(EcvaError):
    """A setting is missing or invalid (environment variable, option, path)."""


class DataError(EcvaError):
    """A dataset or annotation file cannot be read at all (a bad cell is a flag, not an error)."""


class DownloadError(EcvaError):
    """The hub cannot be reached or a downloaded file fails verification."""


class VideoError(EcvaError):
    """A video file is missing, empty, corrupt or in an unsupported format."""


class SubmissionError(EcvaError):
    """A submission file fails validation; nothing from it is stored."""


class JudgeError(EcvaError):
    """The judge endpoint is misconfigured or unusable."""


class ModelLoadError(EcvaError):
    """A chat model cannot be loaded (missing weights, no network, out of memory)."""


class ResultsError(EcvaError):
    """The results database cannot be opened, migrated or queried as asked."""
