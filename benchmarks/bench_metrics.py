"""Text metrics on 6,720 real answer/reference pairs on 2 CPU threads, against naive baselines.

Pairs: every non-ERROR answer in ../shared/ecva/model_outputs (VideoLLaMA2 and VideoLLaMA v1, the
three scored tasks) with its expert answer, joined by (video id, task), repeated to 6,720 (the
size of ECVA). Baselines, run in the same process:

- BLEU/ROUGE: the official scripts' per-pair loop (nltk ``sentence_bleu`` once per order, a fresh
  ``RougeScorer.score`` per pair), same tokens and settings, so the values agree.
- METEOR: nltk's ``single_meteor_score`` with the plain WordNet reader (timed on a subset and
  scaled; marked so in the table).
- Semantic similarity: encoding the references with an empty cache against finding them in the
  per-dataset cache (what every model after the first saves). ``--semantic-pairs`` times the
  answers on a strided subset and scales linearly, for machines where a full run takes too long.

Beside the 6,720-pair cold run, the case a user waits for: one full submission (VideoLLaMA2's
non-ERROR answers of the three scored tasks), every available text metric, with the dataset's
reference embeddings already cached (``--submission-only`` runs just this case). The semantic
model runs on a CUDA GPU when one is present (float32 either way).

Usage: ``python benchmarks/bench_metrics.py [--pairs 6720] [--data ../shared/ecva] [--submission-only]``.
The last line printed is one JSON object with the headline figures.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import tempfile
import time
from pathlib import Path

TASK_FILES = {"description": "Description", "reason": "Cause", "outcome": "Result"}
DEFAULT_DATA = Path(os.environ.get("ECVA_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared" / "ecva"))


def build_pairs(root: Path, n_pairs: int) -> tuple[list[str], list[str], int]:
    """(references, candidates) from the real output files, joined by (video id, task), cycled to n_pairs,
    and how many of the first pairs are VideoLLaMA2's (one full submission)."""
    from ecva_core.schema import canonical_video_id

    outputs = root / "model_outputs"
    references: dict[tuple[str, str], str] = {}
    for stem, task in TASK_FILES.items():
        for row in json.loads((outputs / f"videollama2_new_{stem}.json").read_text()):
            if row.get("human_expert_answer") and row.get("video_file") != "ERROR":
                references[(canonical_video_id(row["video_file"]), task)] = row["human_expert_answer"]
    pairs: list[tuple[str, str]] = []
    submission = 0
    for prefix in ("videollama2_new", "video_llama"):
        if prefix == "video_llama":
            submission = len(pairs)
        for stem, task in TASK_FILES.items():
            for row in json.loads((outputs / f"{prefix}_{stem}.json").read_text()):
                output = str(row.get("output", ""))
                key = (canonical_video_id(row.get("video_file", "")), task)
                if output.strip() and output != "ERROR" and key in references:
                    pairs.append((references[key], output))
    cycled = list(itertools.islice(itertools.cycle(pairs), max(n_pairs, submission)))
    return [p[0] for p in cycled], [p[1] for p in cycled], submission


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def submission_case(refs: list[str], cands: list[str], n: int, settings) -> dict[str, float]:
    """Wall and CPU seconds to score one submission's ``n`` answers with every available text metric,
    the dataset's reference embeddings cached (as after any earlier scoring on this dataset), split
    into the semantic metric and the rest; and the semantic model's load (paid once per process).
    CPU seconds show the work apart from other processes competing for the cores."""
    from ecva_core.metrics import lexical, semantic
    from ecva_core.metrics.text import available_metrics, score_text

    t_load, _ = timed(semantic._model)
    semantic.reference_embeddings(refs, "bench-dataset", settings.cache_dir)  # the dataset's cache, warm
    for cached in (lexical.bleu_tokens, lexical.rouge_tokens, lexical._ngram_counts, lexical._rouge_ngrams):
        cached.cache_clear()
    names = available_metrics(settings)
    out: dict[str, float] = {"metrics": len(names), "model_load_s": t_load}
    for label, group in (("other", [m for m in names if m != "semantic"]), ("semantic", ["semantic"])):
        cpu = time.process_time()
        wall, _ = timed(
            lambda g=group: score_text(refs[:n], cands[:n], metrics=g, reference_key="bench-dataset", settings=settings)
        )
        out[f"{label}_s"], out[f"{label}_cpu_s"] = wall, time.process_time() - cpu
    out["total_s"] = out["other_s"] + out["semantic_s"]
    out["total_cpu_s"] = out["other_cpu_s"] + out["semantic_cpu_s"]
    return out


def naive_bleu_rouge(refs: list[str], cands: list[str]) -> None:
    """The official pattern: per pair, four nltk sentence_bleu calls and a fresh ROUGE scoring."""
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
    from rouge_score.rouge_scorer import RougeScorer

    from ecva_core.metrics.lexical import bleu_tokens

    smoothing = SmoothingFunction().method1
    scorer = RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    for ref, cand in zip(refs, cands, strict=True):
        r, h = list(bleu_tokens.__wrapped__(ref)), list(bleu_tokens.__wrapped__(cand))
        if r and h:
            for n in range(1, 5):
                sentence_bleu([r], h, weights=(1 / n,) * n, smoothing_function=smoothing)
        scorer.score(ref, cand)


def naive_meteor(refs: list[str], cands: list[str], cache_dir: Path) -> None:
    from nltk.translate.meteor_score import single_meteor_score

    from ecva_core.metrics.lexical import _meteor_resources, bleu_tokens

    reader = _meteor_resources(cache_dir)[0]._reader  # the uncached WordNet reader
    for ref, cand in zip(refs, cands, strict=True):
        r, h = bleu_tokens.__wrapped__(ref), bleu_tokens.__wrapped__(cand)
        if r and h:
            single_meteor_score(r, h, wordnet=reader)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=6720)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--meteor-baseline-pairs", type=int, default=1000)
    parser.add_argument("--semantic-pairs", type=int, default=6720, help="time semantic on a strided subset")
    parser.add_argument("--submission-only", action="store_true", help="only the one-submission case")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="ecva-bench-metrics-"))
    os.environ["ECVA_HOME"] = str(home)  # an empty reference-embedding cache for the cold run
    import torch

    torch.set_num_threads(2)
    from ecva_core.config import get_settings
    from ecva_core.metrics import lexical, semantic
    from ecva_core.metrics.text import metric_status, score_text

    settings = get_settings()
    load_before = os.getloadavg()[0]
    refs, cands, n_submission = build_pairs(args.data, args.pairs)
    unique_pairs = len(set(zip(refs, cands, strict=True)))
    status = metric_status(settings)
    print(
        f"{len(refs)} pairs ({unique_pairs} distinct), torch threads {torch.get_num_threads()}, cpus {os.cpu_count()}"
        f", semantic on {semantic.device()}"
    )
    print("metric status: " + ", ".join(f"{k}={v.split(':')[0]}" for k, v in status.items()))
    sub = submission_case(refs, cands, n_submission, settings)
    t_submission = sub["total_s"]
    print(
        f"one submission: {n_submission} answers, {sub['metrics']} text metrics, reference embeddings cached: "
        f"{t_submission:.2f} s wall, {sub['total_cpu_s']:.2f} s CPU (semantic {sub['semantic_s']:.2f} s wall, "
        f"{sub['semantic_cpu_s']:.2f} s CPU; the others {sub['other_s']:.2f} s wall, {sub['other_cpu_s']:.2f} s CPU)"
        f" + {sub['model_load_s']:.2f} s semantic model load once per process"
    )
    headline = {
        "submission_answers": n_submission,
        **{f"submission_{k}": round(v, 2) for k, v in sub.items()},
        "semantic_device": semantic.device(),
    }
    if args.submission_only:
        print(
            json.dumps(
                {**headline, "load_average_1min_start_end": [round(load_before, 1), round(os.getloadavg()[0], 1)]}
            )
        )
        return
    semantic._model.cache_clear()
    for cached in (lexical.bleu_tokens, lexical.rouge_tokens, lexical._ngram_counts, lexical._rouge_ngrams):
        cached.cache_clear()

    rows: list[tuple[str, float, float | None, str]] = []
    t_bleu, _ = timed(lambda: score_text(refs, cands, metrics=list(lexical.BLEU_METRICS), settings=settings))
    t_rouge, _ = timed(lambda: score_text(refs, cands, metrics=list(lexical.ROUGE_METRICS), settings=settings))
    t_naive, _ = timed(lambda: naive_bleu_rouge(refs, cands))
    rows.append(("bleu1-4 + rouge1/2/L", t_bleu + t_rouge, t_naive, "per-pair nltk + RougeScorer loop"))
    rows.append(("  bleu1-4", t_bleu, None, ""))
    rows.append(("  rouge1/2/L", t_rouge, None, ""))

    t_meteor = t_meteor_naive = None
    if status["meteor"] == "ok":
        t_meteor, _ = timed(lambda: score_text(refs, cands, metrics=["meteor"], settings=settings))
        stride = max(1, len(refs) // max(1, args.meteor_baseline_pairs))
        sub_refs, sub_cands = refs[::stride], cands[::stride]
        t_sub, _ = timed(lambda: naive_meteor(sub_refs, sub_cands, settings.cache_dir))
        t_meteor_naive = t_sub * len(refs) / len(sub_refs)
        label = f"nltk, plain WordNet reader ({len(sub_refs)} strided pairs, scaled)"
        rows.append(("meteor", t_meteor, t_meteor_naive, label))

    t_load, _ = timed(semantic._model)
    step = max(1, len(refs) // max(1, args.semantic_pairs))
    sem_refs, sem_cands = refs[::step], cands[::step]  # strided: keeps the mix of short and long answers
    scale = len(refs) / len(sem_refs)
    t_sem, _ = timed(
        lambda: score_text(sem_refs, sem_cands, metrics=["semantic"], reference_key="bench", settings=settings)
    )
    t_sem *= scale
    t_ref_cold, _ = timed(lambda: semantic.reference_embeddings(refs, "bench-refs", settings.cache_dir))
    t_ref_warm, _ = timed(lambda: semantic.reference_embeddings(refs, "bench-refs", settings.cache_dir))
    scaled = f" ({len(sem_refs)} pairs, scaled)" if step > 1 else ""
    rows.append((f"semantic{scaled}", t_sem, None, ""))
    rows.append(("  reference embeddings", t_ref_warm, t_ref_cold, "same references, empty cache"))
    rows.append(("  model load", t_load, None, ""))

    total = t_bleu + t_rouge + (t_meteor or 0.0) + t_load + t_sem
    print(f"\n{'metric':<24}{'ours s':>10}{'baseline s':>12}{'ratio':>8}  baseline")
    for name, ours, base, label in rows:
        base_text = f"{base:12.2f}" if base is not None else f"{'':>12}"
        ratio = f"{base / ours:8.1f}" if base else f"{'':>8}"
        print(f"{name:<24}{ours:10.2f}{base_text}{ratio}  {label}")
    print(f"{'total':<24}{total:10.2f}")
    print(
        f"{'one submission':<24}{t_submission:10.2f}{'':>12}{'':>8}  {n_submission} answers, all text metrics, "
        "references cached (model load apart)"
    )
    print(f"load average (1 min) at start {load_before:.1f}, at end {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus")
    print(
        json.dumps(
            {
                **headline,
                "pairs": len(refs),
                "distinct_pairs": unique_pairs,
                "bleu_rouge_s": round(t_bleu + t_rouge, 2),
                "bleu_rouge_naive_s": round(t_naive, 2),
                "ratio_naive_vs_ours_bleu_rouge": round(t_naive / (t_bleu + t_rouge), 2),
                "meteor_s": None if t_meteor is None else round(t_meteor, 2),
                "ratio_naive_vs_ours_meteor": None if t_meteor is None else round(t_meteor_naive / t_meteor, 2),
                "semantic_model_load_s": round(t_load, 2),
                "semantic_s": round(t_sem, 2),
                "semantic_pairs_timed": len(sem_refs),
                "reference_embeddings_cold_s": round(t_ref_cold, 2),
                "reference_embeddings_cached_s": round(t_ref_warm, 3),
                "ratio_cold_vs_cached_references": round(t_ref_cold / max(t_ref_warm, 1e-9), 1),
                "total_s": round(total, 2),
                "torch_threads": torch.get_num_threads(),
                "load_average_1min_start_end": [round(load_before, 1), round(os.getloadavg()[0], 1)],
            }
        )
    )


if __name__ == "__main__":
    main()
