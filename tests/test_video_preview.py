"""Previews are browser-playable H.264 MP4s (moov first), cached by content; thumbnails are JPEGs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image

from ecva_core.video import browser_preview, probe_video, thumbnail
from tests.videogen import make_clip


def _assert_playable(preview: Path, source: Path) -> None:
    import av

    with av.open(str(preview)) as container:
        stream = container.streams.video[0]
        assert container.format.name.startswith("mov,mp4")
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert stream.codec_context.width % 2 == 0 and stream.codec_context.height % 2 == 0
    head = preview.read_bytes()[:4096]
    moov, mdat = head.find(b"moov"), head.find(b"mdat")
    assert moov >= 0 and (mdat == -1 or moov < mdat), "moov atom must come first (faststart)"
    before, after = probe_video(source), probe_video(preview)
    assert after.frame_count == before.frame_count
    assert after.duration == pytest.approx(before.duration, abs=1.5 / before.fps)


@pytest.fixture(scope="module")
def odd_sized_avi(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("prev") / "odd.avi", seconds=1, width=63, height=47, codec="mpeg4")


def test_avi_with_odd_size_is_transcoded(odd_sized_avi: Path, tmp_path: Path) -> None:
    preview = browser_preview(odd_sized_avi, cache_dir=tmp_path)
    _assert_playable(preview, odd_sized_avi)
    assert probe_video(preview).width == 62 and probe_video(preview).height == 46


def test_h264_mp4_is_remuxed_and_cached_by_content(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=1, gop=5)
    first = browser_preview(clip, cache_dir=tmp_path / "cache")
    _assert_playable(first, clip)
    assert first.parent == tmp_path / "cache" / "previews"
    copy = tmp_path / "renamed.mp4"
    shutil.copy(clip, copy)
    mtime = first.stat().st_mtime_ns
    assert browser_preview(copy, cache_dir=tmp_path / "cache") == first
    assert first.stat().st_mtime_ns == mtime


def test_default_cache_dir_is_under_settings(odd_sized_avi: Path, isolated_home: Path) -> None:
    preview = browser_preview(odd_sized_avi)
    assert preview.is_relative_to(isolated_home / "cache")


@pytest.mark.realdata
def test_real_avi_clips_come_out_playable(shared_media: Path, tmp_path: Path) -> None:
    for source in sorted(shared_media.glob("*.avi")):
        _assert_playable(browser_preview(source, cache_dir=tmp_path), source)


def test_thumbnail_is_a_cached_jpeg(odd_sized_avi: Path, tmp_path: Path) -> None:
    thumb = thumbnail(odd_sized_avi, cache_dir=tmp_path, width=32)
    with Image.open(thumb) as image:
        assert image.format == "JPEG"
        assert image.width == 32 and image.height == round(47 * 32 / 63)
    assert thumbnail(odd_sized_avi, cache_dir=tmp_path, width=32) == thumb
    assert thumbnail(odd_sized_avi, cache_dir=tmp_path, at=0.0, width=32) != thumb
