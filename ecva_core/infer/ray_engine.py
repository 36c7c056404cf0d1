"""``ecva infer --engine ray``: the work items on a Ray cluster through Ray Data.

The items travel as packets (one row each) of at most ``batch_size`` items, all items of a video
in one packet where they fit, so a replica decodes a video once and its backend encodes the clip
once for all its questions. ``map_batches`` runs the packets through an actor pool: each actor
loads the model once (by default an :class:`ecva_core.infer.runner.ItemRunner`) and answers a
packet per call; local backends get one replica per GPU (``num_gpus_per_replica=1``), an
``openai:`` model gets CPU actors that call its server. Results stream back to the driver as
packets finish (in no fixed order; each carries its item's key), and the driver alone writes the
result log, so a Ray run and a local run share one cache and each resumes the other.

An item whose answer raises becomes an error result in the actor, never a failed Ray task; a model
that cannot be loaded stops the run with the loader's message. ``ray`` is imported inside the
functions: the rest of the tool does not need it installed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any

from ecva_core.errors import ConfigError, EcvaError, ModelLoadError
from ecva_core.infer.items import ItemResult, WorkItem

log = logging.getLogger(__name__)

Runner = Callable[[list[WorkItem]], list[ItemResult]]
RunnerFactory = Callable[[], Runner]

DEFAULT_CPU_REPLICAS = 2  # server models: each replica already sends a whole packet at once


def import_ray() -> Any:
    """The ``ray`` module, or a :class:`ConfigError` saying how to install it."""
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise ConfigError(f"--engine ray needs Ray Data ({exc}): pip install 'ray[data]' (the version pinned in "
                          "requirements.txt), or use --engine local") from exc
    return ray


def connect(address: str | None, num_cpus: int | None = None) -> None:
    """Join the Ray cluster at ``address`` (``auto``: the one this node belongs to), or start a local one.

    ``None`` starts a Ray instance in this process with ``num_cpus`` CPUs (default: all); an
    instance already started here (``ray.init`` by the caller) is used as it is.
    """
    ray = import_ray()

    if ray.is_initialized():
        return
    try:
        if address is None:
            ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level=logging.WARNING)
        else:
            ray.init(address=address, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = "a local Ray instance" if address is None else f"the Ray cluster at {address!r}"
        raise ConfigError(f"cannot start or join {where}: {exc}. On a cluster, run `ray start --head` on the head "
                          "node and pass --ray-address auto there (or the head's address)") from exc


def pack_by_video(items: Sequence[WorkItem], batch_size: int) -> list[list[WorkItem]]:
    """Packets of at most ``batch_size`` items; a video's items stay together unless they alone exceed it.

    Videos keep their first-seen order; a packet is closed when the next video would not fit.
    """
    size = max(1, batch_size)
    videos: dict[str, list[WorkItem]] = {}
    for item in items:
        videos.setdefault(item.video_id, []).append(item)
    packets: list[list[WorkItem]] = []
    current: list[WorkItem] = []
    for group in videos.values():
        if current and len(current) + len(group) > size:
            packets.append(current)
            current = []
        for start in range(0, len(group), size):
            part = group[start : start + size]
            if current and len(current) + len(part) > size:
                packets.append(current)
                current = []
            current.extend(part)
    if current:
        packets.append(current)
    return packets


def default_replicas(num_gpus_per_replica: float) -> int:
    """One replica per ``num_gpus_per_replica`` GPUs of the cluster, or :data:`DEFAULT_CPU_REPLICAS` CPU actors."""
    ray = import_ray()
    if num_gpus_per_replica <= 0:
        return DEFAULT_CPU_REPLICAS
    gpus = float(ray.cluster_resources().get("GPU", 0.0))
    replicas = int(gpus // num_gpus_per_replica)
    if replicas < 1:
        raise ConfigError(f"the Ray cluster has {gpus:g} GPUs, fewer than the {num_gpus_per_replica:g} one model "
                          "replica needs; add GPU nodes, or run a local backend with --engine local on this machine")
    return replicas


def _item_runner(spec: str, model_options: dict[str, Any], generation: dict[str, Any], batch_size: int) -> Runner:
    from ecva_core.infer.runner import ItemRunner

    return ItemRunner(spec, model_options, generation, batch_size=batch_size)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class ReplicaActor:
    """One model replica in the actor pool: built once per actor, then one packet per call.

    A packet that raises is answered again item by item, so only the items that fail themselves
    become error results. A runner that cannot be built (the model does not load) makes every
    call return the loader's message as a ``fatal`` row, on which the driver stops the run.
    """

    def __init__(self, runner_factory: RunnerFactory) -> None:
        self.fatal: str | None = None
        self.runner: Runner | None = None
        try:
            self.runner = runner_factory()
        except EcvaError as exc:
            self.fatal = str(exc)

    def answer(self, runner: Runner, items: list[WorkItem]) -> list[ItemResult]:
        try:
            return runner(items)
        except Exception as exc:  # a whole packet failed: find out which items fail on their own
            if len(items) == 1:
                return [ItemResult.failure(items[0], _describe(exc))]
            log.warning("a packet of %d items failed (%s); answering them one by one", len(items), _describe(exc))
            return [result for item in items for result in self.answer(runner, [item])]

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[str]]:
        if self.runner is None:
            return {"result": [json.dumps({"fatal": self.fatal})]}
        out: list[str] = []
        for packet in batch["packet"]:
            items = [WorkItem.from_dict(data) for data in json.loads(str(packet))]
            out += [json.dumps(result.to_dict()) for result in self.answer(self.runner, items)]
        return {"result": out}


def run_on_ray(
    items: list[WorkItem],
    spec: str,
    model_options: dict[str, Any],
    generation: dict[str, Any],
    *,
    address: str | None,
    replicas: int | None,
    batch_size: int,
    num_gpus_per_replica: float,
    runner_factory: RunnerFactory | None = None,
) -> Iterator[ItemResult]:
    """Answer ``items`` on Ray; yields one :class:`ItemResult` per item as packets finish.

    ``address``: see :func:`connect`; ``replicas``: actors in the pool (default
    :func:`default_replicas`); ``batch_size``: items per actor call; ``num_gpus_per_replica``: 1
    for local backends on GPUs, 0 for CPU actors (``openai:``). ``runner_factory`` builds each
    actor's runner (default: ``ItemRunner(spec, model_options, generation, batch_size=batch_size)``);
    it is pickled to the actors. Raises :class:`ModelLoadError` when the model cannot be loaded.
    """
    if not items:
        return
    ray = import_ray()
    connect(address)
    factory = runner_factory or partial(_item_runner, spec, dict(model_options), dict(generation), batch_size)
    pool = replicas if replicas is not None else default_replicas(num_gpus_per_replica)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the driver shows its own progress
    packets = [json.dumps([item.to_dict() for item in packet]) for packet in pack_by_video(items, batch_size)]
    dataset = ray.data.from_items([{"packet": packet} for packet in packets], override_num_blocks=len(packets))
    answered = dataset.map_batches(
        ReplicaActor,
        fn_constructor_kwargs={"runner_factory": factory},
        batch_size=1,
        batch_format="numpy",
        concurrency=max(1, int(pool)),
        num_gpus=num_gpus_per_replica,
    )
    try:
        for row in answered.iter_rows():
            data = json.loads(row["result"])
            if "fatal" in data:
                raise ModelLoadError(data["fatal"])
            yield ItemResult.from_dict(data)
    except ray.exceptions.RayError as exc:  # an actor killed by the OS, a lost node: Ray's own failures
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EcvaError(
            f"the Ray run stopped: {first_line}. What was answered is in the result cache: run the same "
            "command again to carry on (or with --engine local)"
        ) from None
