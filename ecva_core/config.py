"""One settings object, read from environment variables with documented defaults.

Every path, endpoint and model id the library uses comes from here, so a user configures the
tool in one place (see the README's table of variables). Secrets are read from the environment
only and are excluded from ``repr`` so they never reach logs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from ecva_core.errors import ConfigError

DEFAULT_DATASET_ID = "gouchenyi/ECVA"
DEFAULT_JUDGE_MODEL = "gpt-4o-mini"
OPENAI_BASE_URL = "https://api.openai.com/v1"
MODEL_HUBS = ("huggingface", "modelscope")  # where model ids (org/name) are fetched from
MODEL_HUB_ENV = "ECVA_MODEL_HUB"
JUDGE_CONNECT_TIMEOUT_S = 5.0  # the judge pre-flight: how long one connection attempt may take
JUDGE_SETUP_HELP = (
    "set ECVA_JUDGE_BASE_URL (an OpenAI-compatible server) and/or ECVA_JUDGE_API_KEY; OPENAI_API_KEY alone "
    "does not turn the judge on"
)
OFFICIAL_REPO_ENV = "ECVA_OFFICIAL_REPO"  # a clone of the official ECVA repository (its judge prompts)


def _default_home() -> Path:
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "ecva"


def _path(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser() if value else None


def official_repo() -> Path | None:
    """The user's own checkout of the official ECVA repository (``ECVA_OFFICIAL_REPO``), or None.

    ``--protocol official`` reads the official judge prompts from it at run time; it stays outside
    :class:`Settings` because the prompts are resolved where a judge request is built, which has no
    settings object at hand, and one reader keeps the pre-flight and the prompts on the same checkout.
    """
    return _path(OFFICIAL_REPO_ENV)


def _number(name: str, default: float, kind: type = float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is not a valid {kind.__name__}") from exc


@dataclass(frozen=True)
class Settings:
    """Resolved configuration. Build with :func:`get_settings` (environment) or directly in tests."""

    home: Path
    data: Path | None = None
    demo_dir: Path | None = None
    cache_dir: Path | None = None
    db_path: Path | None = None
    dataset_id: str = DEFAULT_DATASET_ID
    frame_backend: str = "pyav"
    judge_base_url: str | None = None
    judge_model: str = DEFAULT_JUDGE_MODEL
    judge_api_key: str | None = field(default=None, repr=False)
    openai_api_key: str | None = field(default=None, repr=False)
    judge_concurrency: int = 32
    judge_timeout_s: float = 60.0
    judge_max_retries: int = 6
    judge_price_in_per_mtok: float = 0.0
    judge_price_out_per_mtok: float = 0.0
    max_submission_mb: float = 50.0
    chat_model: str | None = None
    bleurt_checkpoint: Path | None = None
    unieval_checkpoint: Path | None = None

    def __post_init__(self) -> None:
        defaults = {
            "demo_dir": self.home / "demo",
            "cache_dir": self.home / "cache",
            "db_path": self.home / "results.db",
        }
        for name, value in defaults.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)

    @property
    def judge_configured(self) -> bool:
        """The judge is on by default only when its own settings name it (ECVA_JUDGE_BASE_URL or
        ECVA_JUDGE_API_KEY). OPENAI_API_KEY alone never turns it on: it is also the key of the
        ``openai:`` chat backend, so a user serving a video LLM with vLLM would get a judge by accident."""
        return bool(self.judge_base_url or self.judge_api_key)

    @property
    def judge_usable(self) -> bool:
        """An explicit request (``--judge``) can be served: configured, or OPENAI_API_KEY for api.openai.com."""
        return self.judge_configured or bool(self.openai_api_key)

    def judge_wanted(self, requested: bool | None = None) -> bool:
        """Whether a run judges: as explicitly requested, else when the judge is configured."""
        return self.judge_configured if requested is None else requested

    @property
    def judge_key(self) -> str | None:
        """The key sent to the judge: ECVA_JUDGE_API_KEY, else OPENAI_API_KEY, but only to api.openai.com
        (never to another endpoint)."""
        return self.judge_api_key or (self.openai_api_key if self.judge_base_url is None else None)

    @property
    def judge_endpoint(self) -> str:
        return self.judge_base_url or OPENAI_BASE_URL

    def public_dict(self) -> dict[str, object]:
        """Settings as plain values with the secret replaced by whether it is set."""
        out: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("judge_api_key", "openai_api_key"):
                out[f"{f.name}_set"] = value is not None
                continue
            out[f.name] = str(value) if isinstance(value, Path) else value
        return out


def get_settings() -> Settings:
    """Read the settings from the environment (cheap; call it where the settings are needed)."""
    return Settings(
        home=_path("ECVA_HOME") or _default_home(),
        data=_path("ECVA_DATA"),
        demo_dir=_path("ECVA_DEMO_DIR"),
        cache_dir=_path("ECVA_CACHE_DIR"),
        db_path=_path("ECVA_DB"),
        dataset_id=os.environ.get("ECVA_DATASET_ID", "").strip() or DEFAULT_DATASET_ID,
        frame_backend=os.environ.get("ECVA_FRAME_BACKEND", "").strip() or "pyav",
        judge_base_url=os.environ.get("ECVA_JUDGE_BASE_URL", "").strip() or None,
        judge_model=os.environ.get("ECVA_JUDGE_MODEL", "").strip() or DEFAULT_JUDGE_MODEL,
        judge_api_key=os.environ.get("ECVA_JUDGE_API_KEY", "").strip() or None,
        openai_api_key=os.environ.get("OPENAI_API_KEY", "").strip() or None,
        judge_concurrency=int(_number("ECVA_JUDGE_CONCURRENCY", 32, int)),
        judge_timeout_s=_number("ECVA_JUDGE_TIMEOUT_S", 60.0),
        judge_max_retries=int(_number("ECVA_JUDGE_MAX_RETRIES", 6, int)),
        judge_price_in_per_mtok=_number("ECVA_JUDGE_PRICE_IN", 0.0),
        judge_price_out_per_mtok=_number("ECVA_JUDGE_PRICE_OUT", 0.0),
        max_submission_mb=_number("ECVA_MAX_SUBMISSION_MB", 50.0),
        chat_model=os.environ.get("ECVA_CHAT_MODEL", "").strip() or None,
        bleurt_checkpoint=_path("ECVA_BLEURT_CHECKPOINT"),
        unieval_checkpoint=_path("ECVA_UNIEVAL_CHECKPOINT"),
    )
