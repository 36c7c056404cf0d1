"""The explorer shared with a lab: the submit token, the judge spend limit per upload and the upload log.

The decisions are the library's (``ecva_core.sharing``); the Submit page is driven through Streamlit's
AppTest with the server address set as ``ecva serve explorer --address`` sets it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ecva_apps.explorer import APP_SCRIPT
from ecva_core.errors import ConfigError
from ecva_core.metrics.judge.engine import JudgePlan
from ecva_core.sharing import (
    SharingSettings,
    is_loopback,
    judge_budget,
    sharing_settings,
    submit_access,
    token_matches,
)

APP = str(APP_SCRIPT)
TOKEN = "lab-secret-7f3a"


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.0.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        (None, False),
        ("192.168.1.20", False),
        ("lab-server.example", False),
    ],
)
def test_loopback_addresses(address: str | None, loopback: bool) -> None:
    assert is_loopback(address) is loopback


def test_token_compare() -> None:
    assert token_matches(TOKEN, TOKEN) and token_matches(f" {TOKEN} ", TOKEN)
    assert not token_matches("lab-secret-7f3b", TOKEN)
    assert not token_matches("", TOKEN) and not token_matches(None, TOKEN) and not token_matches(TOKEN, None)
    assert not token_matches("é", TOKEN)


def test_submit_access_rules() -> None:
    none = SharingSettings()
    with_token = SharingSettings(submit_token=TOKEN)
    assert submit_access("127.0.0.1", None, none).can_submit
    shared = submit_access("0.0.0.0", None, none)
    assert not shared.can_submit and not shared.needs_token and "ECVA_SUBMIT_TOKEN" in shared.reason
    assert not submit_access("0.0.0.0", None, with_token).can_submit
    wrong = submit_access("0.0.0.0", "guess", with_token)
    assert not wrong.can_submit and not wrong.sees_upload_log and "not right" in wrong.reason
    right = submit_access("0.0.0.0", TOKEN, with_token)
    assert right.can_submit and right.sees_upload_log
    assert TOKEN not in repr(with_token)


def test_judge_budget_caps_calls_and_cost() -> None:
    plan = JudgePlan(calls_needed=120, cached=0, est_tokens=60_000, est_cost=3.5)
    assert judge_budget(plan, SharingSettings()).allowed
    assert judge_budget(plan, SharingSettings(judge_max_calls=120, judge_max_cost=3.5)).allowed
    over_calls = judge_budget(plan, SharingSettings(judge_max_calls=100))
    assert not over_calls.allowed and "120 calls" in over_calls.reason and "ECVA_JUDGE_MAX_CALLS" in over_calls.reason
    over_cost = judge_budget(plan, SharingSettings(judge_max_cost=1))
    assert not over_cost.allowed and "ECVA_JUDGE_MAX_COST" in over_cost.reason


def test_sharing_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECVA_SUBMIT_TOKEN", TOKEN)
    monkeypatch.setenv("ECVA_JUDGE_MAX_COST", "2.5")
    monkeypatch.setenv("ECVA_JUDGE_MAX_CALLS", "300")
    assert sharing_settings() == SharingSettings(TOKEN, 2.5, 300)
    monkeypatch.setenv("ECVA_JUDGE_MAX_CALLS", "-3")
    with pytest.raises(ConfigError, match="ECVA_JUDGE_MAX_CALLS"):
        sharing_settings()
    monkeypatch.setenv("ECVA_JUDGE_MAX_CALLS", "many")
    with pytest.raises(ConfigError, match="ECVA_JUDGE_MAX_CALLS"):
        sharing_settings()


@pytest.fixture
def served_on():
    """Set the address the app believes it is served on (as ``--server.address`` does), restored afterwards."""
    from streamlit import config

    before = config.get_option("server.address")
    yield lambda address: config.set_option("server.address", address)
    config.set_option("server.address", before)


@pytest.fixture
def plain_data(demo_dataset_dir: Path, isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The demo annotations as a plain dataset (no demo bootstrap) and an empty results database."""
    data = isolated_home.parent / "plain-dataset"
    data.mkdir()
    shutil.copy(demo_dataset_dir / "annotations.csv", data / "annotations.csv")
    monkeypatch.setenv("ECVA_DATA", str(data))
    monkeypatch.setenv("ECVA_DB", str(isolated_home / "results.db"))
    return demo_dataset_dir


def _warnings(at) -> list[str]:
    """Warning texts without Markdown escapes."""
    return [w.value.replace("\\", "") for w in at.warning]


def _submit_page():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=120).run()
    return at.switch_page("screens/submit.py").run()


def _log() -> list[dict]:
    from ecva_core.config import get_settings
    from ecva_core.results.db import ResultsDB

    return ResultsDB(get_settings().db_path).upload_log()


def _submission(demo: Path) -> bytes:
    return (demo / "submissions" / "demo-medium.json").read_bytes()


def test_shared_without_a_token_is_read_only(plain_data: Path, served_on) -> None:
    served_on("0.0.0.0")
    at = _submit_page()
    assert not at.exception
    assert any("read-only" in w and "ECVA_SUBMIT_TOKEN" in w for w in _warnings(at))
    assert not at.get("file_uploader") and not [t for t in at.text_input if t.key == "sub_token"]


def test_a_wrong_token_cannot_upload_and_is_logged(
    plain_data: Path, served_on, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ECVA_SUBMIT_TOKEN", TOKEN)
    served_on("0.0.0.0")
    at = _submit_page()
    assert not at.get("file_uploader") and at.text_input(key="sub_token")
    at.text_input(key="sub_token").set_value("lab-secret-guess").run()
    assert not at.exception
    assert any("not right" in w for w in _warnings(at))
    assert not at.get("file_uploader")
    at.run()
    at.text_input(key="sub_token").set_value("lab-secret-guess-2").run()
    entries = _log()
    assert [e["outcome"] for e in entries] == ["denied: wrong submit token"] * 2
    from ecva_core.config import get_settings

    db = get_settings().db_path
    stored = b"".join(p.read_bytes() for p in db.parent.glob(f"{db.name}*"))
    assert b"lab-secret-guess" not in stored and TOKEN.encode() not in stored
    assert not at.get("file_uploader")


def test_the_right_token_uploads_and_sees_the_log(plain_data: Path, served_on, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECVA_SUBMIT_TOKEN", TOKEN)
    served_on("0.0.0.0")
    at = _submit_page()
    at.text_input(key="sub_token").set_value(TOKEN).run()
    at.text_input(key="sub_model").set_value("Lab-VLM").run()
    at.file_uploader(key="sub_file").set_value(("answers.json", _submission(plain_data), "application/json")).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    at.button(key="sub_score").click().run()
    assert not at.exception and any("Lab-VLM" in s.value for s in at.success)
    entries = _log()
    assert [e["outcome"] for e in entries] == ["scored", "validated"]
    assert entries[0]["model"] == "Lab-VLM" and len(entries[0]["file_hash"]) == 64
    assert any(e.label.startswith("Upload log") for e in at.expander)
    log_table = at.dataframe[-1].value
    assert list(log_table["outcome"]) == ["scored", "validated"]


def test_an_upload_over_the_judge_limit_is_scored_with_text_metrics_only(
    plain_data: Path, served_on, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ECVA_JUDGE_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("ECVA_JUDGE_API_KEY", "loopback-key")
    monkeypatch.setenv("ECVA_JUDGE_MAX_CALLS", "5")
    served_on("127.0.0.1")
    at = _submit_page()
    assert not [t for t in at.text_input if t.key == "sub_token"]
    at.text_input(key="sub_model").set_value("Big-VLM").run()
    at.file_uploader(key="sub_file").set_value(("big.json", _submission(plain_data), "application/json")).run()
    assert any("text metrics only" in w and "ECVA_JUDGE_MAX_CALLS" in w for w in _warnings(at))
    at.button(key="sub_score").click().run()
    assert not at.exception and any("Big-VLM" in s.value for s in at.success)
    assert _log()[0]["outcome"] == "scored, text metrics only"
    from ecva_core.config import get_settings
    from ecva_core.results.db import ResultsDB

    frame = ResultsDB(get_settings().db_path).scores_frame()
    assert not frame.empty and not frame["metric"].str.startswith("judge_").any()


def test_a_rejected_upload_is_logged_with_its_reason(plain_data: Path, served_on) -> None:
    served_on("localhost")
    at = _submit_page()
    bad = json.dumps([{"video_file": "00001.mp4", "output": 5}]).encode()
    at.file_uploader(key="sub_file").set_value(("bad.json", bad, "application/json")).run()
    at.run()
    entries = _log()
    assert [e["outcome"] for e in entries] == ["rejected"]
    assert "row 1" in entries[0]["detail"] and entries[0]["file_name"] == "bad.json"


def test_a_version_4_database_gains_the_upload_log_and_logging_changes_no_score(tmp_path: Path) -> None:
    import sqlite3

    from ecva_core.results.db import ResultsDB
    from ecva_core.results.migrations import migrate

    path = tmp_path / "v4.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, target=4)
    conn.execute("INSERT INTO models (name, created) VALUES ('kept', '2025-01-01')")
    conn.close()
    db = ResultsDB(path)
    version = db.data_version()
    db.log_upload("denied: wrong submit token", client="10.0.0.7", detail="x" * 2000)
    db.log_upload("scored", model="m", file_name="a.json", file_hash="ab" * 32, client="10.0.0.8")
    assert db.data_version() == version and [m["model"] for m in db.models()] == ["kept"]
    newest, oldest = db.upload_log()
    assert (newest["outcome"], newest["model"], newest["client"]) == ("scored", "m", "10.0.0.8")
    assert oldest["client"] == "10.0.0.7" and len(oldest["detail"]) == 500 and oldest["time"]


@pytest.mark.parametrize("kind", ["deep_array", "nul_byte"])
def test_a_malformed_upload_shows_its_error_and_is_logged(
    plain_data: Path, served_on, tmp_path: Path, kind: str
) -> None:
    from tests.submissions.generated import generate

    if kind == "nul_byte":
        name, data = "answers.csv", (Path(__file__).parent / "submissions" / "malformed" / "nul_byte.csv").read_bytes()
    else:
        name, data = "answers.json", generate(kind, tmp_path, "deep.json").read_bytes()
    served_on("127.0.0.1")
    at = _submit_page()
    at.file_uploader(key="sub_file").set_value((name, data, "application/octet-stream")).run()
    assert not at.exception
    assert any("rejected" in e.value for e in at.error)
    problems = " ".join(at.dataframe[0].value["problem"])
    assert ("nested too deeply" if kind == "deep_array" else "NUL byte") in problems
    assert [e["outcome"] for e in _log()] == ["rejected"]
