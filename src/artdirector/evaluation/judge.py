"""The judge: what a creator's samples are, in the eyes of a classifier that took no part in making them.

The LeNet of the FID features also labels samples for the evaluator, and creators are selected by FIDs in
its feature space, so it is no independent referee of class conformance. The judge is a separately trained
residual network (:class:`~artdirector.models.nets.JudgeNet`, shipped as ``weights/judge_<dataset>.pt``;
``python scripts/train.py experiment=judge_<dataset>``, then ``scripts/export_judge.py``): trained on the
train split, chosen on the selection split, its accuracy stated on the report split, overall and per class.

- :meth:`Judge.conformance_per_class`: per requested class, the share of samples the judge reads as that
  class, beside the judge's own accuracy on the real report images of the class. A judge that gets 0.92 of
  real shirts right cannot be expected to find more in generated ones, so ``relative`` (conformance over
  the real accuracy) is the fair reading: "0.95 of what the judge gives real shirts".
- :func:`within_class_variety`: per class, the mean pairwise pixel L2 distance of generated images over
  that of real report images of the class (equal counts), with a bootstrap standard error. A creator that
  repeats a few images per class scores near 0; one as varied as the data near 1.
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

from artdirector.errors import InputError
from artdirector.evaluation.features import WEIGHTS_DIR, MissingWeightsError, check_images, to_lenet_size
from artdirector.io import file_sha256
from artdirector.models.nets import JudgeNet

JUDGE_RECIPES = {
    "mnist": "python scripts/train.py experiment=judge_mnist",
    "fashion_mnist": "python scripts/train.py experiment=judge_fashion_mnist",
}


class Judge(nn.Module):
    """A shipped judge (``weights``: ``mnist``, ``fashion_mnist``) or a file written by
    ``scripts/export_judge.py``, read with ``weights_only=True``, in eval mode for good.

    Images are (N, 1, 28, 28) in [-1, 1]; square multiples of 28 (super-resolved samples) are read through
    their area-downsampled 28x28 copy, as the LeNet reads them. Attributes from the file: ``dataset``,
    ``selection_acc``, ``report_acc`` and ``report_acc_per_class`` (accuracy on the real report images of
    each class, a list indexed by class).
    """

    input_size = 28

    def __init__(self, weights: str | Path = "mnist") -> None:
        super().__init__()
        name = str(weights)
        path = WEIGHTS_DIR / f"judge_{name}.pt" if name in JUDGE_RECIPES else Path(name)
        if not path.is_file():
            how = (
                f"it ships with artdirector; reinstall the package, or rebuild it with `{JUDGE_RECIPES[name]}` "
                f"and `python scripts/export_judge.py <run dir>/checkpoints/best.ckpt --dataset {name}`"
                if name in JUDGE_RECIPES
                else f"known names: {sorted(JUDGE_RECIPES)}, or a file written by scripts/export_judge.py"
            )
            raise MissingWeightsError(f"judge weights not found at {path}: {how}")
        payload = torch.load(path, map_location="cpu", weights_only=True)
        kwargs = {k: v for k, v in (payload.get("net") or {}).items() if not k.startswith("_")}
        self.net = JudgeNet(**kwargs)
        self.net.load_state_dict(payload["state_dict"])
        self.requires_grad_(False).eval()
        self.path = path
        self.sha256 = file_sha256(path)
        self.dataset = payload.get("dataset")
        self.num_classes = self.net.head.out_features
        self.selection_acc = payload.get("selection_acc")
        self.report_acc = payload.get("report_acc")
        self.report_acc_per_class = payload.get("report_acc_per_class")

    @property
    def identity(self) -> str:
        return f"judge-{self.dataset}:{self.sha256[:12]}"

    def train(self, mode: bool = True) -> Judge:
        return super().train(False)

    @torch.no_grad()
    def logits(self, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """(N, num_classes) float32 logits on the CPU, ``batch_size`` images per forward."""
        x = to_lenet_size(images, self.input_size)
        check_images(x, channels=(1,), size=self.input_size)
        device = next(self.parameters()).device
        return (
            torch.cat([self.net(c.to(device).float()).float().cpu() for c in x.split(batch_size)])
            if len(x)
            else torch.empty(0, self.num_classes)
        )

    def predict(self, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """The class the judge reads in each image: (N,) int64."""
        return self.logits(images, batch_size).argmax(dim=1)

    def conformance_per_class(
        self, images: torch.Tensor, labels: torch.Tensor, pred: torch.Tensor | None = None
    ) -> dict[str, Any]:
        """Per requested class (each label present in ``labels``): the share of its images the judge reads as
        that class, its binomial standard error and n; the judge's accuracy on the real report images of the
        class (``real``); and ``relative`` = conformance / real. Plus overall, min and mean of both.
        ``pred``: the judge's :meth:`predict` of ``images`` when already at hand (no second pass)."""
        labels = torch.as_tensor(labels).long().reshape(-1)
        if labels.shape[0] != images.shape[0]:
            raise InputError(
                f"{images.shape[0]} images but {labels.shape[0]} labels: give one label per image"
            )
        pred = self.predict(images) if pred is None else torch.as_tensor(pred).long().reshape(-1)
        per, se, n, real, rel = {}, {}, {}, {}, {}
        for c in labels.unique().tolist():
            hit = pred[labels == c] == c
            k = str(c)
            p = float(hit.float().mean())
            per[k], n[k] = p, int(hit.numel())
            se[k] = math.sqrt(p * (1 - p) / hit.numel())
            if self.report_acc_per_class is not None and c < len(self.report_acc_per_class):
                real[k] = float(self.report_acc_per_class[c])
                rel[k] = p / real[k] if real[k] > 0 else math.nan
        out: dict[str, Any] = {
            "judge": self.identity,
            "overall": float((pred == labels).float().mean()) if len(labels) else math.nan,
            "min": min(per.values(), default=math.nan),
            "min_class": min(per, key=per.get) if per else None,
            "mean": sum(per.values()) / len(per) if per else math.nan,
            "per_class": per,
            "se_per_class": se,
            "n_per_class": n,
            "real_per_class": real,
            "relative_per_class": rel,
        }
        if rel:
            out["relative_min"] = min(rel.values())
            out["relative_mean"] = sum(rel.values()) / len(rel)
        return out


@cache
def load_judge(dataset: str = "mnist") -> Judge:
    """The shipped judge of ``dataset`` (``mnist``, ``fashion_mnist``), loaded once per process on the CPU.
    The object is shared: move a copy, not it, to another device."""
    if dataset not in JUDGE_RECIPES:
        raise MissingWeightsError(f"no judge ships for {dataset!r}; known: {sorted(JUDGE_RECIPES)}")
    return Judge(dataset)


def _mean_pairwise(d: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Mean distance over pairs of draws that are different images, for each row of ``counts`` (B, n):
    how often each of the n images was drawn. ``d`` (n, n) is symmetric with a zero diagonal, so pairs of
    one image add nothing to ``w d w`` and are left out of the count ``(sum w)^2 - sum w^2``."""
    pairs = counts.sum(1) ** 2 - (counts**2).sum(1)
    return ((counts @ d) * counts).sum(1) / pairs


def within_class_variety(
    images: torch.Tensor,
    labels: torch.Tensor,
    real_images: torch.Tensor,
    real_labels: torch.Tensor,
    n_per_class: int = 200,
    seed: int = 0,
    n_bootstrap: int = 200,
) -> dict[str, Any]:
    """Per class in ``labels``: the mean pairwise pixel L2 distance of ``n`` generated images of the class
    over that of ``n`` real images of the class, n = min(``n_per_class``, generated, real) drawn at random
    (seeded); 1 is as varied as the data, 0 one image repeated. Its standard error resamples both sets
    (pairs of the same image left out). Images in [-1, 1]; generated images larger than the real ones by
    an integer factor are area-downsampled to the real size first. Returns ``per_class`` ({class: {ratio,
    se, generated, real, n}}), ``min``, ``min_class`` and ``mean`` of the ratios."""
    labels = torch.as_tensor(labels).long().reshape(-1)
    real_labels = torch.as_tensor(real_labels).long().reshape(-1)
    images = to_lenet_size(images, real_images.shape[-1])
    if images.shape[1:] != real_images.shape[1:]:
        raise InputError(
            f"generated images {tuple(images.shape[1:])} and real images {tuple(real_images.shape[1:])} "
            "differ in shape: give both at one size (or the generated at an integer multiple of it)"
        )
    g = torch.Generator().manual_seed(seed)
    per: dict[str, dict[str, float]] = {}
    for c in labels.unique().tolist():
        gen, real = images[labels == c], real_images[real_labels == c]
        n = min(n_per_class, len(gen), len(real))
        if n < 3:  # the bootstrap needs pairs of distinct images in every resample
            continue
        gen = gen[torch.randperm(len(gen), generator=g)[:n]].flatten(1).double()
        real = real[torch.randperm(len(real), generator=g)[:n]].flatten(1).double()
        d_gen, d_real = torch.cdist(gen, gen), torch.cdist(real, real)
        whole = torch.ones(1, n, dtype=torch.float64)
        v_gen, v_real = float(_mean_pairwise(d_gen, whole)), float(_mean_pairwise(d_real, whole))
        se = math.nan
        if n_bootstrap > 1:
            draws = [torch.randint(0, n, (n_bootstrap, n), generator=g) for _ in range(2)]
            w_gen, w_real = (
                torch.zeros(n_bootstrap, n, dtype=torch.float64).scatter_add_(
                    1, i, torch.ones_like(i, dtype=torch.float64)
                )
                for i in draws
            )
            se = float((_mean_pairwise(d_gen, w_gen) / _mean_pairwise(d_real, w_real)).std())
        per[str(c)] = {"ratio": v_gen / v_real, "se": se, "generated": v_gen, "real": v_real, "n": n}
    ratios = {k: v["ratio"] for k, v in per.items()}
    return {
        "metric": "mean pairwise pixel L2 (images in [-1, 1]), generated / real, per class",
        "n_per_class": n_per_class,
        "seed": seed,
        "min": min(ratios.values(), default=math.nan),
        "min_class": min(ratios, key=ratios.get) if ratios else None,
        "mean": sum(ratios.values()) / len(ratios) if ratios else math.nan,
        "per_class": per,
    }
