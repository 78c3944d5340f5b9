"""The detector's metrics (:class:`SceneMetrics`; ``val/...`` on the fixed selection scenes, ``test/...`` on
the fixed report scenes), with detections at the score ``threshold`` (0.3 by default) unless said otherwise:

- ``count_acc``: the fraction of scenes where the number of detections equals the number of objects;
- ``class_acc``: the fraction of ground-truth objects matched to a detection of the right class. Matching
  is one-to-one (Hungarian) between objects and detections with IoU >= 0.5, maximising the number of
  matched pairs with the right class first and then the summed IoU;
- ``exact``: scene exact-match, the fraction of scenes whose detections match all the objects with the right
  class and hold nothing else (as many detections as objects): the verifier's own error rate is
  ``1 - exact``;
- ``map50``: COCO-style mean average precision at IoU 0.5 (``torchmetrics.detection.MeanAveragePrecision``,
  ``iou_thresholds=[0.5]``, macro over classes), from all detections with score >= ``map_threshold``
  (0.01) so that the whole precision-recall curve counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from artdirector.models.detection.inference import SceneDetector


def match(
    det_boxes: torch.Tensor,
    det_labels: torch.Tensor,
    gt_boxes: torch.Tensor,
    gt_labels: torch.Tensor,
    iou_threshold: float = 0.5,
) -> list[tuple[int, int]]:
    """One-to-one (gt, detection) pairs with IoU >= ``iou_threshold`` (Hungarian): as many right-class
    pairs as possible, then as many pairs, then the largest summed IoU."""
    if len(det_boxes) == 0 or len(gt_boxes) == 0:
        return []
    from scipy.optimize import linear_sum_assignment
    from torchvision.ops import box_iou

    iou = box_iou(gt_boxes.float(), det_boxes.float())
    valid = iou >= iou_threshold
    same = gt_labels[:, None] == det_labels[None, :]
    gain = torch.where(valid, 100.0 * same + 10.0 + iou, torch.zeros_like(iou)).numpy()
    rows, cols = linear_sum_assignment(-gain)
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if valid[r, c]]


def scene_result(
    det: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor], threshold: float
) -> dict[str, int]:
    """One scene's counts at the score ``threshold``: objects, detections, objects matched with the right
    class, and whether the count and the whole scene are right."""
    keep = det["scores"] >= threshold
    boxes, labels = det["boxes"][keep], det["labels"][keep]
    gt_boxes, gt_labels = target["boxes"].reshape(-1, 4), target["labels"].reshape(-1)
    pairs = match(boxes, labels, gt_boxes, gt_labels)
    right = sum(int(labels[d] == gt_labels[g]) for g, d in pairs)
    n, k = len(gt_labels), len(labels)
    return {
        "objects": n,
        "detections": k,
        "right": right,
        "count_ok": int(n == k),
        "exact": int(n == k == right),
    }


class SceneMetrics:
    """Accumulates :func:`scene_result` and mAP@0.5 over scenes (this module's docstring defines them)."""

    def __init__(self, threshold: float = 0.3, map_threshold: float = 0.01) -> None:
        from torchmetrics.detection import MeanAveragePrecision

        self.threshold, self.map_threshold = threshold, map_threshold
        self.map = MeanAveragePrecision(iou_thresholds=[0.5], box_format="xyxy")
        self.rows: list[dict[str, int]] = []

    def update(
        self, dets: Sequence[Mapping[str, torch.Tensor]], targets: Sequence[Mapping[str, torch.Tensor]]
    ) -> None:
        dets = [{k: v.detach().cpu() for k, v in d.items()} for d in dets]
        targets = [
            {k: targets[i][k].detach().cpu() for k in ("boxes", "labels")} for i in range(len(targets))
        ]
        self.rows += [scene_result(d, t, self.threshold) for d, t in zip(dets, targets, strict=True)]
        keep = [d["scores"] >= self.map_threshold for d in dets]
        self.map.update([{k: v[m] for k, v in d.items()} for d, m in zip(dets, keep, strict=True)], targets)

    def compute(self) -> dict[str, float]:
        n = len(self.rows)
        objects = sum(r["objects"] for r in self.rows)
        result = {
            "scenes": float(n),
            "objects": float(objects),
            "count_acc": sum(r["count_ok"] for r in self.rows) / max(n, 1),
            "class_acc": sum(r["right"] for r in self.rows) / objects if objects else float("nan"),
            "exact": sum(r["exact"] for r in self.rows) / max(n, 1),
        }
        m = float(self.map.compute()["map"]) if objects else float("nan")
        result["map50"] = m if m >= 0 else float("nan")  # torchmetrics says -1 when there is nothing to rank
        return result


def evaluate(
    detector: SceneDetector,
    batches: Iterable[tuple[torch.Tensor, Sequence[Mapping[str, torch.Tensor]]]],
    threshold: float = 0.3,
    map_threshold: float = 0.01,
) -> dict[str, float]:
    """:class:`SceneMetrics` of ``detector`` over (canvases, targets) batches (a scene loader)."""
    metrics = SceneMetrics(threshold, map_threshold)
    for x, targets in batches:
        metrics.update(detector.predict(x, threshold=min(threshold, map_threshold)), targets)
    return metrics.compute()
