"""``ecva frames VIDEO``: sample frames the way a model sees them and write them as JPEGs."""

from __future__ import annotations

from pathlib import Path

import click

from ecva_core.cli.options import emit_json, json_option, log
from ecva_core.video.readers import BACKENDS


@click.command("frames")
@click.argument("video", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--num-frames",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    help="Frames to take: midpoints of N equal segments (AnomShield's rule).",
)
@click.option(
    "--fps",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Sample at this many frames per second instead of --num-frames.",
)
@click.option(
    "--backend",
    type=click.Choice(BACKENDS),
    default=None,
    help="Frame reader (default: $ECVA_FRAME_BACKEND, else pyav).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Folder for the JPEGs (default: VIDEO's name + '_frames' in the current folder).",
)
@json_option
def frames(
    video: Path, num_frames: int, fps: float | None, backend: str | None, out_dir: Path | None, as_json: bool
) -> None:
    """Sample frames from VIDEO and write them as numbered JPEGs."""
    from PIL import Image

    from ecva_core.video import sample_frames

    result = sample_frames(video, num_frames=num_frames, fps=fps, backend=backend)
    out_dir = out_dir or Path.cwd() / f"{video.stem}_frames"
    out_dir.mkdir(parents=True, exist_ok=True)
    files: list[str] = []
    for position, (index, image) in enumerate(zip(result.indices, result.images, strict=True)):
        target = out_dir / f"frame_{position:03d}_{index:06d}.jpg"
        Image.fromarray(image).save(target, format="JPEG", quality=95)
        files.append(str(target))
    if as_json:
        emit_json(
            {
                "video": str(video),
                "backend": result.backend,
                "files": files,
                "indices": result.indices,
                "timestamps": [round(t, 4) for t in result.timestamps],
                "fps": result.info.fps,
                "frame_count": result.info.frame_count,
            }
        )
        return
    log(f"{video}: {result.info.frame_count} frames at {result.info.fps:.3f} fps, backend {result.backend}")
    for path, stamp in zip(files, result.timestamps, strict=True):
        click.echo(f"{stamp:9.3f}s  {path}")
