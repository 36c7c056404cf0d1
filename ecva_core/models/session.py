"""What the chat app does, without any UI: find clips, hold a model, ask the benchmark's questions,
and score an answer against the expert annotation.

Kept out of ``ecva_apps`` so the Gradio app stays a thin layer and this logic is tested directly.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ecva_core.errors import EcvaError, ModelLoadError
from ecva_core.metrics.measures import CHAT_TEXT_METRICS
from ecva_core.schema import SCORED_TASKS, Segment, Task

if TYPE_CHECKING:
    from ecva_core.config import Settings
    from ecva_core.dataset import Dataset
    from ecva_core.models.base import ChatModel

NO_MODEL_HELP = (
    "No chat model is configured. Pick one in the model box, e.g. `openai:MODEL@http://host:8000/v1` "
    "(vLLM, SGLang, Ollama or a hosted API; key from OPENAI_API_KEY), `hf:default` (SmolVLM2-500M-Video-Instruct) "
    "or `anomshield:/path/to/checkpoint`, or start with `ecva serve chat --model SPEC` / set ECVA_CHAT_MODEL."
)


@dataclass(frozen=True)
class ClipEntry:
    """One clip as the picker lists it."""

    video_id: str
    label: str
    category: str
    has_video: bool


def _category_label(record: Any) -> str:
    from ecva_core.taxonomy import category_name

    category = record.annotation.category
    return category_name(category) if category is not None else "unknown category"


def find_clips(dataset: Dataset, query: str = "", category: str | None = None, limit: int = 500) -> list[ClipEntry]:
    """Clips whose id, category or expert text contains ``query``, optionally in one major category."""
    needle = query.strip().lower()
    entries: list[ClipEntry] = []
    for video_id, record in dataset.records.items():
        if not record.usable:
            continue
        label = _category_label(record)
        if category and not label.lower().startswith(category.lower()):
            continue
        annotation = record.annotation
        haystack = " ".join([video_id, label, annotation.description, annotation.reason, annotation.result]).lower()
        if needle and needle not in haystack:
            continue
        entries.append(ClipEntry(video_id, f"{video_id} · {label}", label, dataset.video_path(video_id) is not None))
        if len(entries) >= limit:
            break
    return entries


def clip_categories(dataset: Dataset) -> list[str]:
    """Major category names present in the dataset, for the picker's filter."""
    from ecva_core.taxonomy import major_name

    majors = {r.annotation.category.major for r in dataset.records.values() if r.annotation.category}
    return [f"{major}. {major_name(major)}" for major in sorted(majors)]


def format_moment(segment: Segment) -> str:
    def clock(seconds: float) -> str:
        return f"{int(seconds) // 60}:{int(seconds) % 60:02d}"

    return f"{clock(segment.start)}–{clock(segment.end)}"


@dataclass(frozen=True)
class AnnotationView:
    """The expert annotation of one clip, ready to show."""

    video_id: str
    category: str
    moments: list[str]
    what: str
    why: str
    how: str
    key_phrases: list[str]
    flags: list[str]
    first_moment_s: float | None


def annotation_view(dataset: Dataset, video_id: str) -> AnnotationView:
    record = dataset.records.get(video_id)
    if record is None:
        raise EcvaError(f"video {video_id!r} is not in the dataset {dataset.name}")
    annotation = record.annotation
    return AnnotationView(
        video_id=video_id,
        category=_category_label(record),
        moments=[format_moment(m) for m in annotation.moments],
        what=annotation.description,
        why=annotation.reason,
        how=annotation.result,
        key_phrases=list(annotation.key_phrases),
        flags=[f"{f.field}: {f.problem}" for f in record.flags],
        first_moment_s=annotation.moments[0].start if annotation.moments else None,
    )


def benchmark_question(task: Task) -> str:
    """The benchmark's own question text for a What / Why / How button."""
    from ecva_core.dataset.questions import question_for

    return question_for(task)


def task_for_facet(facet: str) -> Task:
    """``"What"`` -> Description, ``"Why"`` -> Cause, ``"How"`` -> Result."""
    for task in SCORED_TASKS:
        if task.facet.lower() == facet.strip().lower():
            return task
    return Task.parse(facet)


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
    run = run_judges(requests, settings, JudgeCache(settings.db_path))
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


def resolve_video(dataset: Dataset, video_id: str) -> Path:
    """The clip file for a dataset id, with a message that says what to do when it is absent."""
    path = dataset.video_path(video_id)
    if path is None:
        raise EcvaError(
            f"the video file for {video_id} is not on disk; download it with "
            "`ecva data download --include videos` or upload the clip instead"
        )
    return path
