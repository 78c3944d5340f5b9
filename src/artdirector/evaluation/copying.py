"""Are the samples copies? The copy rate of a sample set against the training images.

Each generated sample's distance to its nearest training image (in the evaluator's feature space) is set
against the same distance for *held-out* real images (the report split), which the model never saw: real
images that are new are this far from the training set. A sample closer to a training image than the 1st
percentile of the held-out-to-train distances is closer than 99 % of genuinely new images ever are: a
likely copy. The **copy rate** is the share of such samples: about 1 % for a generator whose samples are
as new as held-out images (by construction of the threshold), 100 % for one that returns training images.

This is the two-sample idea of Meehan, Chaudhuri and Dasgupta 2020, "A Non-Parametric Test to Detect
Data-Copying in Generative Models" (AISTATS, https://arxiv.org/abs/2002.05772), which compares the
generated-to-train and test-to-train nearest-neighbour distance distributions (their Mann-Whitney
statistic is ``p_closer`` below); the per-sample flag is in the spirit of the authenticity of Alaa, van
Breugel, Saveliev and van der Schaar 2022, "How Faithful is your Synthetic Data?" (ICML,
https://arxiv.org/abs/2102.08921). Carlini et al. 2023, "Extracting Training Data from Diffusion Models"
(USENIX Security, https://arxiv.org/abs/2301.13188) and Somepalli et al. 2023, "Diffusion Art or Digital
Forgery?" (CVPR, https://arxiv.org/abs/2212.03860) show that such copies happen, and that the closest
pairs must be looked at: :func:`save_pairs_grid` draws them.

Uncertainty: the rate comes with a bootstrap standard error that resamples the samples *and* the
held-out images (so the threshold's own noise, from about ``0.01 * n_heldout`` distances, is in it), the
plain binomial standard error, and a Wilson 95 % interval (which stays honest at 0 % and 100 %).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from artdirector.io import save_grid

if TYPE_CHECKING:
    from artdirector.evaluation.evaluator import Evaluator


def nearest_neighbours(
    query: torch.Tensor, reference: torch.Tensor, chunk: int = 1024, exclude_self: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each query row's Euclidean distance to its nearest reference row and that row's index, with
    ``torch.cdist`` on ``chunk`` queries at a time (memory: ``chunk * len(reference)`` floats).
    ``exclude_self``: query and reference are the same set; a row is not its own neighbour."""
    if query.ndim != 2 or reference.ndim != 2 or query.shape[1] != reference.shape[1]:
        raise ValueError(
            f"expected (N, d) and (M, d) features, got {tuple(query.shape)} and {tuple(reference.shape)}"
        )
    if reference.shape[0] == 0 or (exclude_self and reference.shape[0] < 2):
        raise ValueError("nearest neighbours need a non-empty reference set")
    query, reference = query.float(), reference.float()
    dist = torch.empty(query.shape[0])
    index = torch.empty(query.shape[0], dtype=torch.long)
    for i in range(0, query.shape[0], chunk):
        d = torch.cdist(query[i : i + chunk], reference)
        if exclude_self:
            rows = torch.arange(d.shape[0])
            d[rows, rows + i] = math.inf
        dist[i : i + d.shape[0]], index[i : i + d.shape[0]] = d.min(dim=1)
    return dist.clamp_min(0), index


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion ``k / n`` (95 % for z = 1.96)."""
    if n == 0:
        return math.nan, math.nan
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    lo, hi = max(0.0, centre - half), min(1.0, centre + half)
    return (0.0 if k == 0 else lo), (1.0 if k == n else hi)


@dataclass
class CopyReport:
    """The copy rate of one sample set, its uncertainty, and the closest sample/train pairs."""

    copy_rate: float  # share of samples with a nearest-train distance <= threshold
    se: float  # bootstrap SE over samples and held-out images (the threshold re-estimated each time)
    binomial_se: float  # sqrt(p (1 - p) / n_samples): the samples' share alone
    ci95: tuple[float, float]  # Wilson interval of copy_rate over n_samples
    threshold: float  # the `quantile` of the held-out-to-train nearest-neighbour distances
    quantile: float
    n_samples: int
    n_train: int  # training images searched
    n_heldout: int  # held-out real images that set the threshold
    heldout_rate: float  # share of held-out images at or below the threshold (about `quantile`)
    p_closer: float  # P(sample NN distance < held-out NN distance): 0.5 no copying, > 0.5 copying
    sample_median: float  # median nearest-train distance of the samples
    heldout_median: float  # ... and of the held-out images
    closest: list[tuple[int, int, float]]  # (sample index, train index, distance), closest first
    sample_distance: torch.Tensor = field(repr=False)  # (n_samples,)
    sample_index: torch.Tensor = field(repr=False)  # (n_samples,) index of the nearest train image
    heldout_distance: torch.Tensor = field(repr=False)  # (n_heldout,)

    def summary(self) -> dict[str, Any]:
        """The JSON-ready numbers (no per-sample tensors)."""
        return {
            "copy_rate": self.copy_rate,
            "se": self.se,
            "binomial_se": self.binomial_se,
            "ci95": list(self.ci95),
            "threshold": self.threshold,
            "quantile": self.quantile,
            "n_samples": self.n_samples,
            "n_train": self.n_train,
            "n_heldout": self.n_heldout,
            "heldout_rate": self.heldout_rate,
            "p_closer": self.p_closer,
            "sample_median_distance": self.sample_median,
            "heldout_median_distance": self.heldout_median,
            "closest": [{"sample": s, "train": t, "distance": d} for s, t, d in self.closest],
        }


def _rate(sample_d: torch.Tensor, heldout_d: torch.Tensor, quantile: float) -> tuple[float, float]:
    threshold = float(torch.quantile(heldout_d.double(), quantile))
    return float((sample_d <= threshold).double().mean()), threshold


def copy_rate(
    samples: torch.Tensor,
    train: torch.Tensor,
    heldout: torch.Tensor,
    quantile: float = 0.01,
    k_pairs: int = 16,
    n_bootstrap: int = 200,
    seed: int = 0,
    chunk: int = 1024,
) -> CopyReport:
    """The copy rate of generated ``samples`` against ``train`` features, the threshold set by ``heldout``
    real features (images the model never saw, of the same distribution); all three (N, d) in one feature
    space. ``k_pairs`` closest sample/train pairs are listed. See the module docstring for the method and
    its sources (Meehan et al. 2020, Alaa et al. 2022, Carlini et al. 2023, Somepalli et al. 2023)."""
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    for name, x in (("samples", samples), ("train", train), ("held-out", heldout)):
        if x.ndim != 2 or x.shape[0] == 0:
            raise ValueError(f"the copy rate needs (N, d) {name} features with N >= 1, got {tuple(x.shape)}")
    sample_d, sample_i = nearest_neighbours(samples, train, chunk)
    heldout_d, _ = nearest_neighbours(heldout, train, chunk)
    rate, threshold = _rate(sample_d, heldout_d, quantile)
    n = sample_d.shape[0]
    g = torch.Generator().manual_seed(seed)
    reps = [
        _rate(
            sample_d[torch.randint(0, n, (n,), generator=g)],
            heldout_d[torch.randint(0, len(heldout_d), (len(heldout_d),), generator=g)],
            quantile,
        )[0]
        for _ in range(n_bootstrap)
    ]
    se = float(torch.tensor(reps, dtype=torch.float64).std()) if n_bootstrap > 1 else math.nan
    # Mann-Whitney: the share of (sample, held-out) pairs where the sample is the closer one, ties halved
    ordered = heldout_d.sort().values
    above = len(ordered) - torch.searchsorted(ordered, sample_d, right=True)
    ties = torch.searchsorted(ordered, sample_d, right=True) - torch.searchsorted(ordered, sample_d)
    p_closer = float((above.double() + 0.5 * ties.double()).sum() / (n * len(ordered)))
    order = sample_d.argsort()[:k_pairs]
    return CopyReport(
        copy_rate=rate,
        se=se,
        binomial_se=math.sqrt(rate * (1 - rate) / n),
        ci95=wilson_interval(round(rate * n), n),
        threshold=threshold,
        quantile=quantile,
        n_samples=n,
        n_train=int(train.shape[0]),
        n_heldout=int(heldout.shape[0]),
        heldout_rate=float((heldout_d <= threshold).double().mean()),
        p_closer=p_closer,
        sample_median=float(sample_d.median()),
        heldout_median=float(heldout_d.median()),
        closest=[(int(i), int(sample_i[i]), float(sample_d[i])) for i in order],
        sample_distance=sample_d,
        sample_index=sample_i,
        heldout_distance=heldout_d,
    )


def save_pairs_grid(left: torch.Tensor, right: torch.Tensor, path: str | Path, per_row: int = 8) -> Path:
    """A PNG of image pairs in [-1, 1]: rows of ``per_row`` ``left`` images (e.g. samples), each row
    followed by a row of their partners from ``right`` (e.g. the nearest training images). Written
    atomically."""
    if left.shape != right.shape or left.ndim != 4 or left.shape[0] == 0:
        raise ValueError(
            f"pairs need two equal (N, C, H, W) batches, got {tuple(left.shape)} and {tuple(right.shape)}"
        )
    per_row = max(1, min(per_row, left.shape[0]))
    rows = []
    for i in range(0, left.shape[0], per_row):
        a, b = left[i : i + per_row], right[i : i + per_row]
        if a.shape[0] < per_row:  # pad the last rows with mid-grey, so that pairs stay one above the other
            pad = torch.zeros(per_row - a.shape[0], *a.shape[1:], dtype=a.dtype)
            a, b = torch.cat([a, pad]), torch.cat([b, pad])
        rows += [a, b]
    return save_grid(torch.cat(rows).float().clamp(-1, 1), path, nrow=per_row)


def copy_check(
    evaluator: Evaluator,
    datamodule,
    samples: torch.Tensor,
    features: torch.Tensor,
    grid: Path | None,
    n_train: int | None = None,
    quantile: float = 0.01,
    k_pairs: int = 16,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """The copy rate of ``samples`` (their ``features`` already extracted) against the first ``n_train``
    training images (all: None; cached as reference features), the threshold set by the evaluator's
    reference when it is the report split (else the report split itself), and a grid of the
    ``k_pairs`` closest sample/train pairs written to ``grid``. JSON-ready."""
    n_total = datamodule.num_images("train")
    n_train = n_total if n_train is None else min(n_train, n_total)
    train, _ = evaluator.split_features(datamodule, "train", n_train, progress=progress)
    key = evaluator.reference_key or {}
    if key.get("split") == "report" and evaluator.real_features is not None:
        heldout = evaluator.real_features
    else:
        heldout, _ = evaluator.split_features(datamodule, "report", progress=progress)
    rep = copy_rate(features, train, heldout, quantile=quantile, k_pairs=k_pairs, seed=seed)
    if grid is not None and rep.closest:
        save_pairs_grid(
            samples[[s for s, _, _ in rep.closest]].cpu(),
            datamodule.images_at("train", [t for _, t, _ in rep.closest]),
            grid,
        )
    return {
        **rep.summary(),
        "n_train_total": n_total,
        "heldout_split": "report",
        "feature_network": evaluator.identity,
        "pairs_grid": str(grid) if grid is not None else None,
        "note": (
            "share of samples at most `threshold` from a training image, the `quantile` of held-out "
            "real images' nearest-train distances; about `quantile` for new images, 1 for copies"
            + (
                f"; only {n_train} of {n_total} training images searched: copies of the others are missed"
                if n_train < n_total
                else ""
            )
        ),
    }
