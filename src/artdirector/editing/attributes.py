"""Measurable style attributes of an image, each a documented formula (in the spirit of Morpho-MNIST, Castro
et al. 2019), computed on a batch ``(N, C, H, W)`` in [-1, 1] and returned per image.

Ink is the intensity ``v = (x + 1) / 2`` in [0, 1] (channels averaged); the *mask* is ``v > 0.5``.

- ``thickness`` (pixels): the width of the rectangle that has the mask's area ``A`` and perimeter ``P`` (the
  number of mask/background edges between 4-neighbours): the smaller root of ``t^2 - (P/2) t + A = 0``, i.e.
  ``P/4 - sqrt(P^2/16 - A)`` (``P/4`` for a blob, where the root is complex). A ``w x h`` bar gives exactly
  ``w``; a stroke of length ``L`` and width ``w`` gives about ``w``. Diagonal edges count as staircases, so a
  slanted stroke reads thinner than its perpendicular width (a 3 px wide row-run sheared 27 degrees: 2.0).
- ``slant`` (degrees, positive leaning right like italics): the shear of the ink, from its intensity-weighted
  central moments, ``atan(-mu11 / mu02)`` (``x`` against ``y`` with ``y`` pointing down): a stroke
  ``x = x0 + k (y0 - y)`` reads ``atan(k)``. The deskewing angle of LeCun's MNIST preprocessing.
- ``height``, ``width`` (fractions of the frame): the extent of the mask's bounding box; ``size`` is their
  maximum, the longer side (what "small" and "large" are about).
- ``brightness``: the mean intensity of the ink (mask) pixels, in [0, 1]; ``contrast``: the RMS contrast, the
  standard deviation of the intensity over the whole image.
"""

from __future__ import annotations

import math

import torch

ATTRIBUTES = ("thickness", "slant", "height", "width", "size", "brightness", "contrast")


def _intensity(x: torch.Tensor) -> torch.Tensor:
    if x.dim() != 4:
        raise ValueError(f"style attributes read a batch (N, C, H, W), got shape {tuple(x.shape)}")
    return ((x.float().mean(1) + 1) / 2).clamp(0, 1)  # (N, H, W)


def thickness(x: torch.Tensor) -> torch.Tensor:
    m = (_intensity(x) > 0.5).float()
    area = m.sum((1, 2))
    pad = torch.nn.functional.pad(m, (1, 1, 1, 1))
    perimeter = (pad[:, 1:, :] != pad[:, :-1, :]).sum((1, 2)) + (pad[:, :, 1:] != pad[:, :, :-1]).sum((1, 2))
    p4 = perimeter.float() / 4
    disc = (p4**2 - area).clamp(min=0)
    return torch.where(area > 0, p4 - disc.sqrt(), torch.zeros_like(area))


def slant(x: torch.Tensor) -> torch.Tensor:
    v = _intensity(x)
    n, h, w = v.shape
    ys = torch.arange(h, dtype=v.dtype).view(1, h, 1)
    xs = torch.arange(w, dtype=v.dtype).view(1, 1, w)
    mass = v.sum((1, 2)).clamp(min=1e-8)
    my = (v * ys).sum((1, 2)) / mass
    mx = (v * xs).sum((1, 2)) / mass
    dy, dx = ys - my.view(n, 1, 1), xs - mx.view(n, 1, 1)
    mu11 = (v * dx * dy).sum((1, 2)) / mass
    mu02 = (v * dy * dy).sum((1, 2)) / mass
    return torch.rad2deg(torch.atan(-mu11 / mu02.clamp(min=1e-8)))


def extent(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(height, width) of the mask's bounding box, as fractions of the frame (0 for an empty image)."""
    m = _intensity(x) > 0.5
    _, h, w = m.shape
    rows, cols = m.any(2), m.any(1)

    def span(a: torch.Tensor, size: int) -> torch.Tensor:
        idx = torch.arange(size).expand_as(a)
        first = torch.where(a, idx, size).min(1).values
        last = torch.where(a, idx, -1).max(1).values
        return ((last - first + 1).clamp(min=0)).float() / size

    return span(rows, h), span(cols, w)


def brightness(x: torch.Tensor) -> torch.Tensor:
    v = _intensity(x)
    m = (v > 0.5).float()
    return (v * m).sum((1, 2)) / m.sum((1, 2)).clamp(min=1)


def contrast(x: torch.Tensor) -> torch.Tensor:
    return _intensity(x).flatten(1).std(1)


def measure(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every attribute of every image: ``{name: (N,)}``."""
    h, w = extent(x)
    return {
        "thickness": thickness(x),
        "slant": slant(x),
        "height": h,
        "width": w,
        "size": torch.maximum(h, w),
        "brightness": brightness(x),
        "contrast": contrast(x),
    }


def summary(values: dict[str, torch.Tensor]) -> dict[str, dict[str, float]]:
    """Mean and standard deviation of each attribute over the batch."""
    return {
        k: {"mean": float(v.mean()), "sd": float(v.std()) if v.numel() > 1 else math.nan}
        for k, v in values.items()
    }
