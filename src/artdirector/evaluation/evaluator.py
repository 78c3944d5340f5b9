"""The evaluator: one feature pass feeds FID, KID, precision/recall and per-sample scores.

FID and KID are torchmetrics' ``FrechetInceptionDistance`` / ``KernelInceptionDistance``; they receive the
already extracted features through a pass-through ``feature=`` module, so no metric extracts features
again. Precision, recall and the realism score follow Kynkaanniemi et al. 2019, "Improved Precision and
Recall Metric for Assessing Generative Models", https://arxiv.org/abs/1904.06991 (k = 3).
"""

from __future__ import annotations

import logging
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


@dataclass
class Report:
    """Batch metrics and per-sample scores for one set of generated images."""

    fid: float
    kid: float
    kid_std: float
    precision: float
    recall: float
    n_fake: int
    n_real: int
    feature_net: str
    seconds: float
    realism: torch.Tensor = field(
        repr=False
    )  # (N,) Kynkaanniemi realism score, > 1: inside the real manifold
    confidence: torch.Tensor | None = field(default=None, repr=False)  # (N,) max softmax of the classifier
    labels: torch.Tensor | None = field(default=None, repr=False)  # (N,) classifier's predicted class

    def metrics(self) -> dict[str, float]:
        return {
            k: v for k, v in asdict(self).items() if isinstance(v, int | float) and not isinstance(v, bool)
        }


class Evaluator:
    """FID, KID, precision/recall and per-sample scores of generated images against reference features.

    Args:
        feature_net: an ``nn.Module`` with ``num_features`` (``InceptionFeatures``, ``LeNetFeatures``).
        name: short name used in file names and logs (``inception``, ``lenet``).
        classifier: optional module for per-sample confidence; if ``feature_net`` has
            ``logits_from_features`` that is used instead (no second pass).
        kid_subsets, kid_subset_size: KID is averaged over random subsets (capped at the sample counts).
        pr_k: the k of the k-NN manifolds for precision/recall/realism.
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
        self.real_features: torch.Tensor | None = None
        self.reference_key: dict[str, Any] | None = None
        self.fid: FrechetInceptionDistance | None = None
        self._real_radii: torch.Tensor | None = None

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
        key = {"dataset": dataset, "split": split, "feature_net": self.identity, "n": n}
        feats = self.cache.load_or_build(
            key,
            lambda: self.features(
                datamodule.real_images(split, n),
                progress=progress,
                description=f"reference {dataset}/{split}",
            ),
        )
        self._use_reference(feats, key)
        return feats

    def _use_reference(self, feats: torch.Tensor, key: dict[str, Any]) -> None:
        self.real_features, self.reference_key = feats, key
        # the real moments are accumulated once; reset() between evaluations keeps them
        self.fid = FrechetInceptionDistance(feature=_Precomputed(feats.shape[1]), reset_real_features=False)
        self.fid.update(feats, real=True)
        self._real_radii = None

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
            kid_metric = KernelInceptionDistance(
                feature=_Precomputed(real.shape[1]), subsets=self.kid_subsets, subset_size=subset
            )
            kid_metric.update(real, real=True)
            kid_metric.update(fake, real=False)
            kid, kid_std = (float(v) for v in kid_metric.compute())
        precision, recall, realism = self._precision_recall(real, fake)
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
        return Report(
            fid=fid,
            kid=kid,
            kid_std=kid_std,
            precision=precision,
            recall=recall,
            n_fake=int(fake.shape[0]),
            n_real=int(real.shape[0]),
            feature_net=self.identity,
            seconds=time.perf_counter() - start,
            realism=realism,
            confidence=confidence,
            labels=labels,
        )

    def _classify(self, x: torch.Tensor) -> torch.Tensor:
        out = self.classifier(x)
        return (
            self.classifier.logits_from_features(out)
            if hasattr(self.classifier, "logits_from_features")
            else out
        )

    def _precision_recall(self, real: torch.Tensor, fake: torch.Tensor) -> tuple[float, float, torch.Tensor]:
        k = self.pr_k
        if self._real_radii is None:
            self._real_radii = knn_radii(real, k)
        real_r = self._real_radii
        fake_r = knn_radii(fake, k)
        # realism uses the real samples whose radius is at most the median (the paper drops the outer half)
        keep = real_r <= real_r.median()
        in_real = torch.zeros(fake.shape[0], dtype=torch.bool)
        realism = torch.empty(fake.shape[0])
        for i, d in _pairwise_chunks(fake, real):
            in_real[i : i + d.shape[0]] = (d <= real_r).any(dim=1)
            realism[i : i + d.shape[0]] = (real_r[keep] / d[:, keep].clamp_min(1e-12)).max(dim=1).values
        in_fake = torch.zeros(real.shape[0], dtype=torch.bool)
        for i, d in _pairwise_chunks(real, fake):
            in_fake[i : i + d.shape[0]] = (d <= fake_r).any(dim=1)
        return in_real.float().mean().item(), in_fake.float().mean().item(), realism
