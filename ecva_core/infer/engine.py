"""Plan, execute, collect: the driver of ``ecva infer``.

The driver plans the rows, replays the result log, hands the items without a successful answer
to an engine (``local``: decode workers feeding one model in this process; ``ray``: an actor pool
on a Ray cluster), appends every result to this process's log as it arrives, and finally
rebuilds the submission from the log. Killed at any moment, the same command resumes; run again
when finished, it asks the model nothing.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ecva_core.errors import ConfigError
from ecva_core.infer.items import ItemResult, WorkItem
from ecva_core.infer.keys import StatCache, default_cache_dir
from ecva_core.infer.log import ResultLog, read_results
from ecva_core.infer.output import ERROR_OUTPUT, build_rows, write_rows
from ecva_core.infer.plan import Plan, PlanOptions, build_plan
from ecva_core.infer.prefetch import Prefetcher, decode_pool, group_by_video
from ecva_core.infer.runner import ItemRunner

if TYPE_CHECKING:
    from ecva_core.config import Settings
    from ecva_core.dataset import Dataset

ENGINES = ("local", "ray")
DEFAULT_CONCURRENCY = 32
DEFAULT_BATCH_SIZE = 8
# Batches a server model has in flight at once (the next is sent while the last one finishes).
SERVER_BATCHES_IN_FLIGHT = 2

Progress = Callable[[int, int, int, int], None]
"""``progress(done, total, failed, from_cache)`` after each batch of results."""


def default_decode_workers() -> int:
    """Decode processes: the cores this process may use, at most 4 (the model needs the rest)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


@dataclass
class InferOptions:
    """A whole run: the plan, where results go, and how the items are executed."""

    plan: PlanOptions
    out: Path
    cache_dir: Path | None = None
    engine: str = "local"
    ray_address: str | None = None
    ray_replicas: int | None = None
    concurrency: int = DEFAULT_CONCURRENCY
    batch_size: int = DEFAULT_BATCH_SIZE
    decode_workers: int = field(default_factory=default_decode_workers)
    frame_backend: str | None = None
    judge_settings: Settings | None = None

    @property
    def is_server(self) -> bool:
        return self.plan.spec.strip().startswith("openai:")

    def model_options(self) -> dict[str, Any]:
        """Loader options: an ``openai:`` model gets the concurrency bound and retries with backoff,
        a local model its questions per forward pass."""
        options = dict(self.plan.model_options)
        if self.is_server:
            options.setdefault("max_concurrency", self.concurrency)
            options.setdefault("max_retries", 5)
        else:
            options.setdefault("max_batch_size", self.batch_size)
        return options

    @property
    def requests_per_batch(self) -> int:
        return max(1, self.concurrency if self.is_server else self.batch_size)


@dataclass
class InferSummary:
    """What a run did; ``to_dict`` is what ``ecva infer --json`` prints."""

    out: Path
    cache_dir: Path
    model: str
    probe: str
    rows: int = 0
    planned: int = 0
    from_cache: int = 0
    answered: int = 0
    failed: int = 0
    error_rows: int = 0
    model_calls: int = 0
    unreadable_videos: dict[str, str] = field(default_factory=dict)
    probe_skipped: dict[str, str] = field(default_factory=dict)
    videos: int = 0
    num_frames: int = 0
    seconds: float = 0.0
    engine: str = "local"
    shard: str = ""

    def to_dict(self) -> dict[str, Any]:
        ran = self.answered + self.failed
        return {
            "out": str(self.out),
            "cache_dir": str(self.cache_dir),
            "model": self.model,
            "probe": self.probe,
            "engine": self.engine,
            "shard": self.shard or None,
            "videos": self.videos,
            "num_frames": self.num_frames,
            "rows": self.rows,
            "planned": self.planned,
            "answered": self.answered,
            "from_cache": self.from_cache,
            "failed": self.failed,
            "error_rows": self.error_rows,
            "model_calls": self.model_calls,
            "seconds": round(self.seconds, 3),
            "items_per_s": round(ran / self.seconds, 2) if self.seconds > 0 and ran else 0.0,
            "unreadable_videos": self.unreadable_videos,
            "probe_skipped": self.probe_skipped,
        }


def run_local(
    pending: Sequence[WorkItem],
    runner: ItemRunner,
    log: ResultLog,
    options: InferOptions,
    on_results: Callable[[list[ItemResult]], None],
    pool: Executor | None = None,
) -> None:
    """Decode ahead in the worker ``pool``, answer ``requests_per_batch`` items at a time, log each batch.

    For a server model the next batch is sent while the previous one is still answered, so the
    ``concurrency`` slots never drain at a batch boundary; a local model answers one batch at a time.
    """
    groups = group_by_video(pending)
    per_video = max(1, math.ceil(len(pending) / max(1, len(groups))))
    overlap = SERVER_BATCHES_IN_FLIGHT if options.is_server else 1
    ahead = overlap * math.ceil(options.requests_per_batch / per_video) + 2 * max(1, options.decode_workers)
    in_flight: deque[Future[list[ItemResult]]] = deque()

    def answer_and_log(buffer: list[Any]) -> list[ItemResult]:
        results = runner.answer(buffer)
        log.append(results)  # durable before the batch counts as done; off the loop that feeds the model
        return results

    def collect(future: Future[list[ItemResult]]) -> None:
        on_results(future.result())

    with ThreadPoolExecutor(max_workers=overlap, thread_name_prefix="infer-batch") as batches:
        buffer: list[Any] = []
        waiting = 0
        for group, decoded in Prefetcher(groups, pool, ahead, options.frame_backend, runner.codec):
            buffer.append((group, decoded))
            waiting += len(group)
            if waiting >= options.requests_per_batch:
                in_flight.append(batches.submit(answer_and_log, buffer))
                buffer, waiting = [], 0
                while len(in_flight) >= overlap:
                    collect(in_flight.popleft())
        if buffer:
            in_flight.append(batches.submit(answer_and_log, buffer))
        while in_flight:
            collect(in_flight.popleft())


def run_ray(
    pending: Sequence[WorkItem], log: ResultLog, options: InferOptions, on_results: Callable[[list[ItemResult]], None]
) -> None:
    """The same items on a Ray cluster (``ecva_core.infer.ray_engine``); results logged here as they come."""
    from ecva_core.infer.ray_engine import run_on_ray

    gpus = 0.0 if options.is_server else 1.0
    for result in run_on_ray(
        list(pending),
        options.plan.spec,
        options.model_options(),
        options.plan.generation,
        address=options.ray_address,
        replicas=options.ray_replicas,
        batch_size=options.requests_per_batch,
        num_gpus_per_replica=gpus,
    ):
        log.append([result])
        on_results([result])


def run_infer(dataset: Dataset, options: InferOptions, progress: Progress | None = None) -> InferSummary:
    """Plan, run what the log lacks, write ``options.out``; returns the summary."""
    from ecva_core.config import get_settings

    if options.engine not in ENGINES:
        raise ConfigError(f"--engine must be one of {', '.join(ENGINES)}, not {options.engine!r}")
    plan_options = options.plan
    if plan_options.shards < 1 or not 0 <= plan_options.shard_index < plan_options.shards:
        raise ConfigError(f"--shard-index must be in 0..{plan_options.shards - 1} for --shards {plan_options.shards}")
    settings = options.judge_settings or get_settings()
    if plan_options.probe == "ranked" and not settings.judge_configured:
        raise ConfigError(
            "--probe ranked asks the judge endpoint to rank chunk captions, but no judge is "
            "configured: set ECVA_JUDGE_BASE_URL and/or ECVA_JUDGE_API_KEY, or use --probe annotated"
        )
    start = time.perf_counter()
    cache_dir = options.cache_dir or default_cache_dir()
    stat_cache = StatCache(cache_dir / "files.jsonl")
    with decode_pool(options.decode_workers) or contextlib.nullcontext() as pool:
        summary = _run(dataset, options, settings, cache_dir, stat_cache, pool, progress)
    summary.seconds = time.perf_counter() - start
    return summary


def _run(
    dataset: Dataset,
    options: InferOptions,
    settings: Settings,
    cache_dir: Path,
    stat_cache: StatCache,
    pool: Executor | None,
    progress: Progress | None,
) -> InferSummary:
    plan_options = options.plan
    plan = build_plan(dataset, plan_options, stat_cache, pool=pool, judge_model=settings.judge_model)
    known = read_results(cache_dir)
    pending = [item for item in plan.items if not (item.key in known and known[item.key].ok)]
    summary = InferSummary(
        options.out,
        cache_dir,
        plan_options.spec,
        plan_options.probe,
        planned=len(plan.items),
        from_cache=len(plan.items) - len(pending),
        probe_skipped=plan.probe_skipped,
        videos=plan.videos,
        num_frames=plan.num_frames,
        engine=options.engine,
        shard=(f"{plan_options.shard_index}/{plan_options.shards}" if plan_options.shards > 1 else ""),
    )
    done = summary.from_cache

    def on_results(results: list[ItemResult]) -> None:
        nonlocal done
        for result in results:
            previous = known.get(result.key)
            if previous is None or not previous.ok:
                known[result.key] = result
            summary.answered += result.ok
            summary.failed += not result.ok
        done += len(results)
        if progress:
            progress(done, len(plan.items), summary.failed, summary.from_cache)

    if progress:
        progress(done, len(plan.items), 0, summary.from_cache)
    if pending:
        with ResultLog(cache_dir) as log:
            if options.engine == "ray":
                run_ray(pending, log, options, on_results)
            else:
                runner = ItemRunner(
                    plan_options.spec,
                    options.model_options(),
                    plan_options.generation,
                    batch_size=options.requests_per_batch,
                    frame_backend=options.frame_backend,
                    judge_settings=settings,
                )
                run_local(pending, runner, log, options, on_results, pool)
                summary.model_calls = runner.model_calls
    _finish(summary, plan, known, options)
    return summary


def _finish(summary: InferSummary, plan: Plan, known: dict[str, ItemResult], options: InferOptions) -> None:
    rows = build_rows(plan, known, options.plan.spec)
    write_rows(options.out, rows)
    summary.rows = len(rows)
    summary.error_rows = sum(1 for r in rows if r["output"] == ERROR_OUTPUT)
    summary.unreadable_videos = {r.video_id: r.reason for r in plan.rows if r.reason}
