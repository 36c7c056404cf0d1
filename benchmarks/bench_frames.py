"""Frame sampling speed: ecva's readers against the official AnomShield path (decord get_batch).

Generates (in a temporary folder) a 2-minute 60 fps 1280x720 H.264 clip with x264's default GOP
(keyint 250) and a short-GOP clip, then times ``sample_frames`` with each backend and the
baseline ``decord.VideoReader(path, ctx=cpu(0), num_threads=1).get_batch(midpoint indices)``
(VideoLLaMA2's ``process_video``), opening the file inside every timed run. Reports the median of
``--runs`` runs, checks that every reader returns the baseline's pixels, prints a table and,
last, one JSON line of headline figures. Run: ``.venv/bin/python benchmarks/bench_frames.py``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np

from ecva_core.video import BACKENDS, sample_frames
from ecva_core.video.sampling import uniform_positions

COUNTS = (8, 16, 32)


def generate_clip(
    path: Path, seconds: float, fps: int, width: int, height: int, gop: int | None, preset: str, bframes: int
) -> Path:
    """A panning textured scene (motion the encoder must really code), written straight as yuv420p."""
    import av

    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 255, (height // 8 + 40, width // 8 + 80), dtype=np.uint8)
    luma = np.kron(coarse, np.ones((8, 8), dtype=np.uint8)).astype(np.int16)
    luma = (luma + rng.integers(-4, 5, luma.shape)).clip(0, 255).astype(np.uint8)
    cb = np.ascontiguousarray(luma[::2, ::2] // 2 + 64)
    cr = np.ascontiguousarray(255 - luma[::2, ::2] // 2 - 64)
    plane = np.empty((height * 3 // 2, width), dtype=np.uint8)
    quarter = height * width // 4
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": preset, "crf": "23", "bf": str(bframes)}
        if gop is not None:
            stream.codec_context.gop_size = gop
        for index in range(int(seconds * fps)):
            x = (index * 2) % (luma.shape[1] - width - 2) // 2 * 2
            y = (index // 3) % (luma.shape[0] - height - 2) // 2 * 2
            plane[:height] = luma[y : y + height, x : x + width]
            flat = plane[height:].reshape(-1)
            flat[:quarter] = cb[y // 2 : y // 2 + height // 2, x // 2 : x // 2 + width // 2].reshape(-1)
            flat[quarter:] = cr[y // 2 : y // 2 + height // 2, x // 2 : x // 2 + width // 2].reshape(-1)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(plane, format="yuv420p")))
        container.mux(stream.encode(None))
    return path


def decord_baseline(path: Path, num_frames: int) -> np.ndarray:
    """The official path: VideoLLaMA2 process_video's VideoReader + get_batch of midpoint indices."""
    from decord import VideoReader, cpu

    reader = VideoReader(str(path), ctx=cpu(0), num_threads=1)
    indices = uniform_positions(len(reader), num_frames)
    return reader.get_batch(indices).asnumpy()


def median_time(call: Callable[[], object], runs: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def bench_clip(path: Path, runs: int) -> dict[str, dict[int, float]]:
    """Median seconds per (method, frame count); raises if any reader's pixels differ."""
    rows: dict[str, dict[int, float]] = {"decord get_batch (official)": {}}
    rows.update({f"ecva {name}" + (" (default)" if name == "pyav" else ""): {} for name in BACKENDS})
    for count in COUNTS:
        seconds, reference = median_time(lambda c=count: decord_baseline(path, c), runs)
        rows["decord get_batch (official)"][count] = seconds
        for name in BACKENDS:
            label = f"ecva {name}" + (" (default)" if name == "pyav" else "")
            seconds, frames = median_time(lambda c=count, b=name: sample_frames(path, num_frames=c, backend=b), runs)
            rows[label][count] = seconds
            if not np.array_equal(frames.images, reference):
                raise SystemExit(f"{label} returned different pixels from decord at {count} frames on {path.name}")
    return rows


def print_table(title: str, rows: dict[str, dict[int, float]]) -> None:
    print(f"\n{title}")
    print(f"{'method':32s}" + "".join(f"{f'{c} frames':>12s}" for c in COUNTS))
    for label, cells in rows.items():
        print(f"{label:32s}" + "".join(f"{cells[c] * 1000:10.0f}ms" for c in COUNTS))
    base = rows["decord get_batch (official)"]
    default = rows["ecva pyav (default)"]
    print(f"{'speed-up default vs decord':32s}" + "".join(f"{base[c] / default[c]:11.2f}x" for c in COUNTS))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="length of the long-GOP clip")
    parser.add_argument("--short-gop-seconds", type=float, default=30.0, help="length of the short-GOP clip")
    parser.add_argument("--short-gop", type=int, default=30, help="key-frame interval of the short-GOP clip")
    parser.add_argument("--preset", default="ultrafast", help="x264 preset used to generate the clips")
    parser.add_argument(
        "--bframes", type=int, default=3, help="B-frames per mini-GOP (x264's default 3; 0 = all P-frames)"
    )
    parser.add_argument("--runs", type=int, default=3, help="timed runs per cell (median reported)")
    args = parser.parse_args(argv)

    figures: dict[str, float | bool] = {}
    with tempfile.TemporaryDirectory(prefix="ecva-bench-frames-") as tmp:
        start = time.perf_counter()
        clips = {
            "long_gop": generate_clip(
                Path(tmp) / "long.mp4", args.seconds, 60, 1280, 720, None, args.preset, args.bframes
            ),
            "short_gop": generate_clip(
                Path(tmp) / "short.mp4",
                args.short_gop_seconds,
                60,
                1280,
                720,
                args.short_gop,
                args.preset,
                args.bframes,
            ),
        }
        print(
            f"generated clips in {time.perf_counter() - start:.1f}s "
            f"(x264 preset {args.preset}, {args.bframes} B-frames)",
            file=sys.stderr,
        )
        for key, path in clips.items():
            rows = bench_clip(path, args.runs)
            gop = "x264 default keyint 250" if key == "long_gop" else f"keyint {args.short_gop}"
            print_table(f"{key}: {path.stat().st_size / 1e6:.1f} MB, 1280x720 60 fps, {gop}", rows)
            for count in COUNTS:
                ratio = rows["ecva pyav (default)"][count] / rows["decord get_batch (official)"][count]
                figures[f"{key}_ratio_default_vs_decord_{count}"] = round(ratio, 3)
            figures[f"{key}_default_ms_16"] = round(rows["ecva pyav (default)"][16] * 1000, 1)
            figures[f"{key}_decord_ms_16"] = round(rows["decord get_batch (official)"][16] * 1000, 1)
    figures["ratio_default_vs_decord_16"] = figures["long_gop_ratio_default_vs_decord_16"]
    figures["frames_identical"] = True
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
