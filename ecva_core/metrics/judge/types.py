"""The judge package's vocabulary, at its bottom: judge names, a prompt, a request and its result.

Like lmms-eval's ``llm_judge/protocol.py`` this module imports nothing from the package: the
prompts and the reply parser build on it, the engine builds on all of them, so no module of the
package imports one above it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ecva_core.metrics.protocol import DEFAULT
from ecva_core.schema import Score, ScoreStatus, Task

CONSISTENCY = "consistency"
LOGIC = "logic"
KEYPHRASE = "keyphrase"
HALLUCINATION = "hallucination"
HALLUCINATION_PAIR = "hallucination_pair"

JUDGES: tuple[str, ...] = (CONSISTENCY, LOGIC, KEYPHRASE, HALLUCINATION, HALLUCINATION_PAIR)


def metric_name(judge: str) -> str:
    """The stored metric name of a judge, e.g. ``judge_consistency``."""
    return f"judge_{judge}"


def usable_answer(output: str) -> bool:
    """Whether an answer can go to a judge: neither empty nor a failed prediction's ``ERROR``."""
    text = output.strip()
    return bool(text) and text.upper() != "ERROR"


@dataclass(frozen=True)
class JudgePrompt:
    """One judge: its prompt version, system prompt, the field holding its score and the range.

    ``reply_format`` is "json" (ours) or "official" (the official ``Score: N`` / key-information
    count lines, parsed with the official patterns).
    """

    name: str
    version: str
    metric: str
    score_field: str
    low: int
    high: int | None  # None: the upper bound is the request's number of key phrases
    system: str
    protocol: str = DEFAULT
    reply_format: str = "json"


@dataclass(frozen=True)
class JudgeRequest:
    """One judge verdict to obtain for one answer (a normal or a probe answer).

    ``question`` is the wording the model was asked (for a probe answer, the probe wording);
    ``normal_answer`` is the same question's answer with every frame (``hallucination_pair`` only);
    ``protocol`` picks our prompts or the official ones (:mod:`ecva_core.metrics.protocol`).
    """

    judge: str
    video_id: str
    task: Task
    question: str
    reference: str
    answer: str
    key_phrases: tuple[str, ...] = ()
    probe: str | None = None
    normal_answer: str = ""
    protocol: str = DEFAULT

    @property
    def metric(self) -> str:
        """The stored metric name, e.g. ``judge_consistency``."""
        return metric_name(self.judge)

    def skip_reason(self) -> str | None:
        """Why this request must not be sent to the judge, or None when it may be."""
        answer = self.answer.strip()
        if not answer:
            return "empty prediction; not sent to the judge"
        if answer.upper() == "ERROR":
            return "failed prediction (ERROR); not sent to the judge"
        if self.judge == KEYPHRASE and not self.key_phrases:
            return "no annotated key phrases; not scored"
        if self.judge in (HALLUCINATION, HALLUCINATION_PAIR) and not self.probe:
            return "the hallucination judge applies to probe answers only"
        if self.judge == HALLUCINATION_PAIR and not usable_answer(self.normal_answer):
            return "no normal answer to compare the probe answer with"
        if self.judge in (CONSISTENCY, LOGIC) and not self.reference.strip():
            return "no reference answer in the annotation; not scored"
        return None


@dataclass(frozen=True)
class JudgeResult:
    """The outcome of one request: a value with status OK, or FAILED / SKIPPED with a reason.

    ``tokens_in``/``tokens_out`` are the tokens the verdict cost when it was made (also for a
    cached verdict, whose cost was paid by an earlier run); ``score`` is the judge's raw integer.
    """

    request: JudgeRequest
    value: float | None
    status: ScoreStatus
    reason: str
    cached: bool = False
    tokens_in: int = 0
    tokens_out: int = 0
    score: int | None = None

    def to_score(self) -> Score:
        r = self.request
        return Score(r.video_id, r.task, r.metric, self.value, self.status, self.reason, r.probe)
