"""Vectorised video-clustered bootstrap: resampling weights, ratio means and percentile intervals.

Resampling n videos with replacement is the same as giving each video a multinomial weight; a
replicate's mean of a measure is then (weights @ per-video sums) / (weights @ per-video counts),
so all replicates and all measures come from two matrix products.
"""

from __future__ import annotations

import numpy as np

CONFIDENCE = 0.95


def bootstrap_weights(n: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n) float matrix: how often each of n units is drawn in each replicate (rows sum to n)."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(n_boot, n))
    flat = (draws + np.arange(n_boot)[:, None] * n).ravel()
    return np.bincount(flat, minlength=n_boot * n).reshape(n_boot, n).astype(float)


def ratio_means(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """sums / counts elementwise, NaN where a count is 0 (a measure with no value in that sample)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.where(counts > 0, counts, 1.0), np.nan)


def percentile_ci(replicates: np.ndarray, confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval per column of a (n_boot, k) array, ignoring NaN replicates."""
    replicates = np.asarray(replicates, dtype=float)
    if replicates.ndim == 1:
        replicates = replicates.reshape(-1, 1)
    tail = (1.0 - confidence) / 2.0 * 100.0
    q = [tail, 100.0 - tail]
    if not np.isnan(replicates).any():
        lo, hi = np.percentile(replicates, q, axis=0)
        return lo, hi
    out = np.full((2, replicates.shape[1]), np.nan)
    for j in range(replicates.shape[1]):
        column = replicates[:, j]
        column = column[~np.isnan(column)]
        if column.size:
            out[:, j] = np.percentile(column, q)
    return out[0], out[1]
