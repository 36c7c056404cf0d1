"""Lexical overlap metrics: sentence BLEU-1..4, ROUGE-1/2/L F1 and METEOR, reference first.

BLEU is computed here (one pass over the n-gram counts gives all four orders) and equals
``nltk.translate.bleu_score.sentence_bleu`` with uniform cumulative weights and smoothing
``method1`` (epsilon 0.1 for an order with no match) on the same tokens; a test checks that.
Tokens: lower-cased words and numbers (``[a-z0-9]+(?:'[a-z]+)?``), punctuation dropped.
ROUGE uses Google's ``rouge-score`` tokenizer (Porter stemming on) and equals its
``RougeScorer.score`` (a test checks that); n-gram counts are cached per text (references repeat
across models) and ROUGE-L's LCS is bit-parallel. METEOR is nltk's algorithm with
WordNet looked up and each word's synonym set built once per word (nltk rebuilds it for every
pair); a test checks it equals ``single_meteor_score``.

``bleu_official`` / ``rougeL_official`` reproduce the official ``eval_bleu_rouge.py`` per pair: its
functions are called with the model output first, so the output is the reference and the expert
answer the candidate; BLEU on whitespace tokens with case and punctuation kept, nltk's default
weights (cumulative BLEU-4), smoothing ``method1``; ROUGE-L F1 by ``rouge-score`` with the stemmer.
"""

from __future__ import annotations

import itertools
import math
import re
import shutil
import tempfile
import warnings
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

BLEU_METRICS: tuple[str, ...] = ("bleu1", "bleu2", "bleu3", "bleu4")
ROUGE_METRICS: tuple[str, ...] = ("rouge1", "rouge2", "rougeL")
BLEU_SMOOTHING_EPSILON = 0.1
WORDNET_SYSTEM_DIR = Path("/usr/share/wordnet")
METEOR_PARAMETERS = (0.9, 3.0, 0.5)  # nltk's defaults: alpha, beta, gamma

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")

# The lexicographer file list of WordNet 3.0 (``lexnames``): nltk's reader needs this file, which the
# Debian ``wordnet-base`` package does not ship.
_LEXNAMES = [
    "adj.all",
    "adj.pert",
    "adv.all",
    "noun.Tops",
    "noun.act",
    "noun.animal",
    "noun.artifact",
    "noun.attribute",
    "noun.body",
    "noun.cognition",
    "noun.communication",
    "noun.event",
    "noun.feeling",
    "noun.food",
    "noun.group",
    "noun.location",
    "noun.motive",
    "noun.object",
    "noun.person",
    "noun.phenomenon",
    "noun.plant",
    "noun.possession",
    "noun.process",
    "noun.quantity",
    "noun.relation",
    "noun.shape",
    "noun.state",
    "noun.substance",
    "noun.time",
    "verb.body",
    "verb.change",
    "verb.cognition",
    "verb.communication",
    "verb.competition",
    "verb.consumption",
    "verb.contact",
    "verb.creation",
    "verb.emotion",
    "verb.motion",
    "verb.perception",
    "verb.possession",
    "verb.social",
    "verb.stative",
    "verb.weather",
    "adj.ppl",
]
_LEX_POS = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}
_WORDNET_FILES = ("data.noun", "index.noun", "noun.exc", "data.verb", "index.verb", "verb.exc")


@lru_cache(maxsize=65536)
def bleu_tokens(text: str) -> tuple[str, ...]:
    """The BLEU/METEOR tokenisation: lower-cased words and numbers, punctuation dropped."""
    return tuple(_WORD.findall(text.lower()))


@lru_cache(maxsize=65536)
def _ngram_counts(tokens: tuple[str, ...]) -> tuple[Counter, ...]:
    return tuple(Counter(zip(*(tokens[i:] for i in range(n)), strict=False)) for n in range(1, 5))


def _clipped_overlap(a: Counter, b: Counter) -> int:
    """sum over n-grams of min(count in a, count in b), iterating over the smaller counter."""
    if len(a) > len(b):
        a, b = b, a
    return sum(min(count, b[gram]) for gram, count in a.items() if gram in b)


def sentence_bleu_1_to_4(reference: str, candidate: str) -> tuple[float, float, float, float]:
    """Cumulative sentence BLEU-1..4 of one candidate against one reference (smoothing method1)."""
    ref, hyp = bleu_tokens(reference), bleu_tokens(candidate)
    if not hyp or not ref:
        return (0.0, 0.0, 0.0, 0.0)
    ref_counts, hyp_counts = _ngram_counts(ref), _ngram_counts(hyp)
    matches = [_clipped_overlap(ref_counts[n], hyp_counts[n]) for n in range(4)]
    if matches[0] == 0:
        return (0.0, 0.0, 0.0, 0.0)
    log_p = []
    for n in range(4):
        denominator = max(1, len(hyp) - n)
        log_p.append(math.log((matches[n] or BLEU_SMOOTHING_EPSILON) / denominator))
    brevity = 1.0 if len(hyp) > len(ref) else math.exp(1 - len(ref) / len(hyp))
    out = [brevity * math.exp(sum(log_p[:order]) / order) for order in range(1, 5)]
    return (out[0], out[1], out[2], out[3])


def official_bleu(output: str, expert: str) -> float:
    """nltk ``sentence_bleu([output.split()], expert.split(), smoothing_function=method1)``, same arithmetic:
    the official script's argument order (the model output is the reference), tokens as split."""
    ref, hyp = tuple(output.split()), tuple(expert.split())
    if not hyp or not ref:
        return 0.0
    matches = [_clipped_overlap(a, b) for a, b in zip(_ngram_counts(ref), _ngram_counts(hyp), strict=True)]
    if matches[0] == 0:
        return 0.0
    precisions = [(matches[n] or BLEU_SMOOTHING_EPSILON) / max(1, len(hyp) - n) for n in range(4)]
    brevity = 1.0 if len(hyp) > len(ref) else math.exp(1 - len(ref) / len(hyp))
    return brevity * math.exp(math.fsum(0.25 * math.log(p) for p in precisions))


def official_scores(outputs: Sequence[str], experts: Sequence[str]) -> dict[str, list[float]]:
    """``bleu_official`` and ``rougeL_official`` per (model output, expert answer) pair."""
    bleu = [official_bleu(o, e) for o, e in zip(outputs, experts, strict=True)]
    return {"bleu_official": bleu, "rougeL_official": rouge_scores(outputs, experts)["rougeL"]}


def bleu_scores(references: Sequence[str], candidates: Sequence[str]) -> dict[str, list[float]]:
    """BLEU-1..4 for each (reference, candidate) pair."""
    rows = [sentence_bleu_1_to_4(r, c) for r, c in zip(references, candidates, strict=True)]
    return {name: [row[i] for row in rows] for i, name in enumerate(BLEU_METRICS)}


@lru_cache(maxsize=1)
def _memo_porter():
    """nltk's Porter stemmer (what rouge-score uses) with one stem computation per distinct word."""
    from nltk.stem import porter

    class _Memo:
        stem = staticmethod(lru_cache(maxsize=None)(porter.PorterStemmer().stem))

    return _Memo()


@lru_cache(maxsize=65536)
def rouge_tokens(text: str) -> tuple[str, ...]:
    """rouge-score's own tokenisation (lower case, alphanumerics, Porter stems), memoised per text."""
    from rouge_score.tokenize import tokenize

    return tuple(tokenize(text, _memo_porter()))


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence, bit-parallel over ``a`` (Hyyrö 2004).

    One big-integer step per token of ``b`` instead of a len(a) x len(b) table: references are short
    and answers long, so this is what makes ROUGE-L cheap.
    """
    if not a or not b:
        return 0
    masks: dict[str, int] = {}
    for i, token in enumerate(a):
        masks[token] = masks.get(token, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for token in b:
        u = v & masks.get(token, 0)
        v = ((v + u) | (v - u)) & full
    return len(a) - v.bit_count()


def _f1(overlap: float, n_ref: int, n_cand: int) -> float:
    precision, recall = overlap / max(n_cand, 1), overlap / max(n_ref, 1)
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


@lru_cache(maxsize=65536)
def _rouge_ngrams(tokens: tuple[str, ...]) -> tuple[Counter, Counter]:
    return Counter(tokens), Counter(itertools.pairwise(tokens))


def rouge_scores(references: Sequence[str], candidates: Sequence[str]) -> dict[str, list[float]]:
    """ROUGE-1/2/L F1 per pair, equal to ``RougeScorer(use_stemmer=True).score(reference, candidate)``."""
    out: dict[str, list[float]] = {name: [] for name in ROUGE_METRICS}
    for reference, candidate in zip(references, candidates, strict=True):
        ref, cand = rouge_tokens(reference), rouge_tokens(candidate)
        (ref1, ref2), (cand1, cand2) = _rouge_ngrams(ref), _rouge_ngrams(cand)
        out["rouge1"].append(_f1(_clipped_overlap(ref1, cand1), len(ref), len(cand)))
        out["rouge2"].append(_f1(_clipped_overlap(ref2, cand2), max(len(ref) - 1, 0), max(len(cand) - 1, 0)))
        if ref and cand:
            lcs = lcs_length(ref, cand)
            out["rougeL"].append(_f1(lcs, len(ref), len(cand)))
        else:
            out["rougeL"].append(0.0)
    return out


def _nltk_wordnet_installed() -> bool:
    import nltk

    for name in ("corpora/wordnet", "corpora/wordnet.zip"):
        try:
            nltk.data.find(name)
        except LookupError:
            continue
        return True
    return False


def _system_wordnet_present() -> bool:
    return all((WORDNET_SYSTEM_DIR / name).exists() for name in _WORDNET_FILES)


def _system_wordnet_root(cache_dir: Path) -> Path | None:
    """An nltk-readable copy of Debian's WordNet 3.0 (its files plus the missing ``lexnames``).

    A copy, not links: nltk refuses corpus files that resolve outside the corpus root.
    """
    if not _system_wordnet_present():
        return None
    root = cache_dir / "wordnet-3.0"
    if (root / "lexnames").exists():
        return root
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".wordnet-", dir=cache_dir))
    try:
        for source in WORDNET_SYSTEM_DIR.iterdir():
            if source.is_file():
                shutil.copyfile(source, staging / source.name)
        lines = [f"{i:02d}\t{name}\t{_LEX_POS[name.split('.')[0]]}\n" for i, name in enumerate(_LEXNAMES)]
        (staging / "lexnames").write_text("".join(lines))
        staging.rename(root)
    except OSError:
        if not (root / "lexnames").exists():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root


def wordnet_status() -> str:
    """ "ok" when METEOR can find WordNet data offline, else why not and what to install."""
    if _nltk_wordnet_installed() or _system_wordnet_present():
        return "ok"
    return (
        "unavailable: WordNet data not installed (apt-get install wordnet-base, or python -m nltk.downloader wordnet)"
    )


class _CachedWordNet:
    """The WordNet call METEOR makes, memoised per word (the reader re-parses on every call)."""

    def __init__(self, reader) -> None:
        self._reader = reader
        self.synsets = lru_cache(maxsize=65536)(self._lookup)
        self.synonyms = lru_cache(maxsize=65536)(self._synonyms)

    def _lookup(self, word: str) -> tuple:
        return tuple(_LemmaNames(s) for s in self._reader.synsets(word))

    def _synonyms(self, word: str) -> frozenset[str]:
        """The set nltk's METEOR builds for a hypothesis word: its underscore-free lemma names, and itself."""
        names = (lemma.name() for synset in self.synsets(word) for lemma in synset.lemmas())
        return frozenset(name for name in names if "_" not in name) | {word}


class _LemmaNames:
    """A synset reduced to what METEOR reads: ``lemmas()`` with ``name()``."""

    __slots__ = ("_lemmas",)

    def __init__(self, synset) -> None:
        self._lemmas = tuple(_Name(lemma.name()) for lemma in synset.lemmas())

    def lemmas(self) -> tuple:
        return self._lemmas


class _Name:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def name(self) -> str:
        return self._name


class _CachedStemmer:
    def __init__(self) -> None:
        from nltk.stem.porter import PorterStemmer

        self.stem = lru_cache(maxsize=65536)(PorterStemmer().stem)


@lru_cache(maxsize=4)
def _meteor_resources(cache_dir: Path) -> tuple[_CachedWordNet, _CachedStemmer]:
    if _nltk_wordnet_installed():
        from nltk.corpus import wordnet as reader
    else:
        from nltk.corpus.reader.wordnet import WordNetCorpusReader

        root = _system_wordnet_root(cache_dir)
        if root is None:
            raise LookupError("WordNet data not installed")
        import nltk

        if str(root) not in nltk.data.path:
            nltk.data.path.append(str(root))  # nltk reads corpora only under its data path

        class _WordNet30Reader(WordNetCorpusReader):
            def map_wn(self, version: str = "wordnet") -> None:
                return None  # this is WordNet 3.0 itself: no mapping to the nltk corpus needed

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "multilingual functions are not available": not needed
            reader = _WordNet30Reader(str(root), None)
    return _CachedWordNet(reader), _CachedStemmer()


def _synonym_match(hyp: list[tuple[int, str]], ref: list[tuple[int, str]], wordnet: _CachedWordNet) -> list:
    """nltk's ``_enum_wordnetsyn_match`` matches, with each word's synonym set built once, not once per pair.

    Same walk as nltk (hypothesis words last to first, each taking the reference word with the
    highest remaining position among its synonyms); only synonyms present in the reference are
    visited, which cannot change the choice (distinct words have distinct positions).
    """
    positions: dict[str, list[int]] = {}
    for j, (_, word) in enumerate(ref):
        positions.setdefault(word, []).append(j)
    matches = []
    for i in range(len(hyp) - 1, -1, -1):
        best_j, best_word = -1, None
        for syn in wordnet.synonyms(hyp[i][1]).intersection(positions):
            slots = positions[syn]
            if slots and slots[-1] > best_j:
                best_j, best_word = slots[-1], syn
        if best_word is not None:
            positions[best_word].pop()
            matches.append((hyp[i][0], ref[best_j][0]))
    return matches


def single_meteor(reference: Sequence[str], hypothesis: Sequence[str], stemmer, wordnet: _CachedWordNet) -> float:
    """nltk's ``single_meteor_score`` (alpha 0.9, beta 3, gamma 0.5) on lower-case tokens, same value."""
    from nltk.translate.meteor_score import _count_chunks, _enum_stem_match, _match_enums

    hyp, ref = list(enumerate(hypothesis)), list(enumerate(reference))
    exact, hyp_left, ref_left = _match_enums(hyp, ref)
    stem, hyp_left, ref_left = _enum_stem_match(hyp_left, ref_left, stemmer=stemmer)
    matches = sorted(exact + stem + _synonym_match(hyp_left, ref_left, wordnet), key=lambda pair: pair[0])
    if not matches:
        return 0.0
    alpha, beta, gamma = METEOR_PARAMETERS
    precision, recall = len(matches) / len(hyp), len(matches) / len(ref)
    fmean = (precision * recall) / (alpha * precision + (1 - alpha) * recall)
    penalty = gamma * (_count_chunks(matches) / len(matches)) ** beta
    return (1 - penalty) * fmean


def meteor_scores(references: Sequence[str], candidates: Sequence[str], cache_dir: Path) -> list[float]:
    """nltk METEOR (alpha 0.9, beta 3, gamma 0.5) per pair; call only when :func:`wordnet_status` is ok."""
    wordnet, stemmer = _meteor_resources(cache_dir)
    out = []
    for reference, candidate in zip(references, candidates, strict=True):
        ref, hyp = bleu_tokens(reference), bleu_tokens(candidate)
        if not ref or not hyp:
            out.append(0.0)
            continue
        out.append(float(single_meteor(ref, hyp, stemmer, wordnet)))
    return out
