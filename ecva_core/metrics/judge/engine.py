"""The AnomEval judge engine: build requests, skip what must not be sent, reuse the cache, call.

``run_judges`` is the sync entry point for the CLI, the scoring pipeline and Streamlit. Each
verdict is cached the moment it parses, so an interrupted run resumes where it stopped; a judge
failure (timeout after retries, a rejected call, an unparseable reply) comes back as a result
with status FAILED and a reason, and is never cached or counted as a score.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from ecva_core.config import JUDGE_SETUP_HELP, Settings
from ecva_core.errors import JudgeError
from ecva_core.metrics.judge.cache import CachedVerdict, JudgeCache, cache_key
from ecva_core.metrics.judge.client import JudgeCallError, JudgeClient, RetryPolicy
from ecva_core.metrics.judge.parse import VerdictError, parse_verdict
from ecva_core.metrics.judge.prompts import build_messages, judge_inputs, prompt_for
from ecva_core.metrics.judge.types import (
    CONSISTENCY,
    HALLUCINATION,
    HALLUCINATION_PAIR,
    KEYPHRASE,
    LOGIC,
    JudgeRequest,
    JudgeResult,
    usable_answer,
)
from ecva_core.metrics.protocol import DEFAULT
from ecva_core.schema import SCORED_TASKS, Prediction, PredictionStatus, QAItem, Score, ScoreStatus, Task

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]

NORMAL_JUDGES: tuple[str, ...] = (CONSISTENCY, LOGIC, KEYPHRASE)
PROBE_JUDGES: tuple[str, ...] = (HALLUCINATION,)
PAIR_JUDGES: tuple[str, ...] = (HALLUCINATION_PAIR,)  # probe answers that have a normal answer too
_EST_TOKENS_OUT = 40  # a JSON verdict with a one-sentence reason
_CHARS_PER_TOKEN = 4


@dataclass
class JudgeRun:
    """All results of a run, in request order, with what the run itself spent."""

    results: list[JudgeResult]
    calls_made: int = 0
    cache_hits: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    retries: int = 0
    judge_model: str = ""
    http_statuses: dict[str, int] = field(default_factory=dict)
    unreachable: str | None = None  # "judge unreachable: ..." when the endpoint could not be reached at all

    @property
    def failed(self) -> int:
        return sum(r.status is ScoreStatus.FAILED for r in self.results)

    @property
    def skipped(self) -> int:
        return sum(r.status is ScoreStatus.SKIPPED for r in self.results)

    @property
    def scored(self) -> int:
        return sum(r.status is ScoreStatus.OK for r in self.results)

    def scores(self) -> list[Score]:
        return [r.to_score() for r in self.results]

    def summary(self) -> dict[str, object]:
        return {
            "requests": len(self.results),
            "scored": self.scored,
            "failed": self.failed,
            "skipped": self.skipped,
            "calls_made": self.calls_made,
            "cache_hits": self.cache_hits,
            "retries": self.retries,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "cost": round(self.cost, 6),
            "judge_model": self.judge_model,
        }


@dataclass(frozen=True)
class JudgePlan:
    """What a run would cost before it starts: calls still needed after the cache, and estimates."""

    calls_needed: int
    cached: int
    est_tokens: int
    est_cost: float
    skipped: int = 0
    est_tokens_in: int = 0
    est_tokens_out: int = 0


def probe_question(pred: Prediction, item: QAItem) -> str:
    """What a probe answer was asked: the row's own prompt, else the benchmark's probe wording."""
    from ecva_core.dataset.questions import PROBE_QUESTIONS

    return pred.prompt.strip() or PROBE_QUESTIONS.get(pred.task, item.question)


def requests_for(
    predictions: Iterable[Prediction],
    qa_items: Iterable[QAItem],
    protocol: str = DEFAULT,
    normal_answers: dict[tuple[str, Task], str] | None = None,
) -> list[JudgeRequest]:
    """The judge requests for joined predictions: consistency, logic and key phrases for normal
    answers; hallucination for probe answers (with the probe wording they were asked), and
    ``hallucination_pair`` for a probe answer whose (video, task) also has a normal answer (from
    ``predictions`` or ``normal_answers``). ERROR/empty predictions, predictions with no QA item and
    auxiliary tasks yield nothing."""
    items = {item.key: item for item in qa_items}
    predictions = list(predictions)
    normal = dict(normal_answers or {})
    normal.update(
        {
            p.key: p.output
            for p in predictions
            if not p.probe and p.status is PredictionStatus.OK and usable_answer(p.output)
        }
    )
    requests: list[JudgeRequest] = []
    for pred in predictions:
        item = items.get(pred.key)
        if item is None or pred.task not in SCORED_TASKS:
            continue
        if pred.status is not PredictionStatus.OK or not usable_answer(pred.output):
            continue
        judges = NORMAL_JUDGES
        if pred.probe:
            judges = PROBE_JUDGES + (PAIR_JUDGES if pred.key in normal else ())
        for judge in judges:
            requests.append(
                JudgeRequest(
                    judge=judge,
                    video_id=pred.video_id,
                    task=pred.task,
                    question=probe_question(pred, item) if pred.probe else item.question,
                    reference=item.answer,
                    answer=pred.output,
                    key_phrases=tuple(item.key_phrases),
                    probe=pred.probe,
                    normal_answer=normal.get(pred.key, "") if judge == HALLUCINATION_PAIR else "",
                    protocol=protocol,
                )
            )
    return requests


def plan_judges(requests: Sequence[JudgeRequest], settings: Settings, cache: JudgeCache) -> JudgePlan:
    """Calls needed after the cache (duplicates counted once) and the estimated tokens and cost."""
    pending, cached, skipped = _partition(requests, settings, cache)
    est_in = 0
    for group in pending.values():
        chars = sum(len(m["content"]) for m in build_messages(group[0][1]))
        est_in += chars // _CHARS_PER_TOKEN + 8
    est_out = _EST_TOKENS_OUT * len(pending)
    return JudgePlan(
        calls_needed=len(pending),
        cached=len(cached),
        est_tokens=est_in + est_out,
        est_cost=_cost(settings, est_in, est_out),
        skipped=len(skipped),
        est_tokens_in=est_in,
        est_tokens_out=est_out,
    )


def run_judges(
    requests: Sequence[JudgeRequest],
    settings: Settings,
    cache: JudgeCache,
    progress: Progress | None = None,
    *,
    retry: RetryPolicy | None = None,
) -> JudgeRun:
    """Run the judges and wait for all verdicts; usable with or without a running event loop."""
    coro_args = (requests, settings, cache, progress, retry)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(run_judges_async(*coro_args))
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="ecva-judge") as pool:
        return pool.submit(lambda: asyncio.run(run_judges_async(*coro_args))).result()


async def run_judges_async(
    requests: Sequence[JudgeRequest],
    settings: Settings,
    cache: JudgeCache,
    progress: Progress | None = None,
    retry: RetryPolicy | None = None,
) -> JudgeRun:
    """The async engine behind :func:`run_judges` (one client, bounded concurrency)."""
    total = len(requests)
    results: list[JudgeResult | None] = [None] * total
    pending, cached, skipped = _partition(requests, settings, cache)
    for index, reason in skipped:
        results[index] = JudgeResult(requests[index], None, ScoreStatus.SKIPPED, reason)
    for index, verdict in cached:
        results[index] = _ok(requests[index], verdict, cached=True)
    run = JudgeRun(results=[], cache_hits=len(cached), judge_model=settings.judge_model)
    done = len(skipped) + len(cached)
    if progress:
        progress(done, total)
    if pending:
        if not settings.judge_usable:
            raise JudgeError(f"{len(pending)} judge calls are needed but no judge is configured: {JUDGE_SETUP_HELP}")
        client = JudgeClient(settings, retry)
        run.unreachable = await client.unreachable_reason()
        if run.unreachable is not None:  # one failure state for the whole run; nothing is sent
            for index, request in (pair for group in pending.values() for pair in group):
                results[index] = JudgeResult(request, None, ScoreStatus.FAILED, run.unreachable)
            pending = {}
            if progress:
                progress(total, total)

        async def judge_one(key: str, group: list[tuple[int, JudgeRequest]]) -> None:
            nonlocal done
            outcome = await _call(client, cache, settings, key, group[0][1])
            for index, request in group:
                results[index] = _retarget(outcome, request)
            done += len(group)
            if progress:
                progress(done, total)

        # As many workers as calls may be in flight, each taking the next pending request: a task
        # per request would keep thousands of tasks waiting for a slot, each one memory and work
        # for the garbage collector (measured: a quarter less GC time at 12,000 requests).
        queue = iter(pending.items())

        async def worker() -> None:
            for key, group in queue:
                await judge_one(key, group)

        try:
            await asyncio.gather(*(worker() for _ in range(min(len(pending), max(1, settings.judge_concurrency)))))
        finally:
            await client.aclose()
        run.calls_made = client.usage.calls
        run.retries = client.usage.retries
        run.tokens_in = client.usage.tokens_in
        run.tokens_out = client.usage.tokens_out
        run.cost = _cost(settings, run.tokens_in, run.tokens_out)
        run.http_statuses = dict(client.usage.statuses)
    run.results = [r for r in results if r is not None]
    log.info("judge run: %s", json.dumps(run.summary()))
    return run


def request_key(request: JudgeRequest, judge_model: str) -> str:
    """The judge-cache key of a request: its prompt version, the judge model and what the judge sees."""
    prompt = prompt_for(request.judge, request.protocol)
    return cache_key(prompt.version, judge_model, request.judge, judge_inputs(request))


def _partition(
    requests: Sequence[JudgeRequest], settings: Settings, cache: JudgeCache
) -> tuple[dict[str, list[tuple[int, JudgeRequest]]], list[tuple[int, CachedVerdict]], list[tuple[int, str]]]:
    """Split requests into pending (grouped by cache key), cached and skipped."""
    skipped: list[tuple[int, str]] = []
    keyed: dict[str, list[tuple[int, JudgeRequest]]] = {}
    for index, request in enumerate(requests):
        reason = request.skip_reason()
        if reason is not None:
            skipped.append((index, reason))
            continue
        key = request_key(request, settings.judge_model)
        keyed.setdefault(key, []).append((index, request))
    stored = cache.get_many(keyed)
    cached = [(index, stored[key]) for key, group in keyed.items() if key in stored for index, _ in group]
    pending = {key: group for key, group in keyed.items() if key not in stored}
    return pending, cached, skipped


async def _call(
    client: JudgeClient, cache: JudgeCache, settings: Settings, key: str, request: JudgeRequest
) -> JudgeResult:
    """One verdict: call, parse, derive the value, cache it; a failure becomes a FAILED result."""
    prompt = prompt_for(request.judge, request.protocol)
    try:
        completion = await client.complete(build_messages(request), json_reply=prompt.reply_format == "json")
    except JudgeCallError as exc:
        return JudgeResult(request, None, ScoreStatus.FAILED, f"judge call failed: {exc.reason}")
    try:
        verdict = parse_verdict(prompt, completion.text, len(request.key_phrases))
    except VerdictError as exc:
        return JudgeResult(
            request,
            None,
            ScoreStatus.FAILED,
            f"unparseable judge reply: {exc.reason}",
            tokens_in=completion.tokens_in,
            tokens_out=completion.tokens_out,
        )
    value = _value(request, verdict.score, verdict.total)
    stored = CachedVerdict(verdict.score, value, verdict.reason, completion.tokens_in, completion.tokens_out)
    cache.put(
        key,
        judge=request.judge,
        judge_model=settings.judge_model,
        prompt_version=prompt.version,
        verdict=stored,
    )
    return _ok(request, stored, cached=False)


def _value(request: JudgeRequest, score: int, total: int | None = None) -> float:
    """The metric value: the raw score, or for key phrases the matched share of the known count
    (under the official protocol, of the count the judge itself gave, as the official code divides)."""
    if request.judge == KEYPHRASE:
        return min(1.0, max(0.0, score / (total or len(request.key_phrases))))
    return float(score)


def _ok(request: JudgeRequest, verdict: CachedVerdict, cached: bool) -> JudgeResult:
    return JudgeResult(
        request,
        verdict.value,
        ScoreStatus.OK,
        verdict.reason,
        cached=cached,
        tokens_in=verdict.tokens_in,
        tokens_out=verdict.tokens_out,
        score=verdict.score,
    )


def _retarget(outcome: JudgeResult, request: JudgeRequest) -> JudgeResult:
    """The same verdict for another request with identical judge inputs (another video or task)."""
    if outcome.request is request:
        return outcome
    return JudgeResult(
        request,
        outcome.value,
        outcome.status,
        outcome.reason,
        outcome.cached,
        outcome.tokens_in,
        outcome.tokens_out,
        outcome.score,
    )


def _cost(settings: Settings, tokens_in: int, tokens_out: int) -> float:
    return (tokens_in * settings.judge_price_in_per_mtok + tokens_out * settings.judge_price_out_per_mtok) / 1_000_000
