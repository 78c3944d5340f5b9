"""The evaluator: one feature pass feeds FID, KID, precision/recall and per-sample scores.

:class:`Evaluator` holds a feature network and a reference (real features, cached on disk by
:class:`~artdirector.evaluation.reference.ReferenceCache`) and reports on generated images (:class:`Report`).
The distances themselves are in :mod:`artdirector.evaluation.metrics`; precision/recall use equal real and
generated counts, and the report states that n (``n_pr``). Every FID comes with a bootstrap standard error
over the generated samples (the reference's moments are fixed); :meth:`Evaluator.bootstrap_fids` exposes the
replicates, so that a decision can bootstrap a *difference* of two FIDs with shared indices when the two sets
are paired. The real-vs-real floor (:meth:`Evaluator.floor_features`) is
:func:`artdirector.evaluation.floor.real_floor` against this evaluator's reference.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from typing import Any

import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance

from artdirector.evaluation import metrics
from artdirector.evaluation.features import check_images
from artdirector.evaluation.floor import FLOOR_DRAWS, real_floor
from artdirector.evaluation.reference import ReferenceCache
from artdirector.evaluation.report import Report

log = logging.getLogger(__name__)


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
        self._real_moments: metrics.Moments | None = None

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
            feature=metrics.Precomputed(feats.shape[1]), reset_real_features=False, sync_on_compute=False
        )
        self.fid.update(feats, real=True)
        self._real_radii = {}
        self._real_moments = metrics.moments(feats)

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
            kid, kid_std = metrics.kid(real, fake, self.kid_subsets, self.kid_subset_size)
        precision, recall, realism, n_pr = metrics.precision_recall(
            real, fake, self.pr_k, self.seed, self._real_radii
        )
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

    def _moments(self) -> metrics.Moments:
        if self._real_moments is None:
            raise RuntimeError("no reference set: call set_reference(...) first")
        return self._real_moments

    # ---- uncertainty ----------------------------------------------------------------------------
    def bootstrap_indices(
        self, n: int, replicates: int | None = None, seed: int | None = None
    ) -> torch.Tensor:
        """(B, n) indices drawn with replacement, seeded (the same draw for the same n and seed); B and the
        seed default to this evaluator's ``n_bootstrap`` and ``seed``."""
        return metrics.bootstrap_indices(
            n,
            self.n_bootstrap if replicates is None else replicates,
            self.seed if seed is None else seed,
        )

    def bootstrap_fids(self, fake: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """FID of ``fake[idx]`` for each row of ``indices`` against the fixed reference moments."""
        return metrics.bootstrap_fids(self._moments(), fake, indices)

    def fid_difference(
        self, before: torch.Tensor, after: torch.Tensor, paired: bool, replicates: int | None = None
    ) -> tuple[float, float]:
        """FID(before) - FID(after) (positive: ``after`` is better) and the bootstrap standard error of
        that difference: shared resampling indices when the sets are paired sample by sample (the same
        latents refined), independent ones otherwise."""
        b = self.n_bootstrap if replicates is None else replicates
        return metrics.fid_difference(self._moments(), before, after, paired, b, self.seed)

    def frechet(self, fake: torch.Tensor) -> float:
        """FID of these features against the reference (the closed form torchmetrics computes)."""
        return metrics.frechet(self._moments(), fake)

    def floor(
        self, real_images: torch.Tensor, n: int, draws: int = FLOOR_DRAWS, seed: int = 0
    ) -> tuple[float, float]:
        """(mean, sd) of :meth:`floor_features` over the features of ``real_images`` (one feature pass)."""
        f = self.floor_features(self.features(real_images), n, draws=draws, seed=seed)
        return f["mean"], f["sd"]

    def floor_from(
        self,
        datamodule,
        n: int,
        split: str = "train",
        draws: int = FLOOR_DRAWS,
        seed: int = 0,
        pool: int | None = None,
    ) -> dict[str, Any]:
        """:meth:`floor_features` with draws from a data module's ``split``: all of it, or its first ``pool``
        images where a feature pass over the whole split costs too much (Inception on a CPU). The features
        go through the reference cache, so a second floor costs no feature pass."""
        feats, _ = self.split_features(datamodule, split, pool)
        drawn_from = f"{split} split" if pool is None else f"{split} split, first {pool:,}"
        return self.floor_features(feats, n, draws=draws, seed=seed, drawn_from=drawn_from)

    def floor_features(
        self,
        real_features: torch.Tensor,
        n: int,
        draws: int = FLOOR_DRAWS,
        seed: int = 0,
        drawn_from: str = "real images in neither reference",
    ) -> dict[str, Any]:
        """The real-vs-real FID at ``n`` samples against this evaluator's reference
        (:func:`artdirector.evaluation.floor.real_floor`: its draws, disjointness and record)."""
        if self.reference_key is None:
            raise RuntimeError("no reference set: call set_reference(...) or set_reference_from(...) first")
        return real_floor(
            self.frechet,
            real_features,
            n,
            self.reference_key,
            self.identity,
            draws=draws,
            seed=seed,
            drawn_from=drawn_from,
        )

    def _classify(self, x: torch.Tensor) -> torch.Tensor:
        out = self.classifier(x)
        return (
            self.classifier.logits_from_features(out)
            if hasattr(self.classifier, "logits_from_features")
            else out
        )
