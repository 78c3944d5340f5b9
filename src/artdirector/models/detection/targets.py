"""CenterNet's training targets and loss: Gaussian centre heatmaps, sizes and offsets per object, and the
penalty-reduced focal loss (Zhou, Wang and Krähenbühl 2019)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F


def gaussian_radius(height: float, width: float, min_overlap: float = 0.7) -> float:
    """CenterNet's radius: how far a corner may move with the box still at IoU >= ``min_overlap``."""
    a1, b1 = 1.0, height + width
    c1 = width * height * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + math.sqrt(b1**2 - 4 * a1 * c1)) / 2
    a2, b2 = 4.0, 2 * (height + width)
    c2 = (1 - min_overlap) * width * height
    r2 = (b2 + math.sqrt(b2**2 - 4 * a2 * c2)) / 2
    a3, b3 = 4 * min_overlap, -2 * min_overlap * (height + width)
    c3 = (min_overlap - 1) * width * height
    r3 = (b3 + math.sqrt(b3**2 - 4 * a3 * c3)) / 2
    return min(r1, r2, r3)


def render_targets(
    targets: Sequence[Mapping[str, torch.Tensor]], num_classes: int, out_h: int, out_w: int, stride: int = 4
) -> dict[str, torch.Tensor]:
    """Ground-truth heatmaps (B, C, h, w) with a Gaussian peak of 1 at each object's centre cell, and per
    object its batch index, cell index, size and offset (in output cells)."""
    heat = torch.zeros(len(targets), num_classes, out_h, out_w)
    ys = torch.arange(out_h, dtype=torch.float32)[:, None]
    xs = torch.arange(out_w, dtype=torch.float32)[None, :]
    batch, index, size, offset = [], [], [], []
    for b, t in enumerate(targets):
        boxes = t["boxes"].detach().float().cpu().reshape(-1, 4) / stride
        for (x0, y0, x1, y1), gid in zip(boxes.tolist(), t["labels"].tolist(), strict=True):
            w, h = x1 - x0, y1 - y0
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            ix, iy = min(max(int(cx), 0), out_w - 1), min(max(int(cy), 0), out_h - 1)
            r = max(0, int(gaussian_radius(math.ceil(h), math.ceil(w))))
            sigma = (2 * r + 1) / 6
            dx, dy = xs - ix, ys - iy
            g = torch.exp(-(dx**2 + dy**2) / (2 * sigma**2))
            g = g * ((dx.abs() <= r) & (dy.abs() <= r))
            heat[b, gid] = torch.maximum(heat[b, gid], g)
            batch.append(b)
            index.append(iy * out_w + ix)
            size.append((w, h))
            offset.append((cx - ix, cy - iy))
    return {
        "heatmap": heat,
        "batch": torch.tensor(batch, dtype=torch.long),
        "index": torch.tensor(index, dtype=torch.long),
        "size": torch.tensor(size, dtype=torch.float32).reshape(-1, 2),
        "offset": torch.tensor(offset, dtype=torch.float32).reshape(-1, 2),
    }


def focal_loss(logits: torch.Tensor, gt: torch.Tensor, alpha: float = 2.0, beta: float = 4.0) -> torch.Tensor:
    """CenterNet's penalty-reduced pixel-wise focal loss, normalised by the number of objects."""
    pos = gt.eq(1).float()
    p = torch.sigmoid(logits)
    pos_loss = F.logsigmoid(logits) * (1 - p) ** alpha * pos
    neg_loss = F.logsigmoid(-logits) * p**alpha * (1 - gt) ** beta * (1 - pos)
    return -(pos_loss.sum() + neg_loss.sum()) / pos.sum().clamp(min=1)


def at_centres(x: torch.Tensor, batch: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """(B, 2, h, w) map -> (n, 2) values at each object's centre cell."""
    return x.flatten(2)[batch, :, index]
