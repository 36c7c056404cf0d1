"""The scoring pipeline: validate -> store atomically -> text metrics -> judge -> summary.

Scores are written batch by batch as they are computed, and each step only computes what the
database does not hold yet, so a run killed mid-way resumes where it stopped and re-scoring an
already scored file does no work (judge verdicts also come back from the judge cache).
Failed predictions (``ERROR``, empty) are stored as failures, never as scores, and never reach
the judge.

Judge scores are kept per judge model and prompt version: re-scoring a stored file with another
judge model or protocol judges its stored answers again (predictions and text metrics stay as they
are), and switching back to a judge that already scored them only makes its verdicts the latest
again. The prompt version stored with each judge score names the protocol that made it
(:mod:`ecva_core.metrics.protocol`); the official protocol's BLEU/ROUGE have their own names.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ecva_core.config import JUDGE_SETUP_HELP, Settings, get_settings
from ecva_core.errors import ConfigError
from ecva_core.metrics.measures import counted, measures_present
from ecva_core.metrics.protocol import (
    ABSTENTION,
    DEFAULT,
    OFFICIAL,
    OFFICIAL_JUDGE_MODEL,
    check_protocol,
    protocol_of,
)
from ecva_core.results.db import ResultsDB, ScoreRow, StoredPrediction
from ecva_core.results.submission import SubmissionRejected, read_submission
from ecva_core.schema import (
    SCORED_TASKS,
    Prediction,
    PredictionStatus,
    QAItem,
    ScoreStatus,
    Task,
)

if TYPE_CHECKING:

    from ecva_core.dataset import Dataset
    from ecva_core.metrics.judge import JudgePlan, JudgeRequest
    from ecva_core.results.submission import SubmissionReport

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``; stages: "validate", "text", "auxiliary", "judge"."""


Notify = Callable[[str], None]
"""``notify(message)``: a one-line note for the person running the score (e.g. a re-judge)."""


TEXT_BATCH = 256


JUDGE_BATCH = 512


NO_JUDGE = "no judge configured"


def submission_key(file_hash: str, task: Task | None, probe: str | None, dataset_fingerprint: str) -> str:
    """What makes two submissions the same: the bytes, how they were read, and the ground truth."""
    parts = [file_hash, task.value if task else "", probe or "", dataset_fingerprint]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def submission_key_of(report: SubmissionReport) -> str:
    """The key of a validated report: its file hash, how it was read and the dataset it was joined to."""
    return submission_key(report.file_hash, report.file_task, report.file_probe, report.dataset_fingerprint)


def already_scored(db: ResultsDB, report: SubmissionReport) -> dict[str, Any] | None:
    """The stored submission (under any model) that this validated report already is, or None.

    The one rule for "already scored", used by ``ecva score`` and the explorer's Submit page: the same
    bytes read the same way (task, probe) against the same ground truth.
    """
    return db.submission_with_key(submission_key_of(report))


def judge_plan(report: SubmissionReport, dataset: Dataset, settings: Settings, db: ResultsDB) -> JudgePlan:
    """What judging this submission would cost (calls after the cache, tokens, money), before it runs."""
    from ecva_core.metrics.judge import plan_judges, requests_for

    requests = requests_for(report.predictions, dataset.qa_items(SCORED_TASKS))
    with db.judge_cache() as cache:
        return plan_judges(requests, settings, cache)


def score_submission(
    path: Path | str,
    model: str,
    dataset: Dataset,
    db: ResultsDB,
    task: Task | str | None = None,
    probe: str | None = None,
    judge: bool | None = None,
    progress: Progress | None = None,
    *,
    metrics: Sequence[str] | None = None,
    settings: Settings | None = None,
    notify: Notify | None = None,
    protocol: str = DEFAULT,
) -> dict[str, Any]:
    """Validate, store and score one submission file for ``model``; return the summary dict.

    ``judge=None`` runs the AnomEval judge when one is configured; ``metrics`` restricts the text
    metrics (default: every metric available with these settings and ``protocol``). A stored file
    judged before by another judge model or protocol is judged again (``notify`` hears about it).
    ``protocol="official"`` judges with the official judge model and prompts and adds the official
    BLEU/ROUGE (:mod:`ecva_core.metrics.protocol`). The model name and the judge setup are checked
    before the file is read.
    """
    settings = settings or get_settings()
    _judge_setup(settings, judge, protocol)
    model = db.storable_model_name(model)
    task = Task.parse(task) if isinstance(task, str) else task
    report = read_submission(path, dataset, task=task, probe=probe, max_mb=settings.max_submission_mb)
    return score_report(
        report, model, dataset, db, judge, progress, metrics=metrics, settings=settings, notify=notify,
        protocol=protocol,
    )


def score_report(
    report: SubmissionReport,
    model: str,
    dataset: Dataset,
    db: ResultsDB,
    judge: bool | None = None,
    progress: Progress | None = None,
    *,
    metrics: Sequence[str] | None = None,
    settings: Settings | None = None,
    notify: Notify | None = None,
    protocol: str = DEFAULT,
    file_name: str | None = None,
) -> dict[str, Any]:
    """Store and score a submission already validated against ``dataset`` (as :func:`score_submission`).

    The explorer validates an upload once and passes its report here, so the file is not read,
    validated or hashed again; ``file_name`` is the name stored with it (default: the report's file).
    """
    if not report.ok:
        raise SubmissionRejected(report.path, report.errors)
    if report.dataset_fingerprint != dataset.fingerprint:
        raise ValueError("the report was validated against another dataset than the one given")
    settings, use_judge = _judge_setup(settings or get_settings(), judge, protocol, notify)
    model = db.storable_model_name(model)
    if progress:
        progress("validate", 1, 1)
    previous = already_scored(db, report)
    if previous is not None and previous["model"] != model and notify:
        notify(f"this file was already scored as model {previous['model']} ({previous['created']}); "
               f"storing it again as {model}")
    submission_id, is_new = db.add_submission(
        model,
        report.predictions,
        key=submission_key_of(report),
        file_name=file_name or report.path.name,
        file_hash=report.file_hash,
        coverage=report.coverage,
        problems=[p.to_dict() for p in report.warnings[:200]],
        dataset=dataset.name,
        dataset_fingerprint=dataset.fingerprint,
    )
    run_id = db.start_run(submission_id)
    counts: dict[str, Any] = {}
    try:
        names = list(metrics) if metrics is not None else None
        counts["text_scores_written"] = _score_text(db, submission_id, dataset, settings, names, progress, protocol)
        counts["auxiliary_scores_written"] = _score_auxiliary(db, submission_id, dataset, progress)
        judge_summary = (
            _score_judge(db, submission_id, dataset, settings, progress, notify, model=model, protocol=protocol)
            if use_judge
            else None
        )
    except BaseException:
        db.finish_run(run_id, "failed", counts)
        raise
    if judge_summary is not None:
        counts["judge"] = judge_summary
    db.finish_run(run_id, "done", counts)
    summary = summarise(db, submission_id)
    summary.update(
        model=model,
        submission_id=submission_id,
        file=str(report.path),
        resubmitted=not is_new,
        coverage=report.coverage,
        warnings=len(report.warnings),
        problems=[p.to_dict() for p in report.warnings[:20]],
        written=counts,
        protocol=protocol,
    )
    summary["judge"] = _judge_status(use_judge, settings, judge_summary)
    return summary


def _judge_setup(
    settings: Settings, judge: bool | None, protocol: str, notify: Notify | None = None
) -> tuple[Settings, bool]:
    """The settings the protocol scores with and whether the judge runs; ConfigError when it is asked
    for and none is configured, or (official protocol) when the official prompts cannot be read."""
    check_protocol(protocol)
    use_judge = settings.judge_wanted(judge)
    if use_judge and not settings.judge_usable:
        raise ConfigError(f"the judge was requested but none is configured: {JUDGE_SETUP_HELP}; "
                          "or score with --no-judge")
    if protocol == OFFICIAL:
        settings = dataclasses.replace(settings, judge_model=_official_judge_model(use_judge, notify))
    return settings, use_judge


def _judge_status(use_judge: bool, settings: Settings, run: dict[str, Any] | None) -> dict[str, Any]:
    if not use_judge:
        return {"status": "disabled (--no-judge)" if settings.judge_configured else NO_JUDGE}
    status = (run or {}).get("unreachable") or "ok"
    return {"status": status, **(run or {}), "model": settings.judge_model}


def _items(dataset: Dataset, preds: Sequence[StoredPrediction]) -> dict[tuple[str, str], QAItem]:
    tasks = tuple(sorted({Task(p.task) for p in preds}, key=list(Task).index))
    subclips = any("-" in p.video_id for p in preds)
    return {(item.video_id, item.task.value): item for item in dataset.qa_items(tasks, include_subclips=subclips)}


_FAILURE_REASONS = {
    PredictionStatus.ERROR.value: "the model's inference failed (ERROR row)",
    PredictionStatus.EMPTY.value: "empty answer",
}


def _failure_reason(pred: StoredPrediction) -> str:
    return _FAILURE_REASONS.get(pred.status, f"prediction is {pred.status}")


def _score_text(
    db: ResultsDB,
    submission_id: int,
    dataset: Dataset,
    settings: Settings,
    metrics: Sequence[str] | None,
    progress: Progress | None,
    protocol: str = DEFAULT,
) -> int:
    """Text metrics for every scored-task prediction still missing one; written per batch."""
    from ecva_core.metrics.text import available_metrics, score_text

    names = list(metrics) if metrics is not None else available_metrics(settings, protocol)
    preds = [p for p in db.stored_predictions(submission_id) if Task(p.task) in SCORED_TASKS]
    done = db.scored_metrics(submission_id)
    todo = [p for p in preds if set(names) - done.get(p.id, set())]
    items = _items(dataset, todo)
    written = 0
    if progress:
        progress("text", 0, len(todo))
    for start in range(0, len(todo), TEXT_BATCH):
        batch = todo[start : start + TEXT_BATCH]
        rows: list[ScoreRow] = []
        scorable: list[tuple[StoredPrediction, QAItem]] = []
        for pred in batch:
            item = items.get((pred.video_id, pred.task))
            if pred.status != PredictionStatus.OK.value:
                rows += [ScoreRow(pred.id, m, None, ScoreStatus.FAILED.value, _failure_reason(pred)) for m in names]
            elif item is None or not item.answer.strip():
                rows += [
                    ScoreRow(pred.id, m, None, ScoreStatus.SKIPPED.value, "no reference answer in the annotation")
                    for m in names
                ]
            else:
                scorable.append((pred, item))
        if scorable:
            values = score_text(
                [item.answer for _, item in scorable],
                [pred.output for pred, _ in scorable],
                metrics=names,
                reference_key=dataset.fingerprint,
                settings=settings,
            )
            for index, (pred, _) in enumerate(scorable):
                for metric in names:
                    value = values[metric][index]
                    if value is None:
                        rows.append(ScoreRow(pred.id, metric, None, ScoreStatus.SKIPPED.value, "metric unavailable"))
                    else:
                        rows.append(ScoreRow(pred.id, metric, float(value), ScoreStatus.OK.value))
        written += db.write_scores(rows)
        if progress:
            progress("text", start + len(batch), len(todo))
    return written


def _score_auxiliary(db: ResultsDB, submission_id: int, dataset: Dataset, progress: Progress | None) -> int:
    """Classification and timestamp answers, scored against the annotated category and moments."""
    preds = [p for p in db.stored_predictions(submission_id) if Task(p.task) not in SCORED_TASKS]
    done = db.scored_metrics(submission_id)
    todo = [p for p in preds if not done.get(p.id)]
    if not todo:
        return 0
    from ecva_core.metrics import auxiliary

    if progress:
        progress("auxiliary", 0, len(todo))
    rows: list[ScoreRow] = []
    for pred in todo:
        record = dataset.records.get(pred.video_id)
        task = Task(pred.task)
        names = auxiliary.CLASSIFICATION_METRICS if task is Task.CLASSIFICATION else auxiliary.TIMESTAMP_METRICS
        if pred.status != PredictionStatus.OK.value:
            rows += [ScoreRow(pred.id, m, None, ScoreStatus.FAILED.value, _failure_reason(pred)) for m in names]
        elif record is None:
            rows += [ScoreRow(pred.id, m, None, ScoreStatus.SKIPPED.value, "video not in the dataset") for m in names]
        else:
            prediction = Prediction(pred.video_id, task, pred.output, pred.prompt, pred.probe or None)
            for score in auxiliary.score_auxiliary(prediction, record.annotation, record.duration):
                rows.append(ScoreRow(pred.id, score.metric, score.value, str(score.status), score.reason))
    written = db.write_scores(rows)
    if progress:
        progress("auxiliary", len(todo), len(todo))
    return written


def _official_judge_model(use_judge: bool, notify: Notify | None) -> str:
    """The official protocol's judge model. Judging reads the official prompts from the user's checkout
    first, so a missing checkout or prompt fails before anything is stored or sent; the checkout's
    ``MODEL_TYPE``, when it names one, is the judge model (``notify`` hears when it is not the published one)."""
    if not use_judge:
        return OFFICIAL_JUDGE_MODEL
    from ecva_core.metrics.judge.official import read_official_prompts

    prompts = read_official_prompts()
    note = prompts.model_note()
    if note and notify:
        notify(note)
    return prompts.judge_model


def _judge_identity(metric: str, settings: Settings, protocol: str = DEFAULT) -> tuple[str, str]:
    """(judge model, prompt version) that a judge metric is scored with under ``settings`` and ``protocol``."""
    from ecva_core.metrics.judge import METRIC_NAMES
    from ecva_core.metrics.judge.prompts import prompt_for

    judge = next(j for j, m in METRIC_NAMES.items() if m == metric)
    return settings.judge_model, prompt_for(judge, protocol).version


def _normal_answers(db: ResultsDB, model: str | None) -> dict[tuple[str, Task], str]:
    """The model's latest usable normal answers by (video, task), from any of its submissions: a probe
    file is usually scored on its own, and its pair judge compares with these."""
    if model is None:
        return {}
    preds = db.predictions_frame(models=[model])
    normal = preds[(preds["probe"] == "") & (preds["status"] == PredictionStatus.OK.value)]
    normal = normal[normal["task"].isin([t.value for t in SCORED_TASKS])]
    return {(str(v), Task(t)): str(o) for v, t, o in normal[["video_id", "task", "output"]].itertuples(index=False)}


def _score_judge(
    db: ResultsDB,
    submission_id: int,
    dataset: Dataset,
    settings: Settings,
    progress: Progress | None,
    notify: Notify | None = None,
    *,
    model: str | None = None,
    protocol: str = DEFAULT,
) -> dict[str, Any]:
    """AnomEval judges for predictions lacking this judge's verdicts; failed predictions are stored as
    failures, unsent. Verdicts this judge already stored but another judge superseded become the latest
    again without a call. A probe answer whose question the model also answered normally gets the
    pair judge too (``model`` names whose normal answers to look up)."""
    from ecva_core.metrics.judge import METRIC_NAMES, plan_judges, requests_for, run_judges
    from ecva_core.metrics.judge.engine import NORMAL_JUDGES, PAIR_JUDGES, PROBE_JUDGES

    stored = [p for p in db.stored_predictions(submission_id) if Task(p.task) in SCORED_TASKS]
    states = db.judge_scores(submission_id)
    mine = {
        (s.prediction_id, s.metric): s
        for s in states
        if (s.judge_model, s.prompt_version) == _judge_identity(s.metric, settings, protocol)
    }
    previous = sorted(
        {
            _judge_label(s.judge_model, s.prompt_version, settings, protocol)
            for s in states
            if s.latest and mine.get((s.prediction_id, s.metric)) is not s
        }
    )
    by_key = {(p.video_id, p.task, p.probe): p for p in stored}
    normal = _normal_answers(db, model)
    rows: list[ScoreRow] = []
    pending: list[Prediction] = []
    for pred in stored:
        key = (pred.video_id, Task(pred.task))
        judges = (PROBE_JUDGES + (PAIR_JUDGES if key in normal else ())) if pred.probe else NORMAL_JUDGES
        wanted = [METRIC_NAMES[j] for j in judges]
        missing = [m for m in wanted if (pred.id, m) not in mine]
        if not missing:
            continue
        if pred.status != PredictionStatus.OK.value:
            rows += [
                ScoreRow(
                    pred.id,
                    m,
                    None,
                    ScoreStatus.FAILED.value,
                    _failure_reason(pred),
                    *_judge_identity(m, settings, protocol),
                )
                for m in missing
            ]
        else:
            pending.append(Prediction(pred.video_id, Task(pred.task), pred.output, pred.prompt, pred.probe or None))
    if previous and notify:
        notify(
            f"re-judging with {settings.judge_model}, predictions unchanged (judged before by {', '.join(previous)})"
        )
    reactivated = db.activate_judge_scores(
        (s.prediction_id, s.metric, s.judge_model, s.prompt_version) for s in mine.values() if not s.latest
    )
    db.write_scores(rows)
    requests = [
        r
        for r in requests_for(pending, _items(dataset, stored).values(), protocol, normal)
        if (_prediction_of(by_key, r).id, r.metric) not in mine
    ]
    cache = db.judge_cache()
    totals: dict[str, Any] = {
        "requests": len(requests),
        "scored": 0,
        "failed": 0,
        "skipped": 0,
        "calls_made": 0,
        "cache_hits": 0,
        "tokens_in": 0,
        "tokens_out": 0,
        "cost": 0.0,
    }
    try:
        plan = plan_judges(requests, settings, cache)
        totals["planned_calls"] = plan.calls_needed
        for start in range(0, len(requests), JUDGE_BATCH):
            chunk = requests[start : start + JUDGE_BATCH]

            def report(done_n: int, total_n: int, offset: int = start) -> None:
                if progress:
                    progress("judge", offset + done_n, len(requests))

            run = run_judges(chunk, settings, cache, progress=report)
            batch_rows = []
            for result in run.results:
                req = result.request
                pred = _prediction_of(by_key, req)
                batch_rows.append(
                    ScoreRow(
                        pred.id,
                        req.metric,
                        result.value,
                        str(result.status),
                        result.reason,
                        *_judge_identity(req.metric, settings, protocol),
                    )
                )
            db.write_scores(batch_rows)
            for name in ("scored", "failed", "skipped"):
                totals[name] += getattr(run, name)
            for name in ("calls_made", "cache_hits", "tokens_in", "tokens_out", "cost"):
                totals[name] += getattr(run, name)
            if run.unreachable:
                totals["unreachable"] = run.unreachable
    finally:
        cache.close()
    totals["cost"] = round(totals["cost"], 6)
    totals["failed_predictions"] = len({r.prediction_id for r in rows})
    totals["reactivated"] = reactivated
    totals["rejudged"] = bool(previous)
    totals["previous_models"] = previous
    return totals


def _prediction_of(by_key: dict[tuple[str, str, str], StoredPrediction], request: JudgeRequest) -> StoredPrediction:
    return by_key[(request.video_id, request.task.value, request.probe or "")]


def _judge_label(judge_model: str, prompt_version: str, settings: Settings, protocol: str) -> str:
    if not judge_model:
        return "an unrecorded judge"
    made_under = protocol_of(prompt_version)
    if made_under and made_under != protocol:
        return f"{judge_model} ({made_under} protocol)"
    return f"{judge_model} (older prompts)" if judge_model == settings.judge_model else judge_model


def summarise(db: ResultsDB, submission_id: int, hallucination: str = ABSTENTION) -> dict[str, Any]:
    """Per-task and overall means with 95% CIs (bootstrapped by video), both variants, for one submission.

    ``tasks`` / ``overall`` repeat the "all" variant (failures count 0); ``variants`` holds both.
    Probe answers count for the hallucination pillar only (see :mod:`ecva_core.metrics.aggregate`).
    """
    from ecva_core.metrics import aggregate

    frame = db.scores_frame(submission_id=submission_id)
    if not counted(frame).any():
        note = (
            "only probe answers and no judge verdicts: probe answers count for the hallucination pillar only, "
            "which needs the judge"
            if not frame.empty
            else "nothing scored"
        )
        return {
            "variants": {},
            "tasks": {},
            "overall": {},
            "measures": [],
            "failures": {},
            "note": note,
            "anomeval_label": aggregate.ANOMEVAL_LABEL,
        }
    model = str(frame["model"].iloc[0])
    variants = aggregate.model_summary(frame, model, hallucination=hallucination)["variants"]
    order = [t.value for t in Task]
    for block in variants.values():
        block["tasks"] = dict(sorted(block["tasks"].items(), key=lambda kv: order.index(kv[0])))
    failed = frame[frame["status"] == "failed"]
    answer_failure = failed["reason"].isin([_FAILURE_REASONS[s] for s in _FAILURE_REASONS])
    return {
        "anomeval_label": aggregate.ANOMEVAL_LABEL,
        "measures": measures_present([variants["all"]["overall"], *variants["all"]["tasks"].values()]),
        "tasks": variants["all"]["tasks"],
        "overall": variants["all"]["overall"],
        "variants": variants,
        "failures": {
            "failed_scores": len(failed),
            "failed_answer_scores": int(answer_failure.sum()),
            "judge_failures": int((~answer_failure & failed["metric"].str.startswith("judge_")).sum()),
            "metric_failures": int((~answer_failure & ~failed["metric"].str.startswith("judge_")).sum()),
            "skipped_scores": int((frame["status"] == "skipped").sum()),
        },
    }
