"""The style judge: reads the attributes the style edits ask for (thickness, slant, size) with instruments the
edits do not optimise, so that "the edit met its request" is not true by construction.

The edits of :mod:`artdirector.editing.style` steer by the formulas of :mod:`artdirector.editing.attributes`
(the pixel edit searches the dilation radius that brings the area/perimeter thickness to its goal, and
shears by the moment slant it measured). The judge reads each image twice, apart from those formulas:

- ``morpho``: Morpho-MNIST's estimators (:mod:`artdirector.evaluation.morphometry`): the skeleton's
  distance-transform thickness at 4x, the skeleton's slant, the bounding parallelogram's size;
- ``cnn``: a small CNN regressor (:class:`StyleRegressor`, shipped as ``weights/style_judge_mnist.pt``)
  trained on real train-split MNIST digits to predict those Morpho measures (``python
  scripts/train_style_judge.py``, seed 0): the first 20,000 train digits, about 60 % of them resampled at a
  random scale (0.6-1.35) and shear (|k| <= 0.3) about the centre, because MNIST's digits all fill one
  20 px box and a net that never saw another size could not read "small" or "large"; the epoch (10th of
  10) chosen on 2,000 selection digits. Its report-split error, the mean absolute error against the
  Morpho measures on the first 2,000 test digits as they are / the same 2,000 at a random scale and shear:
  thickness 0.057 / 0.067 px, slant 1.36 / 1.68 degrees, size 0.0078 / 0.0106 of the frame (the file's
  ``report_mae``). It reads the Morpho measures' values, so it is a second reading of them that needs no
  skeleton, and a check that they are not fooled by a detail of one pipeline.

:meth:`StyleJudge.judge_change` is the verdict: the requested change in each reading's own values (``+50 %``
of the judge's thickness, ``+15`` of its slant, ``= 0``), the achieved mean change, and *met* when, by both
readings, the mean change is within ``tolerance`` of the mean request.
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from artdirector.evaluation import morphometry
from artdirector.evaluation.features import WEIGHTS_DIR, MissingWeightsError, check_images, file_sha256

ATTRIBUTES = ("thickness", "slant", "size")
RECIPE = "python scripts/train_style_judge.py"
READINGS = ("morpho", "cnn")


class StyleRegressor(nn.Module):
    """image (N, 1, 28, 28) in [-1, 1] -> standardised attributes (N, outputs): two 3x3 conv-ReLU-maxpool
    stages and a two-layer head on the flattened 7x7 map (kept whole: size and slant are about where the
    ink is, which global pooling would throw away)."""

    def __init__(
        self, outputs: int = len(ATTRIBUTES), widths: tuple[int, int] | list[int] = (16, 32)
    ) -> None:
        super().__init__()
        c1, c2 = (int(w) for w in widths)
        self.body = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(c2 * 49, 128),
            nn.ReLU(),
            nn.Linear(128, outputs),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class _Target(Protocol):
    attribute: str

    def goal(self, current: torch.Tensor) -> torch.Tensor: ...


class StyleJudge(nn.Module):
    """The shipped regressor (``weights="mnist"``) or a file written by ``scripts/train_style_judge.py``,
    read with ``weights_only=True``, in eval mode for good, beside the Morpho-MNIST estimators. Attributes
    from the file: ``attributes``, ``mean``/``sd`` (the standardisation of its outputs), ``selection_mae``,
    ``report_mae`` ({"as_is"|"augmented": {attribute: MAE}}) and ``n_report``."""

    def __init__(self, weights: str | Path = "mnist") -> None:
        super().__init__()
        name = str(weights)
        path = WEIGHTS_DIR / f"style_judge_{name}.pt" if name == "mnist" else Path(name)
        if not path.is_file():
            how = (
                f"it ships with artdirector; reinstall the package, or rebuild it with `{RECIPE}`"
                if name == "mnist"
                else f"give 'mnist' or a file written by `{RECIPE}`"
            )
            raise MissingWeightsError(f"style judge weights not found at {path}: {how}")
        payload = torch.load(path, map_location="cpu", weights_only=True)
        self.attributes = tuple(payload["attributes"])
        self.net = StyleRegressor(len(self.attributes), payload["net"]["widths"])
        self.net.load_state_dict(payload["state_dict"])
        self.register_buffer("mean", torch.tensor(payload["mean"], dtype=torch.float32))
        self.register_buffer("sd", torch.tensor(payload["sd"], dtype=torch.float32))
        self.requires_grad_(False).eval()
        self.path = path
        self.sha256 = file_sha256(path)
        self.selection_mae = payload.get("selection_mae")
        self.report_mae = payload.get("report_mae")
        self.n_report = payload.get("n_report")

    @property
    def identity(self) -> str:
        return f"style-judge-mnist:{self.sha256[:12]}"

    def train(self, mode: bool = True) -> StyleJudge:
        return super().train(False)

    @torch.no_grad()
    def regress(self, images: torch.Tensor, batch_size: int = 1000) -> dict[str, torch.Tensor]:
        """The regressor's reading: ``{attribute: (N,)}`` in the Morpho measures' units."""
        check_images(images, channels=(1,), size=28)
        out = [self.net(c.float()) * self.sd + self.mean for c in images.split(batch_size)]
        y = torch.cat(out) if out else torch.empty(0, len(self.attributes))
        return {a: y[:, i] for i, a in enumerate(self.attributes)}

    def read(self, images: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
        """Both readings of every image: ``{"morpho": {attribute: (N,)}, "cnn": {attribute: (N,)}}``."""
        morpho = morphometry.measure(images)
        return {"morpho": {a: morpho[a] for a in self.attributes}, "cnn": self.regress(images)}

    def judge_change(
        self,
        before: dict[str, dict[str, torch.Tensor]],
        after: dict[str, dict[str, torch.Tensor]],
        target: _Target,
        tolerance: float = 0.25,
    ) -> dict[str, Any]:
        """Did ``target`` (anything with ``attribute`` and ``goal(current)``, e.g. an
        :class:`~artdirector.editing.targets.StyleTarget`) happen between two readings of the same images (from
        :meth:`read`)? Per reading: before and after (mean, sd), the requested change ``goal(before) -
        before`` and the achieved change (mean, sd), and ``moved``; ``met`` when both readings moved. Images
        the Morpho estimators cannot read (blank: NaN) are left out of both readings."""
        a = target.attribute
        if a not in self.attributes:
            raise ValueError(f"the style judge reads {', '.join(self.attributes)}, not {a}")
        ok = torch.isfinite(before["morpho"][a]) & torch.isfinite(after["morpho"][a])
        out: dict[str, Any] = {"attribute": a, "n": int(ok.sum()), "tolerance": tolerance}
        for r in READINGS:
            b, f = before[r][a][ok].double(), after[r][a][ok].double()
            req, ach = target.goal(b) - b, f - b
            rm, am = float(req.mean()), float(ach.mean())
            out[r] = {
                "before": {"mean": float(b.mean()), "sd": float(b.std())},
                "after": {"mean": float(f.mean()), "sd": float(f.std())},
                "requested_change": {"mean": rm, "sd": float(req.std())},
                "achieved_change": {"mean": am, "sd": float(ach.std())},
                "achieved_over_requested": am / rm if abs(rm) > 1e-9 else math.nan,
                "moved": abs(am - rm) <= tolerance * abs(rm) if abs(rm) > 1e-9 else True,
            }
        out["met"] = all(out[r]["moved"] for r in READINGS)
        return out


@cache
def load_style_judge() -> StyleJudge:
    """The shipped MNIST style judge, loaded once per process on the CPU (shared: do not move it)."""
    return StyleJudge("mnist")
