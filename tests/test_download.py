"""ModelScope download through the real SDK against a loopback server that speaks its dataset API."""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from ecva_core.cli.main import cli
from ecva_core.dataset.download import copy_local, download_dataset, list_remote_files
from ecva_core.errors import DownloadError
from tests.modelscope_stub import ModelScopeStub

CSV = (
    "video_id,A1 (category),A2 - reason,A2 -  result,A3 - moment,A3 - description,A4 - key sentences\n"
    '1,"[5-1,5]",A car ran a red light,The cars collided,"[0001,0004]",[Two cars collide],'
    '"[""red light"", ""collision""]"\n'
    '2,"[9-1,4]",A cigarette fell on a sofa,The room burned,"[0002,0006]",[A fire spreads],'
    '"[""fire"", ""smoke""]"\n'
)
VIDEO = bytes(range(256)) * 4096  # 1 MiB of deterministic bytes


@pytest.fixture
def stub_files() -> dict[str, bytes]:
    return {"annotations.csv": CSV.encode(), "videos/00001.mp4": VIDEO, "videos/00002.mp4": VIDEO[::-1]}


def _serve(monkeypatch: pytest.MonkeyPatch, stub: ModelScopeStub) -> None:
    monkeypatch.setenv("MODELSCOPE_ENDPOINT", stub.endpoint)
    monkeypatch.setenv("MODELSCOPE_CACHE", str(Path(os.environ["ECVA_HOME"]) / "ms-cache"))


def test_annotations_only_download_verifies_and_skips_videos(monkeypatch, tmp_path, stub_files):
    with ModelScopeStub(stub_files) as stub:
        _serve(monkeypatch, stub)
        result = download_dataset(tmp_path / "ecva", "gouchenyi/ECVA", include="annotations")
    assert result.files == ["annotations.csv"]
    assert result.verified == 1
    assert (tmp_path / "ecva" / "annotations.csv").read_bytes() == CSV.encode()
    assert not (tmp_path / "ecva" / "videos").exists()
    assert all(r.file_path != "videos/00001.mp4" for r in stub.requests)


def test_interrupted_transfer_resumes_with_range_and_verifies(monkeypatch, tmp_path, stub_files):
    with ModelScopeStub(stub_files, cut_after={"videos/00001.mp4": 300_000}) as stub:
        _serve(monkeypatch, stub)
        download_dataset(tmp_path / "ecva", "gouchenyi/ECVA", include="all", max_workers=1)
    assert (tmp_path / "ecva" / "videos" / "00001.mp4").read_bytes() == VIDEO
    assert stub.ranged("videos/00001.mp4"), "the SDK should resume the cut transfer with a Range request"


def test_partial_file_from_a_killed_run_is_resumed_not_restarted(monkeypatch, tmp_path, stub_files):
    dest = tmp_path / "ecva"
    (dest / "videos").mkdir(parents=True)
    (dest / "videos" / "00002.mp4.incomplete").write_bytes(stub_files["videos/00002.mp4"][:400_000])
    with ModelScopeStub(stub_files) as stub:
        _serve(monkeypatch, stub)
        download_dataset(dest, "gouchenyi/ECVA", include="videos", max_workers=1)
    assert (dest / "videos" / "00002.mp4").read_bytes() == stub_files["videos/00002.mp4"]
    assert "bytes=400000-" in stub.ranged("videos/00002.mp4")


def test_checksum_mismatch_is_an_error(monkeypatch, tmp_path, stub_files):
    with ModelScopeStub(stub_files, lie_sha256={"annotations.csv"}) as stub:
        _serve(monkeypatch, stub)
        with pytest.raises(DownloadError, match=r"annotations\.csv"):
            download_dataset(tmp_path / "ecva", "gouchenyi/ECVA", include="annotations")


def test_unknown_dataset_says_not_found(monkeypatch, tmp_path, stub_files):
    with ModelScopeStub(stub_files) as stub:
        _serve(monkeypatch, stub)
        with pytest.raises(DownloadError, match="not found"):
            list_remote_files("someone/Missing")


def test_refused_connection_fails_fast_with_local_copy_hint(monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("MODELSCOPE_ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(DownloadError, match="--from DIR"):
        list_remote_files("gouchenyi/ECVA")


def test_silent_hub_times_out_with_local_copy_hint(monkeypatch):
    """A server that accepts connections but never answers: the pre-flight gives up on its timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept_and_hold() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept_and_hold, daemon=True)
    thread.start()
    monkeypatch.setenv("MODELSCOPE_ENDPOINT", f"http://127.0.0.1:{listener.getsockname()[1]}")
    monkeypatch.setenv("ECVA_HUB_TIMEOUT_S", "1")
    try:
        with pytest.raises(DownloadError, match="Cannot reach the ModelScope hub"):
            list_remote_files("gouchenyi/ECVA")
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()


def test_cli_download_prints_validation_report_as_json(monkeypatch, tmp_path, stub_files):
    with ModelScopeStub(stub_files) as stub:
        _serve(monkeypatch, stub)
        result = CliRunner().invoke(cli, ["data", "download", "--to", str(tmp_path / "ecva"), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["files"] == 1
    assert payload["report"]["videos"] == 2


def test_cli_unreachable_hub_exits_1_without_traceback(monkeypatch, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("MODELSCOPE_ENDPOINT", f"http://127.0.0.1:{port}")
    result = CliRunner().invoke(cli, ["data", "download", "--to", str(tmp_path / "x")])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "--from DIR" in result.output


def test_from_local_copy_links_files(tmp_path):
    source = tmp_path / "src"
    (source / "videos").mkdir(parents=True)
    (source / "annotations.csv").write_text(CSV, encoding="utf-8")
    (source / "videos" / "00001.mp4").write_bytes(VIDEO)
    result = copy_local(source, tmp_path / "dest")
    assert sorted(result.files) == ["annotations.csv", "videos/00001.mp4"]
    assert (tmp_path / "dest" / "videos" / "00001.mp4").read_bytes() == VIDEO


@pytest.mark.realdata
def test_real_annotation_file_through_the_hub(monkeypatch, tmp_path, shared_ecva):
    files = {"annotations.xlsx": (shared_ecva / "annotations.xlsx").read_bytes()}
    with ModelScopeStub(files) as stub:
        _serve(monkeypatch, stub)
        result = CliRunner().invoke(cli, ["data", "download", "--to", str(tmp_path / "ecva"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["report"]["videos"] == 1000
