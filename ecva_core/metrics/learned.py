"""Learned metrics from a checkpoint the user configures: BLEURT and UniEval.

BLEURT: a transformers-format regression checkpoint (``AutoModelForSequenceClassification`` with one
label, e.g. the BERT-based BLEURT ports); the pair is encoded reference first, candidate second,
as BLEURT was trained, and the score is the raw regression output (BLEURT-20 is ~[0, 1]).
UniEval: a T5 checkpoint (e.g. unieval-sum) asked its reference-relevance question; the score is
P(Yes) / (P(Yes) + P(No)) at the first decoder step, as in the UniEval paper.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from ecva_core.errors import ConfigError

BATCH_SIZE = 16
MAX_LENGTH = 512
UNIEVAL_PROMPT = (
    "question: Is this summary relevant to the reference? </s> summary: {candidate} </s> reference: {reference}"
)

_ENV = {"bleurt": "ECVA_BLEURT_CHECKPOINT", "unieval": "ECVA_UNIEVAL_CHECKPOINT"}
_ARCH = {"bleurt": "ForSequenceClassification", "unieval": "ForConditionalGeneration"}


def checkpoint_status(metric: str, checkpoint: Path | None) -> str:
    """ "ok", or "not configured: ..." / "unavailable: ..." saying what to set or fix."""
    env = _ENV[metric]
    if checkpoint is None:
        return f"not configured: set {env} to a transformers-format {metric} checkpoint directory"
    config = checkpoint / "config.json"
    if not config.is_file():
        return f"unavailable: {env}={checkpoint} has no config.json (expected a transformers checkpoint dir)"
    try:
        data = json.loads(config.read_text())
    except (OSError, ValueError) as exc:
        return f"unavailable: {config} is not readable JSON ({exc})"
    architectures = data.get("architectures") or []
    if data.get("model_type") == "bleurt":
        return (
            f"unavailable: {checkpoint} uses the custom 'bleurt' model type (bleurt-pytorch); use a "
            "BertForSequenceClassification-format BLEURT checkpoint"
        )
    if architectures and not any(a.endswith(_ARCH[metric]) for a in architectures):
        return f"unavailable: {checkpoint} is a {architectures[0]}, expected a *{_ARCH[metric]} checkpoint"
    return "ok"


def _require(metric: str, checkpoint: Path | None) -> Path:
    status = checkpoint_status(metric, checkpoint)
    if checkpoint is None or status != "ok":
        raise ConfigError(f"{metric}: {status}")
    return checkpoint


@lru_cache(maxsize=2)
def _bleurt(checkpoint: Path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(checkpoint, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint, local_files_only=True).eval()
    if model.config.num_labels != 1:
        raise ConfigError(f"bleurt: {checkpoint} has {model.config.num_labels} labels; BLEURT regresses one")
    return tokenizer, model


def bleurt_scores(references: Sequence[str], candidates: Sequence[str], checkpoint: Path | None) -> list[float]:
    """BLEURT score of each pair (reference first)."""
    import torch

    tokenizer, model = _bleurt(_require("bleurt", checkpoint))
    out: list[float] = []
    with torch.inference_mode():
        for start in range(0, len(references), BATCH_SIZE):
            refs = list(references[start : start + BATCH_SIZE])
            cands = list(candidates[start : start + BATCH_SIZE])
            batch = tokenizer(refs, cands, padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="pt")
            out.extend(model(**batch).logits[:, 0].float().tolist())
    return out


@lru_cache(maxsize=2)
def _unieval(checkpoint: Path):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(checkpoint, local_files_only=True)
    model = AutoModelForSeq2SeqLM.from_pretrained(checkpoint, local_files_only=True).eval()
    yes = tokenizer("Yes", add_special_tokens=False).input_ids
    no = tokenizer("No", add_special_tokens=False).input_ids
    if not yes or not no:
        raise ConfigError(f"unieval: the tokenizer in {checkpoint} has no token for 'Yes'/'No'")
    return tokenizer, model, yes[0], no[0]


def unieval_scores(references: Sequence[str], candidates: Sequence[str], checkpoint: Path | None) -> list[float]:
    """UniEval relevance of each candidate to its reference, in [0, 1]."""
    import torch

    tokenizer, model, yes_id, no_id = _unieval(_require("unieval", checkpoint))
    start_id = model.config.decoder_start_token_id
    if start_id is None:
        start_id = model.config.pad_token_id or 0
    out: list[float] = []
    with torch.inference_mode():
        for start in range(0, len(references), BATCH_SIZE):
            prompts = [
                UNIEVAL_PROMPT.format(candidate=c, reference=r)
                for r, c in zip(
                    references[start : start + BATCH_SIZE],
                    candidates[start : start + BATCH_SIZE],
                    strict=True,
                )
            ]
            batch = tokenizer(prompts, padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="pt")
            decoder = torch.full((len(prompts), 1), start_id, dtype=torch.long)
            logits = model(**batch, decoder_input_ids=decoder).logits[:, 0, :]
            pair = torch.softmax(logits[:, [yes_id, no_id]].float(), dim=-1)
            out.extend(pair[:, 0].tolist())
    return out
