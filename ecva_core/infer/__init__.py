"""Batch inference over the benchmark (``ecva infer``): plan, cache, run, collect.

* ``plan``: the rows (video x task x variant) and the work items behind them;
* ``keys``: the cache key of an answer; ``log``: the append-only, fsynced result log;
* ``prefetch``: frames decoded ahead in worker processes; ``runner``: one model answering items;
* ``probe``: the ranked (caption-and-rank) key-frame procedure; ``output`` and ``merge``: the
  submission file and the joining of shard files; ``engine``: the driver that ties them together.
"""

from ecva_core.infer.engine import ENGINES, InferOptions, InferSummary, run_infer
from ecva_core.infer.items import NORMAL, PROBE, ItemResult, WorkItem
from ecva_core.infer.log import ResultLog, read_results
from ecva_core.infer.merge import merge_shards
from ecva_core.infer.output import build_rows, dump_rows, row_order
from ecva_core.infer.plan import PROBE_MODES, Plan, PlanOptions, build_plan, shard_of
from ecva_core.infer.runner import ItemRunner

__all__ = [
    "ENGINES",
    "NORMAL",
    "PROBE",
    "PROBE_MODES",
    "InferOptions",
    "InferSummary",
    "ItemResult",
    "ItemRunner",
    "Plan",
    "PlanOptions",
    "ResultLog",
    "WorkItem",
    "build_plan",
    "build_rows",
    "dump_rows",
    "merge_shards",
    "read_results",
    "row_order",
    "run_infer",
    "shard_of",
]
