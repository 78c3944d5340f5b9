"""The real-vs-real FID floor: "the FID a perfect generator would score here".

:func:`real_floor` is its one computation (``Evaluator.floor_features`` and the data card call it):
``FLOOR_DRAWS`` draws of n real images from a split in neither reference, each scored against the
reference; every floor the project states comes from it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import torch

log = logging.getLogger(__name__)

FLOOR_DRAWS = 10  # draws behind every real-vs-real floor: fewer give an sd too rough to read a gap by


def floor_pair(floor: dict[str, Any]) -> tuple[float, float]:
    """(mean, sd) of a floor from :meth:`Evaluator.floor_features` or :meth:`Evaluator.floor_from`."""
    return floor["mean"], floor["sd"]


def real_floor(
    frechet: Callable[[torch.Tensor], float],
    real_features: torch.Tensor,
    n: int,
    reference_key: dict[str, Any],
    feature_network: str,
    draws: int = FLOOR_DRAWS,
    seed: int = 0,
    drawn_from: str = "real images in neither reference",
) -> dict[str, Any]:
    """The real-vs-real FID at ``n`` samples against a reference: ``draws`` seeded draws of ``n`` of these
    real features (another split than the reference's), each scored by ``frechet`` (the FID of features
    against the reference). No generator can be expected below it at this n, reference and feature network.

    The draws are disjoint when the pool holds ``draws * n`` samples; otherwise each is its own random
    n-subset of the pool (``disjoint`` False): they share samples, and their sd understates a fresh
    draw's by about sqrt(1 - n / pool). Returns mean, sd (over draws), every draw's FID, n, draws,
    disjoint, pool, seed, drawn_from, the reference (split and n) and the feature network."""
    pool = int(real_features.shape[0])
    if not 2 <= n <= pool:
        raise ValueError(f"the floor at n={n} needs 2 <= n <= the {pool} real samples given")
    if draws < 1:
        raise ValueError(f"a floor needs at least one draw, got draws={draws}")
    if draws < FLOOR_DRAWS:
        log.warning("a floor from %d draws (fewer than %d): its sd is rough", draws, FLOOR_DRAWS)
    g = torch.Generator().manual_seed(seed)
    disjoint = draws * n <= pool
    if disjoint:
        perm = torch.randperm(pool, generator=g)
        picks = [perm[i * n : (i + 1) * n] for i in range(draws)]
    else:
        picks = [torch.randperm(pool, generator=g)[:n] for _ in range(draws)]
    fids = [frechet(real_features[idx]) for idx in picks]
    mean = sum(fids) / len(fids)
    sd = math.sqrt(sum((f - mean) ** 2 for f in fids) / (len(fids) - 1)) if len(fids) > 1 else math.nan
    ref = reference_key
    return {
        "mean": mean,
        "sd": sd,
        "fids": fids,
        "n": n,
        "draws": draws,
        "disjoint": disjoint,
        "pool": pool,
        "seed": seed,
        "drawn_from": drawn_from,
        "reference": {"split": ref.get("split"), "n": ref.get("n"), "dataset": ref.get("dataset")},
        "feature_network": feature_network,
    }
