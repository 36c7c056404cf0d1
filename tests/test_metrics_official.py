"""The official protocol's BLEU and ROUGE-L equal the official script's per pair, on real model outputs.

``official_get_bleu_score`` / ``official_get_rouge_score`` below redo the arithmetic of the official
``eval_traditional/eval_bleu_rouge.py`` (github.com/Dulpy/ECVA) with the libraries it uses: whitespace
tokens, case kept, nltk ``sentence_bleu`` with smoothing ``method1``, ``rouge_score`` with the stemmer.
Its caller passes ``(response, answer)``, i.e. the model output as the reference.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

from ecva_core.metrics import lexical
from ecva_core.metrics.protocol import OFFICIAL_TEXT_METRICS
from ecva_core.metrics.text import available_metrics, score_text


def official_get_bleu_score(reference: str, candidate: str) -> float:
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    return sentence_bleu([reference.split()], candidate.split(), smoothing_function=SmoothingFunction().method1)


@functools.cache
def _official_scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)


def official_get_rouge_score(reference: str, candidate: str):
    """The official function builds the same scorer on every call; it is built once here."""
    return _official_scorer().score(reference, candidate)


@pytest.mark.realdata
def test_official_bleu_and_rougeL_equal_the_official_script_per_pair(shared_ecva: Path) -> None:
    pairs = []
    for task in ("description", "reason", "outcome"):
        rows = json.loads((shared_ecva / "model_outputs" / f"videollama2_new_{task}.json").read_text())
        pairs += [(r["output"], r["human_expert_answer"]) for r in rows if r["output"] != "ERROR"]
    assert len(pairs) > 2900
    outputs, experts = [o for o, _ in pairs], [e for _, e in pairs]
    ours = score_text(experts, outputs, metrics=["bleu4", "bleu_official", "rougeL_official"])
    for i, (output, expert) in enumerate(pairs):
        assert ours["bleu_official"][i] == official_get_bleu_score(output, expert), i
    # rouge-score's pure-Python LCS table costs ~10 ms a pair: every fourth pair keeps the test short
    for i, (output, expert) in list(enumerate(pairs))[::4]:
        assert ours["rougeL_official"][i] == official_get_rouge_score(output, expert)["rougeL"].fmeasure, i
    # the corrected BLEU (expert answer as reference, normalised tokens) is a different number
    differs = sum(abs(a - b) > 1e-9 for a, b in zip(ours["bleu4"], ours["bleu_official"], strict=True))
    assert differs > len(pairs) // 2


def test_official_bleu_edge_cases_match_nltk() -> None:
    for output, expert in [("", "a b"), ("a b", ""), ("x y", "a b"), ("A cat.", "a cat."), ("a b c d e", "a b")]:
        assert lexical.official_bleu(output, expert) == official_get_bleu_score(output, expert)


def test_official_metrics_join_the_default_set_only_under_the_official_protocol() -> None:
    assert not set(OFFICIAL_TEXT_METRICS) & set(available_metrics())
    assert set(OFFICIAL_TEXT_METRICS) <= set(available_metrics(protocol="official"))
