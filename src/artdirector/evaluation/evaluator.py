"""The evaluator: one feature pass feeds FID, KID, precision/recall and per-sample scores.

FID and KID are torchmetrics' ``FrechetInceptionDistance`` / ``KernelInceptionDistance``; they receive the
already extracted features through a pass-through ``feature=`` module, so no metric extracts features
again. Precision, recall and the realism score follow Kynkaanniemi et al. 2019, "Improved Precision and
Recall Metric for Assessing Generative Models", https://arxiv.org/abs/1904.06991 (k = 3), with equal real
and generated counts as in the paper: the larger side is subsampled (seeded) to the smaller one's n, and
the report states that n (``n_pr``).

KID is torchmetrics' value as it is, with no scaling: with LeNet features (unnormalised ReLU activations)
it runs into the hundreds and thousands, with Inception features it is of order 1e-3 to 1e-1.

The real-vs-real floor (:meth:`Evaluator.floor_features`) is the one computation of "the FID a perfect
generator would score here": ``FLOOR_DRAWS`` draws of n real images from a split in neither reference,
each against this evaluator's reference; every floor the project states comes from it.

Every FID comes with a bootstrap standard error over the generated samples (the reference's moments are
fixed): resample the generated features with replacement, recompute FID, take the standard deviation
(Efron & Tibshirani 1993). :meth:`Evaluator.bootstrap_fids` exposes the replicates, so that a decision can
bootstrap a *difference* of two FIDs with shared indices when the two sets are paired.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from artdirector.evaluation.features import check_images
from artdirector.evaluation.reference import ReferenceCache

log = logging.getLogger(__name__)

FLOOR_DRAWS = 10  # draws behind every real-vs-real floor: fewer give an sd too rough to read a gap by


def floor_pair(floor: dict[str, Any]) -> tuple[float, float]:
    """(mean, sd) of a floor from :meth:`Evaluator.floor_features` or :meth:`Evaluator.floor_from`."""
    return floor["mean"], floor["sd"]


class _Precomputed(nn.Module):
    """A torchmetrics ``feature=`` module for features that were already extracted."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def _pairwise_chunks(a: torch.Tensor, b: torch.Tensor, chunk: int = 1024):
    for i in range(0, a.shape[0], chunk):
        yield i, torch.cdist(a[i : i + chunk], b)


def knn_radii(features: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each sample to its k-th nearest other sample in the same set."""
    if features.shape[0] <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} samples, got {features.shape[0]}")
    radii = torch.empty(features.shape[0], dtype=features.dtype)
    for i, d in _pairwise_chunks(features, features):
        radii[i : i + d.shape[0]] = d.topk(k + 1, dim=1, largest=False).values[:, k]  # column 0 is the sample
    return radii


def _sqrt_psd(sigma: torch.Tensor) -> torch.Tensor:
    """The symmetric square root of a covariance matrix (float64, eigenvalues clamped at 0)."""
    vals, vecs = torch.linalg.eigh(sigma)
    return (vecs * vals.clamp_min(0).sqrt()) @ vecs.T


def frechet_distance(mu_r, sqrt_sigma_r, trace_r, mu_f, sigma_f) -> float:
    """||mu_r - mu_f||^2 + tr(S_r) + tr(S_f) - 2 tr((S_r^1/2 S_f S_r^1/2)^1/2), all float64.

    tr((S_r S_f)^1/2) equals the trace term through the symmetric form, whose eigenvalues ``eigvalsh``
    finds quickly and stably."""
    m = sqrt_sigma_r @ sigma_f @ sqrt_sigma_r
    cross = torch.linalg.eigvalsh((m + m.T) / 2).clamp_min(0).sqrt().sum()
    return float((mu_r - mu_f).pow(2).sum() + trace_r + torch.trace(sigma_f) - 2 * cross)


@dataclass
class Report:
    """Batch metrics and per-sample scores for one set of generated images."""

    fid: float
    fid_se: float  # bootstrap standard error of ``fid`` over the generated samples
    kid: float
    kid_std: float
    precision: float
    recall: float
    n_fake: int
    n_real: int
    n_pr: int  # real and generated samples behind precision/recall (equal counts; 0 when not measured)
    feature_net: str
    seconds: float
    realism: torch.Tensor = field(
        repr=False
    )  # (N,) Kynkaanniemi realism score, > 1: inside the real manifold
    confidence: torch.Tensor | None = field(default=None, repr=False)  # (N,) max softmax of the classifier
    labels: torch.Tensor | None = field(default=None, repr=False)  # (N,) classifier's predicted class
    features: torch.Tensor | None = field(default=None, repr=False)  # (N, d) the generated features

    def metrics(self) -> dict[str, float]:
        return {
            k: v for k, v in asdict(self).items() if isinstance(v, int | float) and not isinstance(v, bool)
        }


class Evaluator:
    """FID, KID, precision/recall and per-sample scores of generated images against reference features.

    Args:
        feature_net: an ``nn.Module`` with ``num_features`` (``InceptionFeatures``, ``LeNetFeatures``). Images of
            any size it reads: Inception resizes to 299 px; the LeNet reads 28 px images, and square multiples
            of 28 (super-resolved samples) through an area-downsampled 28 px copy.
        name: short name used in file names and logs (``inception``, ``lenet``).
        classifier: optional module for per-sample confidence; if ``feature_net`` has
            ``logits_from_features`` that is used instead (no second pass).
        kid_subsets, kid_subset_size: KID is averaged over random subsets, of at most half the smaller
            sample count (so that subsets differ and KID's std means something).
        pr_k: the k of the k-NN manifolds for precision/recall/realism; precision/recall use equal counts
            of real and generated samples: a seeded random subset of whichever side is larger (``n_pr``).
        n_bootstrap: bootstrap replicates for FID's standard error (0: none).
        batch_size: images per feature-network forward.
        cache_dir: where reference features are cached (None: no cache).
        seed: seeds KID's subset draws, so a report is repeatable.
    """

    def __init__(
        self,
        feature_net: nn.Module,
        name: str,
        classifier: nn.Module | None = None,
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        pr_k: int = 3,
        batch_size: int = 250,
        cache_dir: str | None = None,
        seed: int = 0,
        n_bootstrap: int = 50,
    ) -> None:
        if not isinstance(getattr(feature_net, "num_features", None), int):
            raise TypeError("feature_net needs an integer `num_features` attribute")
        self.feature_net = feature_net
        self.classifier = classifier
        self.name = name
        self.kid_subsets, self.kid_subset_size, self.pr_k = kid_subsets, kid_subset_size, pr_k
        self.batch_size = batch_size
        self.cache = ReferenceCache(cache_dir)
        self.seed = seed
        self.n_bootstrap = n_bootstrap
        self.real_features: torch.Tensor | None = None
        self.reference_key: dict[str, Any] | None = None
        self.fid: FrechetInceptionDistance | None = None
        self._real_radii: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self._real_moments: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def copy_for(self, datamodule, split: str, n: int | None = None, progress: bool = False) -> Evaluator:
        """A second evaluator on the same feature network with its reference from another split (e.g. the
        report split beside the selection split); it shares no metric state with this one."""
        other = copy.copy(self)
        other.set_reference_from(datamodule, split, n, progress=progress)
        return other

    @property
    def device(self) -> torch.device:
        return next(self.feature_net.parameters()).device

    def to(self, device: str | torch.device) -> Evaluator:
        """Move the networks; metric states stay on the CPU in float64."""
        self.feature_net.to(device)
        if self.classifier is not None:
            self.classifier.to(device)
        return self

    @property
    def identity(self) -> str:
        return getattr(self.feature_net, "identity", type(self.feature_net).__name__)

    # ---- features -------------------------------------------------------------------------------
    @torch.no_grad()
    def features(
        self, images: torch.Tensor, progress: bool = False, description: str = "features"
    ) -> torch.Tensor:
        """(N, num_features) float32 CPU features of images in [-1, 1], ``batch_size`` at a time."""
        check_images(images)
        chunks = images.split(self.batch_size)
        if progress:
            from rich.progress import track

            chunks = track(chunks, description=f"{description} ({self.name}, {images.shape[0]} images)")
        device = self.device
        return torch.cat([self.feature_net(c.to(device)).float().cpu() for c in chunks])

    # ---- reference ------------------------------------------------------------------------------
    def set_reference(
        self, images: torch.Tensor, dataset: str | None = None, split: str = "report", progress: bool = False
    ) -> torch.Tensor:
        """Real features from ``images``; cached on disk under (dataset, split, feature net, n) if ``dataset``."""
        key = {"dataset": dataset, "split": split, "feature_net": self.identity, "n": int(images.shape[0])}

        def build() -> torch.Tensor:
            return self.features(images, progress=progress, description=f"reference {dataset}/{split}")

        feats = self.cache.load_or_build(key, build) if dataset is not None else build()
        self._use_reference(feats, key)
        return feats

    def set_reference_from(
        self, datamodule, split: str = "report", n: int | None = None, progress: bool = False
    ) -> torch.Tensor:
        """Reference features from the first ``n`` images of a data module's split, cached on disk."""
        dataset = datamodule.describe()
        available = datamodule.num_images(split)  # counting only: the images load on a cache miss
        if n is not None and n > available:
            log.warning(
                "reference: asked for %d real %s images but %s has %d; using %d (compare FIDs only at "
                "equal n)",
                n,
                split,
                dataset,
                available,
                available,
            )
        n = available if n is None else min(n, available)
        feats, key = self.split_features(datamodule, split, n, progress=progress)
        self._use_reference(feats, key)
        return feats

    def split_features(
        self, datamodule, split: str, n: int | None = None, progress: bool = False
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        """Features of the first ``n`` images (all: None) of a data module's split and their cache key,
        through the reference cache (the same entries ``set_reference_from`` uses); sets no reference."""
        dataset = datamodule.describe()
        n = datamodule.num_images(split) if n is None else n
        key = {"dataset": dataset, "split": split, "feature_net": self.identity, "n": n}
        feats = self.cache.load_or_build(
            key,
            lambda: self.features(
                datamodule.real_images(split, n),
                progress=progress,
                description=f"reference {dataset}/{split}",
            ),
        )
        return feats, key

    def _use_reference(self, feats: torch.Tensor, key: dict[str, Any]) -> None:
        self.real_features, self.reference_key = feats, key
        # the real moments are accumulated once; reset() between evaluations keeps them
        # sync_on_compute=False: an evaluator scores what this process holds; under DDP only rank 0 evaluates
        # (a sync would wait for ranks that never compute, or gather duplicated samples if they all did)
        self.fid = FrechetInceptionDistance(
            feature=_Precomputed(feats.shape[1]), reset_real_features=False, sync_on_compute=False
        )
        self.fid.update(feats, real=True)
        self._real_radii = {}
        real = feats.double()
        sigma = torch.cov(real.T)
        self._real_moments = (real.mean(0), _sqrt_psd(sigma), torch.trace(sigma))

    # ---- metrics --------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, images: torch.Tensor, progress: bool = False) -> Report:
        start = time.perf_counter()
        feats = self.features(images, progress=progress, description="generated")
        return self.evaluate_features(feats, start=start, images=images)

    @torch.no_grad()
    def evaluate_features(
        self, fake: torch.Tensor, start: float | None = None, images: torch.Tensor | None = None
    ) -> Report:
        start = time.perf_counter() if start is None else start
        if self.real_features is None:
            raise RuntimeError(
                "no reference set: call set_reference(...) or set_reference_from(datamodule) first"
            )
        real = self.real_features
        if fake.shape[0] < 2:
            raise ValueError(f"FID needs at least 2 generated samples, got {fake.shape[0]}")
        with torch.random.fork_rng(
            devices=[]
        ):  # KID draws subsets from the global RNG: keep training's intact
            torch.manual_seed(self.seed)
            self.fid.reset()
            self.fid.update(fake, real=False)
            fid = float(self.fid.compute())
            subset = min(self.kid_subset_size, fake.shape[0], real.shape[0])
            if self.kid_subsets > 1:  # at most half of each set, or all subsets are the same set
                subset = min(subset, fake.shape[0] // 2, real.shape[0] // 2)
            kid_metric = KernelInceptionDistance(
                feature=_Precomputed(real.shape[1]),
                subsets=self.kid_subsets,
                subset_size=subset,
                sync_on_compute=False,
            )
            kid_metric.update(real, real=True)
            kid_metric.update(fake, real=False)
            kid, kid_std = (float(v) for v in kid_metric.compute())
        precision, recall, realism, n_pr = self._precision_recall(real, fake)
        confidence = labels = None
        logits = None
        if hasattr(self.feature_net, "logits_from_features"):
            logits = self.feature_net.logits_from_features(fake.to(self.device)).cpu()
        elif self.classifier is not None and images is not None:
            logits = torch.cat(
                [self._classify(c.to(self.device)).cpu() for c in images.split(self.batch_size)]
            )
        if logits is not None:
            confidence, labels = logits.softmax(-1).max(-1)
        fids = self.bootstrap_fids(fake, self.bootstrap_indices(fake.shape[0]))
        fid_se = float(fids.std()) if len(fids) > 1 else math.nan
        return Report(
            fid=fid,
            fid_se=fid_se,
            kid=kid,
            kid_std=kid_std,
            precision=precision,
            recall=recall,
            n_fake=int(fake.shape[0]),
            n_real=int(real.shape[0]),
            n_pr=n_pr,
            feature_net=self.identity,
            seconds=time.perf_counter() - start,
            realism=realism,
            confidence=confidence,
            labels=labels,
            features=fake,
        )

    # ---- uncertainty ----------------------------------------------------------------------------
    def bootstrap_indices(
        self, n: int, replicates: int | None = None, seed: int | None = None
    ) -> torch.Tensor:
        """(B, n) indices drawn with replacement, seeded (the same draw for the same n and seed)."""
        b = self.n_bootstrap if replicates is None else replicates
        g = torch.Generator().manual_seed(self.seed if seed is None else seed)
        return torch.randint(0, n, (b, n), generator=g)

    def bootstrap_fids(self, fake: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """FID of ``fake[idx]`` for each row of ``indices`` against the fixed reference moments."""
        if self._real_moments is None:
            raise RuntimeError("no reference set: call set_reference(...) first")
        mu_r, sqrt_r, trace_r = self._real_moments
        fake = fake.double()
        out = []
        for idx in indices:
            x = fake[idx]
            out.append(frechet_distance(mu_r, sqrt_r, trace_r, x.mean(0), torch.cov(x.T)))
        return torch.tensor(out, dtype=torch.float64)

    def fid_difference(
        self, before: torch.Tensor, after: torch.Tensor, paired: bool, replicates: int | None = None
    ) -> tuple[float, float]:
        """FID(before) - FID(after) (positive: ``after`` is better) and the bootstrap standard error of
        that difference: shared resampling indices when the sets are paired sample by sample (the same
        latents refined), independent ones otherwise."""
        gain = self.frechet(before) - self.frechet(after)
        idx_b = self.bootstrap_indices(before.shape[0], replicates, seed=self.seed)
        idx_a = (
            idx_b
            if paired and before.shape[0] == after.shape[0]
            else self.bootstrap_indices(after.shape[0], replicates, seed=self.seed + 1)
        )
        diff = self.bootstrap_fids(before, idx_b) - self.bootstrap_fids(after, idx_a)
        return gain, float(diff.std()) if len(diff) > 1 else math.nan

    def frechet(self, fake: torch.Tensor) -> float:
        """FID of these features against the reference (the closed form torchmetrics computes)."""
        return float(self.bootstrap_fids(fake, torch.arange(fake.shape[0])[None])[0])

    def floor(
        self, real_images: torch.Tensor, n: int, draws: int = FLOOR_DRAWS, seed: int = 0
    ) -> tuple[float, float]:
        """(mean, sd) of :meth:`floor_features` over the features of ``real_images`` (one feature pass)."""
        f = self.floor_features(self.features(real_images), n, draws=draws, seed=seed)
        return f["mean"], f["sd"]

    def floor_from(
        self, datamodule, n: int, split: str = "train", draws: int = FLOOR_DRAWS, seed: int = 0
    ) -> dict[str, Any]:
        """:meth:`floor_features` with draws from a data module's whole ``split`` (its features through the
        reference cache, so a second floor costs no feature pass)."""
        feats, _ = self.split_features(datamodule, split)
        return self.floor_features(feats, n, draws=draws, seed=seed, drawn_from=f"{split} split")

    def floor_features(
        self,
        real_features: torch.Tensor,
        n: int,
        draws: int = FLOOR_DRAWS,
        seed: int = 0,
        drawn_from: str = "real images in neither reference",
    ) -> dict[str, Any]:
        """The real-vs-real FID at ``n`` samples against this evaluator's reference: ``draws`` seeded draws
        of ``n`` of these real features (another split than the reference's), each scored against the
        reference. No generator can be expected below it at this n, reference and feature network.

        The draws are disjoint when the pool holds ``draws * n`` samples; otherwise each is its own random
        n-subset of the pool (``disjoint`` False): they share samples, and their sd understates a fresh
        draw's by about sqrt(1 - n / pool). Returns mean, sd (over draws), every draw's FID, n, draws,
        disjoint, pool, seed, drawn_from, the reference (split and n) and the feature network."""
        if self.reference_key is None:
            raise RuntimeError("no reference set: call set_reference(...) or set_reference_from(...) first")
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
        fids = [self.frechet(real_features[idx]) for idx in picks]
        mean = sum(fids) / len(fids)
        sd = math.sqrt(sum((f - mean) ** 2 for f in fids) / (len(fids) - 1)) if len(fids) > 1 else math.nan
        ref = self.reference_key
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
            "feature_network": self.identity,
        }

    def _classify(self, x: torch.Tensor) -> torch.Tensor:
        out = self.classifier(x)
        return (
            self.classifier.logits_from_features(out)
            if hasattr(self.classifier, "logits_from_features")
            else out
        )

    def _precision_recall(
        self, real: torch.Tensor, fake: torch.Tensor
    ) -> tuple[float, float, torch.Tensor, int]:
        """Precision, recall, each generated sample's realism, and n: precision and recall from n real and
        n generated samples, n the smaller count, the larger side subsampled (seeded, so the same sets give
        the same numbers); realism scores every generated sample against the n real ones."""
        k = self.pr_k
        n = min(real.shape[0], fake.shape[0])
        if n <= k:  # k-NN manifolds need more than k samples on each side: no number rather than a crash
            log.warning(
                "precision/recall need more than k=%d samples on each side, got %d: reported as NaN", k, n
            )
            return math.nan, math.nan, torch.full((fake.shape[0],), math.nan), 0
        if n not in self._real_radii:  # a fixed random subset of the reference per n
            subset = torch.randperm(real.shape[0], generator=torch.Generator().manual_seed(self.seed))[:n]
            self._real_radii[n] = (real[subset], knn_radii(real[subset], k))
        real, real_r = self._real_radii[n]
        if fake.shape[0] > n:
            pick = torch.randperm(fake.shape[0], generator=torch.Generator().manual_seed(self.seed + 1))[:n]
            fake_pr = fake[pick]
        else:
            fake_pr = fake
        fake_r = knn_radii(fake_pr, k)
        in_real = torch.zeros(fake_pr.shape[0], dtype=torch.bool)
        for i, d in _pairwise_chunks(fake_pr, real):
            in_real[i : i + d.shape[0]] = (d <= real_r).any(dim=1)
        in_fake = torch.zeros(real.shape[0], dtype=torch.bool)
        for i, d in _pairwise_chunks(real, fake_pr):
            in_fake[i : i + d.shape[0]] = (d <= fake_r).any(dim=1)
        # realism uses the real samples whose radius is at most the median (the paper drops the outer half)
        keep = real_r <= real_r.median()
        realism = torch.empty(fake.shape[0])
        for i, d in _pairwise_chunks(fake, real[keep]):
            realism[i : i + d.shape[0]] = (real_r[keep] / d.clamp_min(1e-12)).max(dim=1).values
        return in_real.float().mean().item(), in_fake.float().mean().item(), realism, n
