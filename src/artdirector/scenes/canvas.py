"""What every part of scene synthesis shares: the object vocabulary, boxes, and placing an image on a canvas.

A scene is a canvas (1, H, W) in [-1, 1] with a black (-1) background, like the MNIST and FashionMNIST images
placed on it. Boxes are ``(x0, y0, x1, y1)`` in canvas pixels (torchvision's xyxy), floats.

Object classes in a scene are global ids: ``0-9`` the MNIST digits, ``10-19`` FashionMNIST's ten classes in
torchvision's label order (named in ``artdirector.prompts.words.CLASS_NAMES``). ``global_id(dataset, label)``
and ``local(gid)`` convert.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from artdirector.prompts.words import CLASS_NAMES

DATASETS = ("mnist", "fashion_mnist")

# How much of its 28x28 frame an object's ink fills along its longer side, per dataset: MNIST digits are
# normalised into a 20x20 box (LeCun et al. 1998), FashionMNIST items fill the frame. A detected (tight) box is
# divided by this to estimate the cell the object was drawn in; that is what "small" and "large" are about.
INK_FILL = {"mnist": 20 / 28, "fashion_mnist": 1.0}

# Object cells relative to the planner's base cell (default 32 px on a 128 px canvas: four per row)
SIZE_SCALE = {"small": 0.6, None: 1.0, "large": 1.5}


def global_id(dataset: str, label: int) -> int:
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}: scenes hold objects of {DATASETS}")
    return int(label) + 10 * DATASETS.index(dataset)


def local(gid: int) -> tuple[str, int]:
    """(dataset, label) of a global class id."""
    return DATASETS[int(gid) // 10], int(gid) % 10


def class_name(gid: int) -> str:
    return CLASS_NAMES[int(gid)]


Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Placed:
    """One object instance on a canvas: its class, its box, and the size word it was asked for."""

    gid: int
    box: Box
    size: str | None = None

    @property
    def name(self) -> str:
        return class_name(self.gid)

    @property
    def dataset(self) -> str:
        return local(self.gid)[0]


def center(box: Box) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def blank(height: int, width: int) -> torch.Tensor:
    return torch.full((1, height, width), -1.0)


def cell_box(x0: int, y0: int, size: int) -> Box:
    return (float(x0), float(y0), float(x0 + size), float(y0 + size))


def paste(canvas: torch.Tensor, image: torch.Tensor, box: Box) -> torch.Tensor:
    """Place ``image`` (C, h, w) in [-1, 1] into ``box`` of ``canvas`` (resized with antialiasing; the brighter
    pixel wins where they meet, so a black margin never covers a neighbour). Returns the canvas (in place)."""
    x0, y0, x1, y1 = (round(v) for v in box)
    h, w = y1 - y0, x1 - x0
    if h <= 0 or w <= 0 or x0 < 0 or y0 < 0 or y1 > canvas.shape[-2] or x1 > canvas.shape[-1]:
        raise ValueError(f"box {box} does not fit a canvas of {tuple(canvas.shape[-2:])}")
    img = image.float()
    if img.shape[0] != canvas.shape[0]:
        img = img.mean(0, keepdim=True) if canvas.shape[0] == 1 else img.expand(canvas.shape[0], -1, -1)
    if img.shape[-2:] != (h, w):
        img = F.interpolate(img[None], size=(h, w), mode="bilinear", antialias=True, align_corners=False)[0]
    region = canvas[:, y0:y1, x0:x1]
    canvas[:, y0:y1, x0:x1] = torch.maximum(region, img.clamp(-1, 1))
    return canvas


def ink_box(image: torch.Tensor, box: Box, threshold: float = 0.0) -> Box:
    """The tight box of the ink (pixels above ``threshold`` in [-1, 1]) of an image pasted into ``box``: what
    a detector is trained to find. Falls back to ``box`` for an empty image."""
    x0, y0, x1, y1 = (round(v) for v in box)
    img = image.float()
    if img.shape[-2:] != (y1 - y0, x1 - x0):
        img = F.interpolate(img[None], size=(y1 - y0, x1 - x0), mode="bilinear", antialias=True)[0]
    ink = (img.amax(0) > threshold).nonzero()
    if len(ink) == 0:
        return (float(x0), float(y0), float(x1), float(y1))
    ys, xs = ink[:, 0], ink[:, 1]
    return (float(x0 + xs.min()), float(y0 + ys.min()), float(x0 + xs.max() + 1), float(y0 + ys.max() + 1))


def estimated_cell(box: Box, gid: int) -> float:
    """The side of the cell an object of class ``gid`` with this (tight) box was drawn in."""
    side = max(box[2] - box[0], box[3] - box[1])
    return side / INK_FILL[local(gid)[0]]
