"""``ecva chat``: ask a video LLM one question about a clip, for scripts and quick checks."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from ecva_core.cli.options import common, data_option, emit_json, fast_decode_option, hub_option, json_option, log
from ecva_core.errors import ConfigError, DataError


def resolve_video(video: str, data_path: Path | None) -> Path:
    """A file path, or a video id (``662`` / ``00662.mp4``) looked up in the dataset; a file that is not
    a readable video fails here, before a model is loaded."""
    from ecva_core.video import probe_video

    candidate = Path(video).expanduser()
    if candidate.is_file():
        probe_video(candidate)
        return candidate
    from ecva_core.dataset import load_dataset
    from ecva_core.schema import canonical_video_id

    try:
        video_id = canonical_video_id(video)
    except (ValueError, TypeError) as exc:
        raise DataError(f"--video {video!r} is neither a file nor a video id") from exc
    dataset = load_dataset(data_path)
    if video_id not in dataset.records:
        raise DataError(f"--video {video!r}: no file by that name and no video id {video_id} in {dataset.name}")
    path = dataset.video_path(video_id)
    if path is None:
        raise DataError(f"video {video_id} is annotated in {dataset.name} but its file is missing")
    probe_video(path)
    return path


@click.command("chat")
@click.option("--model", "spec", default=None, help="anomshield:PATH[@BASE], hf:ID_OR_PATH or openai:MODEL[@URL] "
              "(default: $ECVA_CHAT_MODEL).")
@click.option("--video", required=True, help="A video file, or a video id of the dataset (e.g. 662).")
@click.option("--question", required=True, help="The question to ask about the clip.")
@click.option("--num-frames", type=click.IntRange(1, 256), default=None,
              help="Frames to sample (default: the model's).")
@click.option("--max-new-tokens", type=click.IntRange(1, 8192), default=512, show_default=True)
@click.option("--temperature", type=click.FloatRange(0, 2), default=0.0, show_default=True)
@click.option("--device", default=None, help="auto, cpu, cuda, cuda:1 ... (local models).")
@click.option("--dtype", default=None, help="auto, bf16, fp16, fp32 (local models).")
@fast_decode_option
@hub_option
@common(data_option, json_option)
def chat(spec: str | None, video: str, question: str, num_frames: int | None, max_new_tokens: int,
         temperature: float, device: str | None, dtype: str | None, fast_decode: bool, hub: str | None,
         data_path: Path | None, as_json: bool) -> None:
    """Stream a model's answer to QUESTION about VIDEO on stdout (or one JSON object with --json)."""
    from ecva_core.config import get_settings
    from ecva_core.models import load_model, parse_spec

    spec = spec or get_settings().chat_model
    if not spec:
        raise ConfigError("no model given: pass --model SPEC or set ECVA_CHAT_MODEL "
                          "(e.g. openai:gpt-4o-mini, hf:HuggingFaceTB/SmolVLM2-2.2B-Instruct)")
    parse_spec(spec)
    path = resolve_video(video, data_path)
    started = time.perf_counter()
    log(f"loading {spec} ...")
    model = load_model(spec, num_frames=num_frames, device=device, dtype=dtype, static_cache=fast_decode or None,
                       hub=hub)
    load_s = time.perf_counter() - started
    pieces: list[str] = []
    for chunk in model.chat(path, [{"role": "user", "content": question}], max_new_tokens=max_new_tokens,
                            temperature=temperature):
        pieces.append(chunk)
        if not as_json:
            sys.stdout.write(chunk)
            sys.stdout.flush()
    answer = "".join(pieces)
    timings = {"load_s": round(load_s, 4), **{k: round(v, 4) for k, v in model.last_timings.items()}}
    if not as_json:
        sys.stdout.write("\n")
        log(" ".join(f"{k}={v}" for k, v in timings.items()))
        return
    frames = model.last_frames
    emit_json({
        "answer": answer,
        "model": spec,
        "backend": model.describe(),
        "video": str(path),
        "frames": {
            "count": 0 if frames is None else len(frames.timestamps),
            "timestamps": [] if frames is None else [round(t, 3) for t in frames.timestamps],
        },
        "timings": timings,
    })
