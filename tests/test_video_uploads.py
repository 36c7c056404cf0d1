"""Hard video inputs: a 0-byte clip, a clip with no video stream, truncated MP4s, hostile file names and
oversized uploads get a VideoError naming the file on every path (frames, previews, the chat app's upload,
a chat model), and nothing is ever written outside the cache directory."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ecva_core.cli.main import cli
from ecva_core.errors import ConfigError, EcvaError, VideoError
from ecva_core.video import browser_preview, check_video_upload, probe_video, sample_frames, thumbnail
from ecva_core.video.uploads import max_video_upload_mb
from tests.videogen import make_clip


def _faststart(src: Path, dest: Path) -> Path:
    """Remux with the index (moov) first, as streamed MP4s are: a cut file still opens."""
    import av

    with av.open(str(src)) as inp, av.open(str(dest), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        stream = inp.streams.video[0]
        target = out.add_stream_from_template(stream)
        for packet in inp.demux(stream):
            if packet.dts is None:
                continue
            packet.stream = target
            out.mux(packet)
    return dest


def _audio_only_mp4(path: Path) -> Path:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), dtype=np.float32), format="fltp", layout="mono")
        frame.sample_rate = 8000
        for _ in range(8):
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def _bad_videos(root: Path) -> dict[str, Path]:
    root.mkdir(parents=True, exist_ok=True)
    clip = make_clip(root / "source" / "clip.mp4", seconds=4, width=96, height=64)
    data = clip.read_bytes()
    fast = _faststart(clip, root / "source" / "fast.mp4").read_bytes()
    files = {
        "zero_bytes.mp4": b"",
        "truncated_index_at_end.mp4": data[: len(data) // 2],
        "truncated_streamable.mp4": fast[: len(fast) // 2],
        "truncated_after_header.mp4": fast[:2000],
    }
    out = {}
    for name, content in files.items():
        (root / name).write_bytes(content)
        out[name] = root / name
    out["audio_only.mp4"] = _audio_only_mp4(root / "audio_only.mp4")
    return out


EXPECTED = {
    "zero_bytes.mp4": "empty",
    "truncated_index_at_end.mp4": "truncated",
    "truncated_streamable.mp4": "truncated",
    "truncated_after_header.mp4": "truncated",
    "audio_only.mp4": "no video stream",
}


@pytest.fixture(scope="module")
def bad_videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return _bad_videos(tmp_path_factory.mktemp("bad-videos"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_video_is_a_clear_video_error_on_every_library_path(bad_videos, tmp_path: Path, name: str) -> None:
    path = bad_videos[name]
    calls = {
        "probe": lambda: probe_video(path),
        "frames": lambda: sample_frames(path, num_frames=8),
        "preview": lambda: browser_preview(path, cache_dir=tmp_path),
        "thumbnail": lambda: thumbnail(path, cache_dir=tmp_path),
        "upload": lambda: check_video_upload(path),
    }
    for what, call in calls.items():
        with pytest.raises(VideoError, match=EXPECTED[name]) as caught:
            call()
        assert str(path.name) in str(caught.value), what
    assert not list(tmp_path.rglob("*.mp4")) and not list(tmp_path.rglob("*.jpg"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_video_through_the_cli_and_a_chat_model(bad_videos, tmp_path: Path, name: str) -> None:
    from ecva_core.models import load_model

    path = bad_videos[name]
    result = CliRunner().invoke(cli, ["frames", str(path), "--num-frames", "4", "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and "Traceback" not in result.output and path.name in result.output
    spec = "openai:stub-vlm@http://127.0.0.1:9/v1"
    result = CliRunner().invoke(cli, ["chat", "--model", spec, "--video", str(path), "--question", "What?"])
    assert result.exit_code == 1 and "Traceback" not in result.output and EXPECTED[name] in result.output
    model = load_model(spec)
    with pytest.raises(VideoError, match=EXPECTED[name]):
        list(model.chat(path, [{"role": "user", "content": "What happened?"}]))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_clip_uploaded_to_the_chat_app_is_refused_with_its_reason(
    bad_videos, demo_dataset_dir: Path, name: str
) -> None:
    from ecva_apps.chat_app import ChatApp
    from ecva_core.dataset import load_dataset

    app = ChatApp(load_dataset(demo_dataset_dir), None)
    preview, _, clip, send, status = app.upload(str(bad_videos[name]))
    assert preview is None and clip == {} and send["interactive"] is False
    assert status.startswith("⚠️") and EXPECTED[name] in status and name in status


def test_chat_app_checks_the_type_and_the_size_limit(tmp_path: Path, demo_dataset_dir: Path, monkeypatch) -> None:
    from ecva_apps.chat_app import ChatApp
    from ecva_core.dataset import load_dataset

    app = ChatApp(load_dataset(demo_dataset_dir), None)
    clip = make_clip(tmp_path / "clip.mp4", seconds=2)
    renamed = tmp_path / "clip.exe"
    renamed.write_bytes(clip.read_bytes())
    assert "not an accepted video type" in app.upload(str(renamed))[4]
    monkeypatch.setenv("ECVA_MAX_VIDEO_MB", "0.001")
    assert "over the 0.001 MB limit" in app.upload(str(clip))[4]
    monkeypatch.setenv("ECVA_MAX_VIDEO_MB", "2")
    preview, _, state, _, status = app.upload(str(clip))
    assert preview and state["path"] == str(clip) and status == "Uploaded clip ready."
    monkeypatch.setenv("ECVA_MAX_VIDEO_MB", "lots")
    with pytest.raises(ConfigError, match="ECVA_MAX_VIDEO_MB"):
        max_video_upload_mb()


def test_a_200_mb_clip_is_refused_by_its_size_before_it_is_read(tmp_path: Path, monkeypatch) -> None:
    big = tmp_path / "huge.mp4"
    block = b"\0" * (1 << 20)
    with big.open("wb") as handle:  # streamed to disk, never held in memory
        for _ in range(200):
            handle.write(block)
    monkeypatch.setenv("ECVA_MAX_VIDEO_MB", "100")
    tracemalloc.start()
    try:
        with pytest.raises(VideoError, match=r"200\.0 MB, over the 100 MB limit"):
            check_video_upload(big)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        big.unlink()
    assert peak < 10 * 1024 * 1024


def _hostile_names(root: Path, clip: Path) -> list[str]:
    """Paths as an upload might name them: traversal, absolute, odd characters, a very long name."""
    (root / "up" / "a" / "b").mkdir(parents=True)
    (root / "up" / "x.mp4").write_bytes(clip.read_bytes())
    names = [
        str(root / "up" / "a" / "b" / ".." / ".." / "x.mp4"),
        str((root / "up" / "x.mp4").resolve()),
    ]
    for odd in ("-rf .mp4", "a\nb'\"$(x).mp4", "ünï cødé 🎥.mp4", "." * 3 + "mp4.mp4", "x" * 240 + ".mp4"):
        (root / "up" / odd).write_bytes(clip.read_bytes())
        names.append(str(root / "up" / odd))
    return names


def test_previews_and_thumbnails_stay_in_the_cache_whatever_the_name(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "src" / "clip.mp4", seconds=2, width=64, height=48)
    cache = tmp_path / "cache"
    names = _hostile_names(tmp_path / "files", clip)
    before = {p for p in tmp_path.rglob("*") if p.is_file()}
    for name in names:
        check_video_upload(name)
        assert browser_preview(name, cache_dir=cache).parent == cache / "previews"
        assert thumbnail(name, cache_dir=cache).parent == cache / "thumbnails"
    written = {p for p in tmp_path.rglob("*") if p.is_file()} - before
    assert written and all(cache in p.parents for p in written), sorted(written)
    for impossible in ("x\0.mp4", "y" * 300 + ".mp4", str(tmp_path / "files" / "up" / "nothing.mp4")):
        with pytest.raises(VideoError):
            browser_preview(impossible, cache_dir=cache)
        with pytest.raises(VideoError):
            check_video_upload(impossible)


def test_explorer_previews_stay_in_the_cache_whatever_the_name(tmp_path: Path, isolated_home: Path) -> None:
    from ecva_apps.explorer import media
    from ecva_core.config import get_settings

    clip = make_clip(tmp_path / "src" / "clip.mp4", seconds=2, width=64, height=48)
    cache = get_settings().cache_dir
    for name in _hostile_names(tmp_path / "files", clip)[:3]:
        assert Path(media.preview_path(name)).parent == cache / "previews"
        assert Path(media.thumbnail_path(name, 0.5)).parent == cache / "thumbnails"
    with pytest.raises(EcvaError):
        media.preview_path("../../x\0.mp4")


def test_the_chat_app_server_refuses_an_upload_over_the_limit_while_it_streams(
    demo_dataset_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import http.client
    import socket

    from ecva_apps.chat_app import build_app, server_options
    from ecva_core.dataset import load_dataset

    monkeypatch.setenv("ECVA_MAX_VIDEO_MB", "1")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = build_app(load_dataset(demo_dataset_dir))
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **server_options())
    try:
        statuses = []
        for size in (200_000, 3 * 1024 * 1024):
            body = (
                b'--x\r\nContent-Disposition: form-data; name="files"; filename="clip.mp4"\r\n'
                b"Content-Type: video/mp4\r\n\r\n" + b"\0" * size + b"\r\n--x--\r\n"
            )
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("POST", "/gradio_api/upload", body, {"Content-Type": "multipart/form-data; boundary=x"})
            statuses.append(conn.getresponse().status)
            conn.close()
    finally:
        app.close()
    assert statuses == [200, 413]
