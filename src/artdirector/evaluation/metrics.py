"""The distances behind an evaluator's report, as functions of feature tensors (N, d).

FID and KID are torchmetrics' ``FrechetInceptionDistance`` / ``KernelInceptionDistance``; they receive the
already extracted features through a pass-through ``feature=`` module (:class:`Precomputed`), so no metric
extracts features again. KID is torchmetrics' value as it is, with no scaling: with LeNet features
(unnormalised ReLU activations) it runs into the hundreds and thousands, with Inception features it is of
order 1e-3 to 1e-1.

Precision, recall and the realism score follow Kynkaanniemi et al. 2019, "Improved Precision and Recall
Metric for Assessing Generative Models", https://arxiv.org/abs/1904.06991 (k = 3 by default), with equal
real and generated counts as in the paper: the larger side is subsampled (seeded) to the smaller one's n.

FID's bootstrap standard error resamples the generated features with replacement against fixed reference
moments and recomputes FID in closed form (:func:`frechet_distance`; Efron & Tibshirani 1993).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator

import torch
from torch import nn
from torchmetrics.image.kid import KernelInceptionDistance

log = logging.getLogger(__name__)

# a reference's moments for the closed-form FID: the mean, the symmetric square root of the covariance and
# its trace (float64)
Moments = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class Precomputed(nn.Module):
    """A torchmetrics ``feature=`` module for features that were already extracted."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def pairwise_chunks(
    a: torch.Tensor, b: torch.Tensor, chunk: int = 1024
) -> Iterator[tuple[int, torch.Tensor]]:
    """(first row, distances of ``chunk`` rows of ``a`` to every row of ``b``), bounding the memory."""
    for i in range(0, a.shape[0], chunk):
        yield i, torch.cdist(a[i : i + chunk], b)


def knn_radii(features: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each sample to its k-th nearest other sample in the same set."""
    if features.shape[0] <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} samples, got {features.shape[0]}")
    radii = torch.empty(features.shape[0], dtype=features.dtype)
    for i, d in pairwise_chunks(features, features):
        radii[i : i + d.shape[0]] = d.topk(k + 1, dim=1, largest=False).values[:, k]  # column 0 is the sample
    return radii


def sqrt_psd(sigma: torch.Tensor) -> torch.Tensor:
    """The symmetric square root of a covariance matrix (float64, eigenvalues clamped at 0)."""
    vals, vecs = torch.linalg.eigh(sigma)
    return (vecs * vals.clamp_min(0).sqrt()) @ vecs.T


def moments(real: torch.Tensor) -> Moments:
    """The reference moments :func:`frechet_distance` reads, computed once per reference."""
    real = real.double()
    sigma = torch.cov(real.T)
    return real.mean(0), sqrt_psd(sigma), torch.trace(sigma)


def frechet_distance(mu_r, sqrt_sigma_r, trace_r, mu_f, sigma_f) -> float:
    """||mu_r - mu_f||^2 + tr(S_r) + tr(S_f) - 2 tr((S_r^1/2 S_f S_r^1/2)^1/2), all float64.

    tr((S_r S_f)^1/2) equals the trace term through the symmetric form, whose eigenvalues ``eigvalsh``
    finds quickly and stably."""
    m = sqrt_sigma_r @ sigma_f @ sqrt_sigma_r
    cross = torch.linalg.eigvalsh((m + m.T) / 2).clamp_min(0).sqrt().sum()
    return float((mu_r - mu_f).pow(2).sum() + trace_r + torch.trace(sigma_f) - 2 * cross)


def bootstrap_indices(n: int, replicates: int, seed: int) -> torch.Tensor:
    """(B, n) indices drawn with replacement, seeded (the same draw for the same n and seed)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, n, (replicates, n), generator=g)


def bootstrap_fids(reference: Moments, fake: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """FID of ``fake[idx]`` for each row of ``indices`` against the fixed reference moments."""
    mu_r, sqrt_r, trace_r = reference
    fake = fake.double()
    out = []
    for idx in indices:
        x = fake[idx]
        out.append(frechet_distance(mu_r, sqrt_r, trace_r, x.mean(0), torch.cov(x.T)))
    return torch.tensor(out, dtype=torch.float64)


def frechet(reference: Moments, fake: torch.Tensor) -> float:
    """FID of these features against the reference moments (the closed form torchmetrics computes)."""
    return float(bootstrap_fids(reference, fake, torch.arange(fake.shape[0])[None])[0])


def fid_difference(
    reference: Moments, before: torch.Tensor, after: torch.Tensor, paired: bool, replicates: int, seed: int
) -> tuple[float, float]:
    """FID(before) - FID(after) (positive: ``after`` is better) and the bootstrap standard error of that
    difference over ``replicates`` draws: shared resampling indices when the sets are paired sample by
    sample (the same latents refined), independent ones (``seed + 1``) otherwise."""
    gain = frechet(reference, before) - frechet(reference, after)
    idx_b = bootstrap_indices(before.shape[0], replicates, seed)
    idx_a = (
        idx_b
        if paired and before.shape[0] == after.shape[0]
        else bootstrap_indices(after.shape[0], replicates, seed + 1)
    )
    diff = bootstrap_fids(reference, before, idx_b) - bootstrap_fids(reference, after, idx_a)
    return gain, float(diff.std()) if len(diff) > 1 else math.nan


def kid(real: torch.Tensor, fake: torch.Tensor, subsets: int, subset_size: int) -> tuple[float, float]:
    """KID's mean and std over ``subsets`` random subsets (drawn from the global RNG: seed it around the
    call) of at most ``subset_size``, and of at most half of each set when there are several subsets, or
    all subsets would be the same set."""
    size = min(subset_size, fake.shape[0], real.shape[0])
    if subsets > 1:
        size = min(size, fake.shape[0] // 2, real.shape[0] // 2)
    metric = KernelInceptionDistance(
        feature=Precomputed(real.shape[1]), subsets=subsets, subset_size=size, sync_on_compute=False
    )
    metric.update(real, real=True)
    metric.update(fake, real=False)
    mean, std = (float(v) for v in metric.compute())
    return mean, std


def precision_recall(
    real: torch.Tensor,
    fake: torch.Tensor,
    k: int,
    seed: int,
    real_radii: dict[int, tuple[torch.Tensor, torch.Tensor]],
) -> tuple[float, float, torch.Tensor, int]:
    """Precision, recall, each generated sample's realism, and n: precision and recall from n real and
    n generated samples, n the smaller count, the larger side subsampled (seeded, so the same sets give
    the same numbers); realism scores every generated sample against the n real ones. ``real_radii`` caches
    the real subset and its k-NN radii per n (the caller keeps it for its reference)."""
    n = min(real.shape[0], fake.shape[0])
    if n <= k:  # k-NN manifolds need more than k samples on each side: no number rather than a crash
        log.warning(
            "precision/recall need more than k=%d samples on each side, got %d: reported as NaN", k, n
        )
        return math.nan, math.nan, torch.full((fake.shape[0],), math.nan), 0
    if n not in real_radii:  # a fixed random subset of the reference per n
        subset = torch.randperm(real.shape[0], generator=torch.Generator().manual_seed(seed))[:n]
        real_radii[n] = (real[subset], knn_radii(real[subset], k))
    real, real_r = real_radii[n]
    if fake.shape[0] > n:
        pick = torch.randperm(fake.shape[0], generator=torch.Generator().manual_seed(seed + 1))[:n]
        fake_pr = fake[pick]
    else:
        fake_pr = fake
    fake_r = knn_radii(fake_pr, k)
    in_real = torch.zeros(fake_pr.shape[0], dtype=torch.bool)
    for i, d in pairwise_chunks(fake_pr, real):
        in_real[i : i + d.shape[0]] = (d <= real_r).any(dim=1)
    in_fake = torch.zeros(real.shape[0], dtype=torch.bool)
    for i, d in pairwise_chunks(real, fake_pr):
        in_fake[i : i + d.shape[0]] = (d <= fake_r).any(dim=1)
    # realism uses the real samples whose radius is at most the median (the paper drops the outer half)
    keep = real_r <= real_r.median()
    realism = torch.empty(fake.shape[0])
    for i, d in pairwise_chunks(fake, real[keep]):
        realism[i : i + d.shape[0]] = (real_r[keep] / d.clamp_min(1e-12)).max(dim=1).values
    return in_real.float().mean().item(), in_fake.float().mean().item(), realism, n
