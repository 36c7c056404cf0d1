"""Shared fixtures: an isolated ECVA_HOME per test and the real data under ../shared (skipped if absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_ROOT = REPO_ROOT.parent / "shared"

_ISOLATED_VARS = [
    "ECVA_DATA",
    "ECVA_DB",
    "ECVA_DEMO_DIR",
    "ECVA_CACHE_DIR",
    "ECVA_JUDGE_BASE_URL",
    "ECVA_JUDGE_API_KEY",
    "ECVA_JUDGE_MODEL",
    "OPENAI_API_KEY",
    "ECVA_CHAT_MODEL",
    "MODELSCOPE_ENDPOINT",
    "ECVA_SUBMIT_TOKEN",
    "ECVA_JUDGE_MAX_COST",
    "ECVA_JUDGE_MAX_CALLS",
    "ECVA_MAX_SUBMISSION_MB",
    "ECVA_MAX_VIDEO_MB",
    "ECVA_OFFICIAL_REPO",
]


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own ECVA_HOME and none of the user's settings or keys."""
    for name in _ISOLATED_VARS:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "ecva-home"
    monkeypatch.setenv("ECVA_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    return home


def _shared_dir(env_name: str, default: Path) -> Path:
    return Path(os.environ.get(env_name, str(default)))


@pytest.fixture(scope="session")
def shared_ecva() -> Path:
    """The real annotation file and model outputs (../shared/ecva, or $ECVA_SHARED_DIR)."""
    path = _shared_dir("ECVA_SHARED_DIR", SHARED_ROOT / "ecva")
    if not (path / "annotations.xlsx").exists():
        pytest.skip(f"real ECVA data not found at {path}")
    return path


@pytest.fixture(scope="session")
def shared_media() -> Path:
    """The three real AVI clips (../shared/media, or $ECVA_SHARED_MEDIA)."""
    path = _shared_dir("ECVA_SHARED_MEDIA", SHARED_ROOT / "media")
    if not any(path.glob("*.avi")):
        pytest.skip(f"real media clips not found at {path}")
    return path


@pytest.fixture(scope="session")
def demo_dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One generated demo dataset shared by the whole session (treat it as read-only)."""
    from ecva_core.dataset.demo import ensure_demo

    return ensure_demo(tmp_path_factory.mktemp("demo-data") / "demo")


@pytest.fixture
def official_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake checkout of the official ECVA repository (placeholder prompts), named by ECVA_OFFICIAL_REPO."""
    from tests.official_checkout import write_official_checkout

    root = write_official_checkout(tmp_path / "official-ecva")
    monkeypatch.setenv("ECVA_OFFICIAL_REPO", str(root))
    return root
