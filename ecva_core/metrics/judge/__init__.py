"""The AnomEval judge: five LLM judges behind one cached, bounded, retrying engine.

Stored metric names: ``judge_consistency`` (0/1), ``judge_logic`` (0-5), ``judge_keyphrase``
(matched share of the key phrases, in [0, 1]), ``judge_hallucination`` (0/1, probe answers only;
1 = the model abstained) and ``judge_hallucination_pair`` (0/1, probe answers with a normal answer
to compare with; 1 = no hallucinated anomaly content). Under the official protocol the first four
use the official prompts (:mod:`ecva_core.metrics.protocol`).
"""

from ecva_core.metrics.judge.cache import JudgeCache
from ecva_core.metrics.judge.client import RetryPolicy
from ecva_core.metrics.judge.engine import (
    JudgePlan,
    JudgeRequest,
    JudgeResult,
    JudgeRun,
    plan_judges,
    requests_for,
    run_judges,
    run_judges_async,
)
from ecva_core.metrics.judge.prompts import JUDGES, METRIC_NAMES, PROMPTS

__all__ = [
    "JUDGES",
    "METRIC_NAMES",
    "PROMPTS",
    "JudgeCache",
    "JudgePlan",
    "JudgeRequest",
    "JudgeResult",
    "JudgeRun",
    "RetryPolicy",
    "plan_judges",
    "requests_for",
    "run_judges",
    "run_judges_async",
]
