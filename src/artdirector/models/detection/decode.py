"""The detector's output as boxes.

Decoding: sigmoid heatmap, 3x3 max-pool peak suppression, the top ``top_k`` peaks over all classes, the
score threshold, then class-agnostic NMS at IoU 0.5 (two classes at one spot are one object: the stronger).
A detection's score is its heatmap peak; its class is then named by the second stage, a small classifier
of the detection's square crop resized to 32x32 (``CenterNet.classify``, :func:`relabel`): one-stage heatmap
classes plateaued at 79% class accuracy (FashionMNIST 70%) in the CPU budget, where a scale-normalised crop
reads like the 28x28 images the classes come from. ``crop_classifier=false`` keeps the heatmap's classes.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F

from artdirector.models.nets.detector import CenterNet
from artdirector.models.vision_ops import nms


def decode(
    out: Mapping[str, torch.Tensor],
    threshold: float = 0.3,
    top_k: int = 50,
    nms_iou: float = 0.5,
    stride: int = 4,
    canvas: tuple[int, int] | None = None,
) -> list[dict[str, torch.Tensor]]:
    """The net's output -> per image {"boxes" (n, 4) xyxy px, "scores" (n,), "labels" (n,)}, best first:
    3x3 max-pool peaks, the top ``top_k`` over all classes, score >= ``threshold``, class-agnostic NMS.
    With an ``objectness`` map in ``out``, the peaks and scores are its own (class-agnostic) and each
    peak's label is the class heatmap's best at that cell."""
    heat = torch.sigmoid(out["heatmap"].float())
    b, c, h, w = heat.shape
    if "objectness" in out:  # peaks of the class-agnostic map; each one's class: the heatmap's best there
        obj = torch.sigmoid(out["objectness"].float())
        peaks = obj * (F.max_pool2d(obj, 3, stride=1, padding=1) == obj)
        scores, cell = peaks.flatten(1).topk(min(top_k, h * w))
        labels = heat.flatten(2).gather(2, cell[:, None, :].expand(-1, c, -1)).argmax(1)
    else:
        peaks = heat * (F.max_pool2d(heat, 3, stride=1, padding=1) == heat)
        scores, inds = peaks.flatten(1).topk(min(top_k, c * h * w))
        labels, cell = inds // (h * w), inds % (h * w)
    size = out["size"].float().flatten(2)
    offset = out["offset"].float().flatten(2)
    results = []
    for i in range(b):
        keep = scores[i] >= threshold
        s, lab, cl = scores[i][keep], labels[i][keep], cell[i][keep]
        cx = ((cl % w).float() + offset[i, 0, cl]) * stride
        cy = ((cl // w).float() + offset[i, 1, cl]) * stride
        bw, bh = size[i, 0, cl].clamp(min=0) * stride, size[i, 1, cl].clamp(min=0) * stride
        boxes = torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], dim=1)
        if canvas is not None:
            boxes[:, 0::2] = boxes[:, 0::2].clamp(0, canvas[1])
            boxes[:, 1::2] = boxes[:, 1::2].clamp(0, canvas[0])
        kept = nms(boxes, s, nms_iou)
        results.append({"boxes": boxes[kept], "scores": s[kept], "labels": lab[kept]})
    return results


def relabel(
    net: CenterNet, canvases: torch.Tensor, dets: list[dict[str, torch.Tensor]]
) -> list[dict[str, torch.Tensor]]:
    """With a crop classifier, each detection's class is the crop classifier's (the heatmap found it and
    scores it; the scale-normalised crop names it). Without one, ``dets`` as they are."""
    if net.classifier is None or not any(len(d["boxes"]) for d in dets):
        return dets
    logits = net.classify(canvases, [d["boxes"] for d in dets])
    labels = logits.argmax(1).split([len(d["boxes"]) for d in dets])
    return [{**d, "labels": lab.to(d["labels"].dtype)} for d, lab in zip(dets, labels, strict=True)]
