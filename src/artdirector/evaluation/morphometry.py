"""Morpho-MNIST's own shape estimators (Castro et al. 2019, "Morpho-MNIST: quantitative assessment and
diagnostics for representation learning", section 3 and their ``morphomnist/morpho.py``), per image of a
batch ``(N, C, H, W)`` in [-1, 1].

These read a digit differently from :mod:`artdirector.editing.attributes` (the formulas the style edits steer
by), which is why the style judge uses them:

- the image (ink ``v = (x + 1) / 2``, channels averaged) is upsampled ``scale`` = 4 times with
  ``skimage.transform.pyramid_expand`` (bicubic, then Gaussian smoothing) and binarised at half-way
  between its minimum and maximum (a threshold relative to the image, not an absolute 0.5);
- ``thickness`` (pixels at the original size): twice the mean Euclidean distance to the background
  (``scipy.ndimage.distance_transform_edt``) over the binary image's skeleton, divided by ``scale``. The
  skeleton is ``skimage.morphology.skeletonize`` (topological thinning); Morpho-MNIST's code takes
  ``medial_axis``, whose extra spurs run into the stroke's corners, where the distance is small, and pull
  the mean down. A straight bar of width ``w`` reads ``w`` (odd widths at 4x read a quarter pixel more);
- ``slant`` (degrees, positive leaning right): ``atan(-u11 / u02)`` of the central moments of the
  upsampled grey image (the same shear as the formula's, but at 4x after smoothing);
- ``width``, ``height``: the sides of Morpho-MNIST's bounding parallelogram: sheared by that slant, it
  leaves out ``bound_frac / 2`` = 1 % of the ink mass on each side (robust to specks, unlike a bounding
  box), in pixels at the original size; ``size`` is the longer of the two as a fraction of the frame's
  side (what "small" and "large" ask about, in the unit of :mod:`artdirector.editing.attributes`).

2-10 ms an image on one CPU thread, mostly the upsampling and the distance transform.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import ndimage
from skimage.morphology import skeletonize
from skimage.transform import pyramid_expand

MEASURES = ("thickness", "slant", "width", "height", "size")


def _ink(x: torch.Tensor) -> np.ndarray:
    if x.dim() != 4:
        raise ValueError(f"Morpho-MNIST measures read a batch (N, C, H, W), got shape {tuple(x.shape)}")
    return ((x.detach().float().mean(1) + 1) / 2).clamp(0, 1).cpu().numpy().astype(np.float64)


def _parallelogram(img: np.ndarray, shear: float, y_mid: float, frac: float) -> tuple[float, float]:
    """(width, height) in upsampled pixels: the mass quantiles ``frac / 2`` and ``1 - frac / 2`` across the
    sheared columns and across the rows (Morpho-MNIST's ``bounding_parallelogram``, its per-column loop
    written as one gather of cumulative row sums)."""
    h, w = img.shape
    total = img.sum()
    # the mass left of sheared line t: per row y, the pixels x < t - 0.5 + shear (y - y_mid)
    rowcum = np.concatenate([np.zeros((h, 1)), np.cumsum(img, 1)], 1)
    locs = np.arange(w, dtype=np.float64)
    edge = locs[None, :] - 0.5 + shear * (np.arange(h)[:, None] - y_mid)
    idx = np.clip(np.ceil(edge), 0, w).astype(np.intp)
    hcdf = np.take_along_axis(rowcum, idx, 1).sum(0) / total
    vcdf = np.concatenate([[0.0], np.cumsum(img.sum(1))[:-1]]) / total
    q = [frac / 2, 1 - frac / 2]
    left, right = np.interp(q, hcdf, locs)
    top, bottom = np.interp(q, vcdf, np.arange(h, dtype=np.float64))
    return float(right - left), float(bottom - top)


def _shear(w: np.ndarray) -> float:
    """``u11 / u02``: the horizontal shear of the weights ``w`` (H, W) from their central moments."""
    ys, xs = np.mgrid[0 : w.shape[0], 0 : w.shape[1]]
    m = w.sum()
    cx, cy = (xs * w).sum() / m, (ys * w).sum() / m
    u11 = ((xs - cx) * (ys - cy) * w).sum() / m
    u02 = ((ys - cy) ** 2 * w).sum() / m
    return float(u11 / u02) if u02 > 0 else 0.0


def measure_one(v: np.ndarray, scale: int = 4, threshold: float = 0.5, bound_frac: float = 0.02) -> dict:
    """The measures of one ink image ``v`` (H, W) in [0, 1]; NaN for an image without contrast."""
    hi = pyramid_expand(v, upscale=scale, order=3) if scale > 1 else v
    lo, top = float(hi.min()), float(hi.max())
    if top - lo < 1e-6:
        return dict.fromkeys(MEASURES, math.nan)
    binary = hi >= lo + (top - lo) * threshold
    skel = skeletonize(binary)
    dist = ndimage.distance_transform_edt(binary)
    thickness = 2.0 * float(dist[skel].mean()) / scale if skel.any() else math.nan
    mass = hi - lo  # Morpho-MNIST's images have a black background; an offset would bias the moments
    cy = float((np.arange(hi.shape[0]) * mass.sum(1)).sum() / mass.sum())
    width, height = _parallelogram(mass, _shear(mass), cy, bound_frac)
    return {
        "thickness": thickness,
        "slant": math.degrees(math.atan(-_shear(skel.astype(np.float64)))) if skel.sum() > 1 else math.nan,
        "width": width / scale,
        "height": height / scale,
        "size": max(width, height) / scale / max(v.shape),
    }


def measure(x: torch.Tensor, scale: int = 4) -> dict[str, torch.Tensor]:
    """Every measure of every image: ``{name: (N,)}`` float32 (NaN where an image is blank)."""
    rows = [measure_one(v, scale) for v in _ink(x)]
    return {k: torch.tensor([r[k] for r in rows], dtype=torch.float32) for k in MEASURES}
