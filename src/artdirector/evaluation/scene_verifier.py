"""The scene verifier's eyes: a detector that finds the objects, and a second stage that names each one.

Stage 1, :class:`~artdirector.models.detector.SceneDetector` (CenterNet on the whole canvas): where the objects
are, and which dataset each belongs to (a digit or a piece of clothing). Stage 2 (this module): each detection
is cropped from the canvas, normalised the way its dataset was (MNIST: the ink's longer side scaled to 20 px
and centred by its centre of mass in a 28 px frame, LeCun et al. 1998; FashionMNIST: the longer side scaled to
28 px), and classified by the shipped LeNet of that dataset (``weights/lenet_<dataset>.pt``: 99.3 % and
92.1 % accuracy on their report (test) splits; each learned from its 55,000-image train split and was chosen on
its selection split). Classifying a scale-normalised crop is what a two-stage detector's second stage does
(R-CNN, Girshick et al. 2014); here it lets a detector trained for half an hour on a CPU borrow classifiers
trained on 110,000 images.

Nothing here is told the layout: the crops come from the detections.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from artdirector.evaluation.features import LeNetFeatures
from artdirector.scenes.canvas import global_id, local

FRAME = {"mnist": 20, "fashion_mnist": 28}  # the longer side of an object in its 28 px frame
# what counts as the object's pixels when tightening: a digit's strokes are bright; a garment has dark parts
# (a black shirt) that are still the garment, so anything above the black background counts
INK = {"mnist": 0.0, "fashion_mnist": -0.9}


def normalise(canvas: torch.Tensor, box, dataset: str, margin: float = 0.15) -> torch.Tensor:
    """The object in ``box`` of ``canvas`` (1, H, W), framed as its dataset frames it: (1, 28, 28) in
    [-1, 1]. The box is widened by ``margin`` and then tightened to the ink inside it, so a box that cuts a
    stroke off still yields the whole object."""
    _, h, w = canvas.shape
    x0, y0, x1, y1 = (float(v) for v in box)
    mx, my = margin * (x1 - x0), margin * (y1 - y0)
    x0, y0 = max(0, int(x0 - mx)), max(0, int(y0 - my))
    x1, y1 = min(w, round(x1 + mx + 0.5)), min(h, round(y1 + my + 0.5))
    region = canvas[:, y0:y1, x0:x1]
    ink = (region[0] > INK[dataset]).nonzero()
    if len(ink) and region.numel():
        region = region[:, ink[:, 0].min() : ink[:, 0].max() + 1, ink[:, 1].min() : ink[:, 1].max() + 1]
    out = torch.full((1, 28, 28), -1.0)
    rh, rw = region.shape[-2:]
    if rh == 0 or rw == 0:
        return out
    side = FRAME[dataset]
    scale = side / max(rh, rw)
    nh, nw = max(1, round(rh * scale)), max(1, round(rw * scale))
    obj = F.interpolate(region[None].float(), size=(nh, nw), mode="bilinear", antialias=True)[0].clamp(-1, 1)
    if dataset == "mnist":  # centred by the centre of mass, as MNIST was
        v = (obj[0] + 1) / 2
        total = v.sum().clamp(min=1e-6)
        cy = float((v.sum(1) * torch.arange(nh)).sum() / total)
        cx = float((v.sum(0) * torch.arange(nw)).sum() / total)
        top, left = round(14 - cy - 0.5), round(14 - cx - 0.5)
    else:  # centred by the box
        top, left = (28 - nh) // 2, (28 - nw) // 2
    top, left = min(max(top, 0), 28 - nh), min(max(left, 0), 28 - nw)
    out[:, top : top + nh, left : left + nw] = obj
    return out


class TwoStageDetector:
    """``detect``/``predict`` like a :class:`SceneDetector`, with each class named by the crop classifier of
    the dataset stage 1 assigned it to."""

    def __init__(self, detector: Any, classifiers: dict[str, Any] | None = None) -> None:
        self.detector = detector
        self.classifiers = classifiers or {d: LeNetFeatures(d).eval() for d in FRAME}

    @property
    def info(self) -> dict[str, Any]:
        return {
            **getattr(self.detector, "info", {}),
            "second_stage": {d: c.identity for d, c in self.classifiers.items()},
        }

    def describe(self) -> dict[str, Any]:
        info = self.info
        return {
            "name": "two-stage: CenterNet (objects, dataset) + LeNet of the dataset (class)",
            "detector": info.get("path"),
            "second_stage": info["second_stage"],
            "test_metrics": info.get("metrics") or info.get("test"),
        }

    @torch.no_grad()
    def relabel(self, canvas: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if len(boxes) == 0:
            return labels
        out = labels.clone()
        for dataset, clf in self.classifiers.items():
            idx = [i for i, g in enumerate(labels.tolist()) if local(g)[0] == dataset]
            if not idx:
                continue
            crops = torch.stack([normalise(canvas.cpu(), boxes[i].tolist(), dataset) for i in idx])
            dev = next(clf.parameters()).device
            pred = clf.logits_from_features(clf(crops.to(dev))).argmax(1).cpu()
            for i, p in zip(idx, pred.tolist(), strict=True):
                out[i] = global_id(dataset, p)
        return out

    def predict(self, canvases: torch.Tensor, threshold: float = 0.3) -> list[dict[str, torch.Tensor]]:
        x = canvases if canvases.ndim == 4 else canvases[None]
        results = self.detector.predict(x, threshold=threshold)
        for canvas, r in zip(x, results, strict=True):
            r["labels"] = self.relabel(canvas, r["boxes"], r["labels"])
        return results

    def detect(self, canvases: torch.Tensor, threshold: float = 0.3) -> list:
        from artdirector.models.detection.inference import Detection

        return [
            [
                Detection(int(g), tuple(float(v) for v in b), float(s))
                for b, s, g in zip(
                    r["boxes"].tolist(), r["scores"].tolist(), r["labels"].tolist(), strict=True
                )
            ]
            for r in self.predict(canvases, threshold)
        ]
