"""The one entry point for reference-based text metrics, always reference first, candidate second.

The official ECVA scripts pass the model answer as the reference and the expert answer as the
candidate; every function here takes ``references`` (expert answers) first. ``bleu_official`` and
``rougeL_official`` reproduce the official computation (its order and tokens) for the official
protocol (:mod:`ecva_core.metrics.protocol`); the swap happens inside them. A metric that cannot
run here (no WordNet data, no checkpoint configured) yields ``None`` values, never a made-up
number; :func:`metric_status` says why and what to set.
"""

from __future__ import annotations

from collections.abc import Sequence

from ecva_core.config import Settings, get_settings
from ecva_core.metrics import learned, lexical, semantic
from ecva_core.metrics.protocol import DEFAULT, OFFICIAL, OFFICIAL_TEXT_METRICS, check_protocol

TEXT_METRICS: tuple[str, ...] = (
    *lexical.BLEU_METRICS,
    *lexical.ROUGE_METRICS,
    "semantic",
    "meteor",
    "bleurt",
    "unieval",
    *OFFICIAL_TEXT_METRICS,
)


def metric_status(settings: Settings | None = None) -> dict[str, str]:
    """Each text metric's state: "ok", "not configured: ..." or "unavailable: ..."."""
    settings = settings or get_settings()
    status = {name: "ok" for name in (*lexical.BLEU_METRICS, *lexical.ROUGE_METRICS)}
    status["semantic"] = semantic.semantic_status()
    status["meteor"] = lexical.wordnet_status()
    status["bleurt"] = learned.checkpoint_status("bleurt", settings.bleurt_checkpoint)
    status["unieval"] = learned.checkpoint_status("unieval", settings.unieval_checkpoint)
    status.update({name: "ok" for name in OFFICIAL_TEXT_METRICS})
    return status


def available_metrics(settings: Settings | None = None, protocol: str = DEFAULT) -> list[str]:
    """Names of the text metrics that can run with these settings, in :data:`TEXT_METRICS` order; the
    official BLEU/ROUGE are added under the official protocol, beside the corrected ones."""
    check_protocol(protocol)
    wanted = set(TEXT_METRICS) if protocol == OFFICIAL else set(TEXT_METRICS) - set(OFFICIAL_TEXT_METRICS)
    return [name for name, state in metric_status(settings).items() if state == "ok" and name in wanted]


def score_text(
    references: Sequence[str],
    candidates: Sequence[str],
    metrics: Sequence[str] | None = None,
    reference_key: str | None = None,
    settings: Settings | None = None,
) -> dict[str, list[float | None]]:
    """Score each (reference, candidate) pair with the named metrics (default: all of TEXT_METRICS).

    ``reference_key`` names the reference set (e.g. the dataset fingerprint) so that reference
    embeddings are cached on disk between runs. Metrics whose status is not "ok" come back as lists
    of ``None``.
    """
    references, candidates = list(references), list(candidates)
    if len(references) != len(candidates):
        raise ValueError(f"{len(references)} references but {len(candidates)} candidates")
    names = list(TEXT_METRICS) if metrics is None else list(dict.fromkeys(metrics))
    unknown = [name for name in names if name not in TEXT_METRICS]
    if unknown:
        raise ValueError(f"unknown text metric(s) {unknown}; known: {', '.join(TEXT_METRICS)}")
    settings = settings or get_settings()
    status = metric_status(settings)
    out: dict[str, list[float | None]] = {}
    if any(name in lexical.BLEU_METRICS for name in names):
        out.update(lexical.bleu_scores(references, candidates))
    if any(name in lexical.ROUGE_METRICS for name in names):
        out.update(lexical.rouge_scores(references, candidates))
    if any(name in OFFICIAL_TEXT_METRICS for name in names):
        out.update(lexical.official_scores(candidates, references))
    cache_dir = settings.cache_dir
    runners = {
        "semantic": lambda: semantic.semantic_scores(references, candidates, reference_key, cache_dir),
        "meteor": lambda: lexical.meteor_scores(references, candidates, cache_dir),
        "bleurt": lambda: learned.bleurt_scores(references, candidates, settings.bleurt_checkpoint),
        "unieval": lambda: learned.unieval_scores(references, candidates, settings.unieval_checkpoint),
    }
    for name, run in runners.items():
        if name in names:
            out[name] = run() if status[name] == "ok" else [None] * len(references)
    return {name: out[name] for name in names}
