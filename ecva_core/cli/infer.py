"""``ecva infer``: run a video LLM over the benchmark by the ECVA protocol; ``ecva infer merge``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ecva_core.cli.options import common, data_option, db_option, emit_json, hub_option, json_option, log
from ecva_core.infer.engine import DEFAULT_BATCH_SIZE, DEFAULT_CONCURRENCY, ENGINES
from ecva_core.infer.plan import PROBE_MODES

_TASK_HELP = "Comma-separated tasks (default: description,cause,result; also classification,timestamp)."


class _InferBar:
    """A rich progress bar on stderr: items done, items/s, ETA, failures and cache hits."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("infer"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[status]}"),
            console=Console(stderr=True),
        )
        self.task: Any = None
        self.started: float = 0.0
        self.first_done: int = 0

    def __enter__(self) -> _InferBar:
        import time

        self.started = time.perf_counter()
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, done: int, total: int, failed: int, cached: int) -> None:
        import time

        if self.task is None:
            self.first_done = done
            self.task = self.progress.add_task("infer", total=max(total, 1), status="")
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        rate = (done - self.first_done) / elapsed
        status = f"{rate:.1f} items/s, {failed} failed, {cached} cached"
        self.progress.update(self.task, completed=done, total=max(total, 1), status=status)


def _tasks(text: str | None) -> tuple[Any, ...]:
    from ecva_core.schema import SCORED_TASKS, Task

    if not text:
        return SCORED_TASKS
    try:
        return tuple(dict.fromkeys(Task.parse(part) for part in text.split(",") if part.strip()))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--tasks") from None


def _default_probe(dataset: Any) -> str:
    """``annotated`` when the dataset has anomaly moments to cut out, else no probe (with a note)."""
    if any(r.annotation.moments for r in dataset.records.values()):
        return "annotated"
    log("the dataset has no annotated anomaly moments: no probe answers (use --probe ranked with a judge)")
    return "none"


@click.group("infer", invoke_without_command=True)
@click.option(
    "--model",
    "spec",
    default=None,
    help="anomshield:PATH[@BASE], hf:ID_OR_PATH or openai:MODEL[@URL] (vLLM, SGLang, Ollama servers).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Submission file to write (the official JSON list, plus probe, frames and model per row).",
)
@click.option("--tasks", default=None, help=_TASK_HELP)
@click.option(
    "--probe",
    type=click.Choice(PROBE_MODES),
    default=None,
    help="Hallucination probe: annotated moments cut out (default when the dataset has moments), "
    "ranked (caption chunks, the judge ranks them, the top 2 are removed) or none.",
)
@click.option(
    "--num-frames", type=click.IntRange(1, 256), default=None, help="Frames per question (default: the model's own)."
)
@click.option("--videos", default=None, help="Comma-separated video ids to run (default: every usable video).")
@click.option("--limit", type=click.IntRange(0), default=None, help="Only the first N videos (in id order).")
@click.option(
    "--concurrency",
    type=click.IntRange(1, 1024),
    default=DEFAULT_CONCURRENCY,
    show_default=True,
    help="openai: requests in flight.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 1024),
    default=DEFAULT_BATCH_SIZE,
    show_default=True,
    help="Local models: questions per forward pass.",
)
@click.option(
    "--shards",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Split the videos into N shards (for batch-scheduler arrays).",
)
@click.option("--shard-index", type=click.IntRange(0), default=0, show_default=True, help="Which shard to run.")
@click.option("--engine", type=click.Choice(ENGINES), default="local", show_default=True)
@click.option("--ray-address", default=None, help="Ray cluster to join (auto on a head node; default: a local one).")
@click.option(
    "--ray-replicas",
    type=click.IntRange(1),
    default=None,
    help="Ray: model replicas (default: one per GPU, or per 4 CPUs for openai).",
)
@click.option(
    "--cache",
    "cache_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Result logs and file hashes (default: $ECVA_CACHE_DIR/infer).",
)
@click.option(
    "--decode-workers",
    type=click.IntRange(0, 64),
    default=None,
    help="Frame-decoding processes (default: up to 4; 0 decodes in the main process).",
)
@click.option("--max-new-tokens", type=click.IntRange(1, 8192), default=512, show_default=True)
@click.option("--temperature", type=click.FloatRange(0, 2), default=0.0, show_default=True)
@click.option("--device", default=None, help="auto, cpu, cuda, cuda:1 ... (local models).")
@click.option("--dtype", default=None, help="auto, bf16, fp16, fp32 (local models).")
@hub_option
@click.option("--score", "score_after", is_flag=True, help="Store and score the file when done (as ecva score).")
@click.option("--name", default=None, help="With --score: the model name results are stored under (default: SPEC).")
@click.option(
    "--judge/--no-judge", default=None, help="With --score: run the AnomEval judge (default: when one is configured)."
)
@click.option("--metric", "metrics", multiple=True, help="With --score: text metric(s) (default: every one available).")
@common(data_option, db_option, json_option)
@click.pass_context
def infer(
    ctx: click.Context,
    spec: str | None,
    out: Path | None,
    tasks: str | None,
    probe: str | None,
    num_frames: int | None,
    videos: str | None,
    limit: int | None,
    concurrency: int,
    batch_size: int,
    shards: int,
    shard_index: int,
    engine: str,
    ray_address: str | None,
    ray_replicas: int | None,
    cache_dir: Path | None,
    decode_workers: int | None,
    max_new_tokens: int,
    temperature: float,
    device: str | None,
    dtype: str | None,
    hub: str | None,
    score_after: bool,
    name: str | None,
    judge: bool | None,
    metrics: tuple[str, ...],
    data_path: Path | None,
    db_path: Path | None,
    as_json: bool,
) -> None:
    """Answer the benchmark's questions (and the hallucination probe) with a model; resumable.

    Run the same command again after a kill: nothing answered is asked again.
    """
    if ctx.invoked_subcommand is not None:
        return
    if not spec or out is None:
        raise click.UsageError("give --model SPEC and --out FILE (or use `ecva infer merge`)")
    from ecva_core.dataset import load_dataset
    from ecva_core.infer import InferOptions, PlanOptions, run_infer
    from ecva_core.models import parse_spec

    parse_spec(spec)
    if shard_index >= shards:
        raise click.BadParameter(f"must be below --shards ({shards})", param_hint="--shard-index")
    dataset = load_dataset(data_path)
    model_options = {k: v for k, v in (("device", device), ("dtype", dtype), ("hub", hub)) if v is not None}
    plan = PlanOptions(
        spec=spec,
        model_options=model_options,
        generation={"max_new_tokens": max_new_tokens, "temperature": temperature},
        tasks=_tasks(tasks),
        probe=probe or _default_probe(dataset),
        num_frames=num_frames,
        videos=tuple(v.strip() for v in (videos or "").split(",") if v.strip()),
        limit=limit,
        shards=shards,
        shard_index=shard_index,
    )
    options = InferOptions(
        plan=plan,
        out=out,
        cache_dir=cache_dir,
        engine=engine,
        ray_address=ray_address,
        ray_replicas=ray_replicas,
        concurrency=concurrency,
        batch_size=batch_size,
    )
    if decode_workers is not None:
        options.decode_workers = decode_workers
    with _InferBar() as bar:
        summary = run_infer(dataset, options, progress=bar)
    payload = summary.to_dict()
    if score_after:
        payload["score"] = _score(out, name or spec, dataset, db_path, judge, list(metrics) or None)
    if as_json:
        emit_json(payload)
        return
    _print(payload)


def _score(
    out: Path, model: str, dataset: Any, db_path: Path | None, judge: bool | None, metrics: list[str] | None
) -> dict[str, Any]:
    """Store and score the written file through the same code path as ``ecva score``."""
    from ecva_core.cli.scoring import _Bar, _open_db
    from ecva_core.metrics.text import TEXT_METRICS
    from ecva_core.results.scoring import score_submission

    unknown = [m for m in metrics or () if m not in TEXT_METRICS]
    if unknown:
        raise click.BadParameter(f"unknown text metric(s) {', '.join(unknown)}", param_hint="--metric")
    from ecva_core.views import warm_after_write

    db = _open_db(db_path)
    with _Bar() as bar:
        summary = score_submission(out, model, dataset, db, judge=judge, progress=bar, metrics=metrics, notify=log)
    warm_after_write(db, dataset, model)  # the explorer's first render after this run reads no model again
    return summary


def _print(payload: dict[str, Any]) -> None:
    click.echo(
        f"Wrote {payload['rows']} rows to {payload['out']}: {payload['answered']} answered now, "
        f"{payload['from_cache']} from the cache, {payload['failed']} failed "
        f"({payload['error_rows']} ERROR rows) in {payload['seconds']:.1f} s "
        f"({payload['items_per_s']} items/s)."
    )
    for video, reason in payload["unreadable_videos"].items():
        click.echo(f"video {video}: {reason}")
    for video, reason in payload["probe_skipped"].items():
        click.echo(f"video {video}: no probe row ({reason})")
    if payload["error_rows"]:
        click.echo("ERROR rows are asked again when the same command runs again.")
    score = payload.get("score")
    if score:
        from ecva_core.cli.scoring import _print_summary

        _print_summary(score)


@infer.command("merge")
@click.argument("shard_files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), required=True, help="Merged submission.")
@json_option
def merge(shard_files: tuple[Path, ...], out: Path, as_json: bool) -> None:
    """Join shard files (from --shards/--shard-index) into one submission, as a single run writes it."""
    from ecva_core.infer import merge_shards

    summary = merge_shards(list(shard_files), out)
    if as_json:
        emit_json(summary)
        return
    click.echo(
        f"Merged {summary['shards']} shard files into {summary['out']}: {summary['rows']} rows, "
        f"{summary['errors']} ERROR rows."
    )
