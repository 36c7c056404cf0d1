"""A chat session without any UI: hold the chat model, and score an answer against the expert annotation.

Kept out of ``ecva_apps`` so the Gradio app stays a thin layer and this logic is tested directly;
browsing the dataset (clips, categories, annotations) is :mod:`ecva_core.dataset.browse`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ecva_core.errors import EcvaError, ModelLoadError
from ecva_core.metrics.measures import CHAT_TEXT_METRICS
from ecva_core.schema import Task

if TYPE_CHECKING:
    from ecva_core.config import Settings
    from ecva_core.dataset import Dataset
    from ecva_core.models.base import ChatModel

NO_MODEL_HELP = (
    "No chat model is configured. Pick one in the model box, e.g. `openai:MODEL@http://host:8000/v1` "
    "(vLLM, SGLang, Ollama or a hosted API; key from OPENAI_API_KEY), `hf:default` (SmolVLM2-500M-Video-Instruct) "
    "or `anomshield:/path/to/checkpoint`, or start with `ecva serve chat --model SPEC` / set ECVA_CHAT_MODEL."
)


@dataclass
class AnswerScore:
    """An answer's scores against the expert answer; the judge part says why it is absent."""

    video_id: str
    task: Task
    reference: str
    metrics: dict[str, float | None] = field(default_factory=dict)
    judge: dict[str, dict[str, Any]] = field(default_factory=dict)
    judge_status: str = "no judge configured"

    def as_dict(self) -> dict[str, Any]:
        return {
            "video_id": self.video_id,
            "task": self.task.value,
            "metrics": self.metrics,
            "judge": self.judge,
            "judge_status": self.judge_status,
        }


def score_answer(
    answer: str,
    dataset: Dataset,
    video_id: str,
    task: Task,
    settings: Settings | None = None,
    use_judge: bool | None = None,
) -> AnswerScore:
    """Text metrics always; the AnomEval judges when a judge is configured (or ``use_judge``)."""
    from ecva_core.config import get_settings

    settings = settings or get_settings()
    result = text_scores(answer, dataset, video_id, task, settings)
    if settings.judge_wanted(use_judge):
        judge_answer(result, answer, dataset, settings)
    return result


def text_scores(answer: str, dataset: Dataset, video_id: str, task: Task, settings: Settings) -> AnswerScore:
    """The text metrics of an answer against the expert answer; they never wait on the judge."""
    from ecva_core.metrics.text import available_metrics, score_text

    item = dataset.qa_item(video_id, task)
    if item is None:
        raise EcvaError(f"video {video_id} has no expert {task.facet} answer to score against")
    if not answer.strip():
        raise EcvaError("there is no answer to score yet; ask a question first")
    usable = [m for m in CHAT_TEXT_METRICS if m in available_metrics(settings)]
    values = score_text([item.answer], [answer], metrics=usable, reference_key=dataset.fingerprint, settings=settings)
    return AnswerScore(video_id, task, item.answer, {name: vals[0] for name, vals in values.items()})


def judge_answer(result: AnswerScore, answer: str, dataset: Dataset, settings: Settings) -> AnswerScore:
    """Add the AnomEval verdicts to ``result``; an unreachable judge is one status, not one wait per judge."""
    from ecva_core.config import JUDGE_SETUP_HELP

    if not settings.judge_usable:
        result.judge_status = f"no judge configured: {JUDGE_SETUP_HELP}"
        return result
    from ecva_core.metrics.judge import JudgeCache, requests_for, run_judges
    from ecva_core.schema import Prediction

    item = dataset.qa_item(result.video_id, result.task)
    requests = requests_for([Prediction(result.video_id, result.task, answer)], [item] if item else [])
    with JudgeCache(settings.db_path) as cache:  # the scoring pipeline's requests, engine and cache
        run = run_judges(requests, settings, cache)
    for outcome in run.results:
        result.judge[outcome.request.metric] = {
            "value": outcome.value,
            "status": outcome.status.value,
            "reason": outcome.reason,
        }
    result.judge_status = run.unreachable or f"judged by {settings.judge_model}"
    return result


class ModelSlot:
    """Holds the one chat model the app uses; loading is serialised and its error kept for display."""

    def __init__(self, spec: str | None = None, options: Mapping[str, Any] | None = None) -> None:
        self.spec = spec
        self.options = dict(options or {})
        self.error: str | None = None if spec else NO_MODEL_HELP
        self._model: ChatModel | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def fast_decode_problem(self) -> str | None:
        """Why the loaded model answers without the fast decoder it was asked for, if it does."""
        return getattr(self._model, "decoder_error", None)

    def get(self, spec: str | None = None) -> ChatModel:
        """The model for ``spec`` (default: the current one), loading it on first use."""
        from ecva_core.models import load_model

        spec = (spec or self.spec or "").strip()
        if not spec:
            raise ModelLoadError(NO_MODEL_HELP)
        with self._lock:
            if self._model is not None and spec == self.spec:
                return self._model
            try:
                model = load_model(spec, **self.options)
            except ModelLoadError as exc:
                self.spec, self._model, self.error = spec, None, str(exc)
                raise
            self.spec, self._model, self.error = spec, model, None
            return model
