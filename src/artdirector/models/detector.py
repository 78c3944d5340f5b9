"""The scene verifier's detector: a small CenterNet ("Objects as Points", Zhou, Wang and Krähenbühl 2019).

:class:`CenterNet` is fully convolutional with output stride 4: a per-class centre heatmap (the 20 global
classes of ``artdirector.scenes.canvas``: digits 0-9, FashionMNIST items 10-19), each centre's box size
(w, h) and its sub-pixel offset. :class:`DetectorModule` trains it on composed scenes
(``artdirector.data.scenes``, ``model=detector data=scenes``; the shipped recipe is
``python scripts/train.py experiment=detector``) and exports the weights at fit end;
:func:`load_detector` reads the exported file (by default the shipped ``weights/detector_scenes.pt``) into a
:class:`SceneDetector`, whose ``detect`` returns :class:`Detection` lists.

Decoding: sigmoid heatmap, 3x3 max-pool peak suppression, the top ``top_k`` peaks over all classes, the
score threshold, then class-agnostic NMS at IoU 0.5 (two classes at one spot are one object: the stronger).
A detection's score is its heatmap peak; its class is then named by the second stage, a small classifier
of the detection's square crop resized to 32x32 (``CenterNet.classify``): one-stage heatmap classes
plateaued at 79% class accuracy (FashionMNIST 70%) in the CPU budget, where a scale-normalised crop reads
like the 28x28 images the classes come from. ``crop_classifier=false`` keeps the heatmap's classes.

Metrics (:class:`SceneMetrics`; ``val/...`` on the fixed selection scenes, ``test/...`` on the fixed report
scenes), with detections at the score ``threshold`` (0.3 by default) unless said otherwise:

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

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from artdirector.errors import UserError
from artdirector.io import atomic_write
from artdirector.models.base import plain
from artdirector.models.checkpoint import KIND_KEY, CheckpointError, checkpoint_kind
from artdirector.scenes.canvas import CLASS_NAMES, NUM_CLASSES

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
SHIPPED = WEIGHTS_DIR / "detector_scenes.pt"
RECIPE = "python scripts/train.py experiment=detector"
NET_TARGET = "artdirector.models.detector.CenterNet"
FORMAT_VERSION = 1


# ---- the network ------------------------------------------------------------------------------------------
def _cbr(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class CenterNet(nn.Module):
    """A CenterNet for small grey canvases, output stride 4.

    Stride 2 and 4 stems (``width`` channels at stride 4: the detail small digits need), then ``stages``:
    each halves the resolution (a stride-2 3x3 conv to ``channels``) and holds one 3x3 conv per entry of
    ``dilations``. A top-down path (FPN-like: a 1x1 lateral, nearest upsampling, a sum, and a 3x3 conv at
    every level but the last) carries the coarse levels' context and class evidence back to stride 4, where
    one 3x3 conv (``head_width``) feeds the 1x1 heads: ``num_classes`` heatmap logits, box size (w, h) and
    centre offset (dx, dy), both in output cells (input pixels / 4). Fully convolutional: any H, W
    divisible by 4.

    With ``crop_classifier``, a second stage (:meth:`classify`) names the class of each box from its square
    crop of the canvas (``crop_scale`` x the longer side, resized to ``crop_size``): three 3x3 conv blocks
    (32, 64, 128 channels, each with 2x2 max-pooling) and two linear layers.
    """

    stride = 4

    def __init__(
        self,
        num_classes: int = NUM_CLASSES,
        in_channels: int = 1,
        width: int = 32,
        stages: Sequence[tuple[int, Sequence[int]]] = ((80, (1, 2, 4, 2)),),
        head_width: int = 64,
        prior: float = 0.1,
        crop_classifier: bool = True,
        crop_size: int = 32,
        crop_scale: float = 1.25,
        objectness: bool = False,
    ) -> None:
        super().__init__()
        self.num_classes = int(num_classes)
        self.crop_size, self.crop_scale = int(crop_size), float(crop_scale)
        self.stages = tuple((int(c), tuple(int(d) for d in dils)) for c, dils in stages)
        self.stem = nn.Sequential(_cbr(in_channels, 16, 2), _cbr(16, width, 2), _cbr(width, width))
        self.downs, self.blocks, self.laterals, self.smooth = (nn.ModuleList() for _ in range(4))
        above = width
        for i, (ch, dils) in enumerate(self.stages):
            self.downs.append(_cbr(above, ch, 2))
            self.blocks.append(nn.Sequential(*[_cbr(ch, ch, 1, d) for d in dils]))
            self.laterals.append(nn.Conv2d(ch, above, 1))
            # the merged level above this one (the stride-4 level's is ``fuse``)
            self.smooth.append(_cbr(above, above) if i > 0 else nn.Identity())
            above = ch
        self.fuse = _cbr(width, head_width)
        self.heatmap = nn.Conv2d(head_width, self.num_classes, 1)
        # class-agnostic centres: a score that does not split between look-alike classes
        self.objectness = nn.Conv2d(head_width, 1, 1) if objectness else None
        self.size = nn.Conv2d(head_width, 2, 1)
        self.offset = nn.Conv2d(head_width, 2, 1)
        for head in (self.heatmap, self.objectness):
            if head is not None:
                nn.init.constant_(head.bias, -math.log((1 - prior) / prior))  # CenterNet's -2.19
        # the second stage: each object's square crop of the canvas, scale-normalised, classified again
        self.classifier = (
            nn.Sequential(
                _cbr(in_channels, 32),
                nn.MaxPool2d(2),
                _cbr(32, 64),
                nn.MaxPool2d(2),
                _cbr(64, 128),
                nn.MaxPool2d(2),
                nn.Flatten(),
                nn.Linear(128 * (self.crop_size // 8) ** 2, 128),
                nn.ReLU(inplace=True),
                nn.Dropout(0.2),
                nn.Linear(128, self.num_classes),
            )
            if crop_classifier
            else None
        )

    def crops(self, canvases: torch.Tensor, boxes: Sequence[torch.Tensor]) -> torch.Tensor:
        """(n, C, crop_size, crop_size): the square of side ``crop_scale`` x the longer side of each box
        (xyxy px, one (k, 4) tensor per canvas) around its centre, resized; outside the canvas is black."""
        from torchvision.ops import roi_align

        squares = []
        for b in boxes:
            b = b.float().reshape(-1, 4)
            centre = (b[:, :2] + b[:, 2:]) / 2
            half = ((b[:, 2:] - b[:, :2]).amax(1, keepdim=True) * self.crop_scale / 2).clamp(min=2.0)
            squares.append(torch.cat([centre - half, centre + half], 1).to(canvases.dtype))
        x = canvases.contiguous() + 1  # zero padding outside the canvas = black (-1)
        out = roi_align(x, squares, self.crop_size, spatial_scale=1.0, sampling_ratio=2, aligned=True)
        return out - 1

    def classify(self, canvases: torch.Tensor, boxes: Sequence[torch.Tensor]) -> torch.Tensor:
        """(n, num_classes) logits of the crop classifier for each box."""
        if self.classifier is None:
            raise RuntimeError("this CenterNet has no crop classifier (crop_classifier=false)")
        return self.classifier(self.crops(canvases, boxes))

    def receptive_field(self) -> int:
        """The receptive field of an output cell in input pixels (the path through the coarsest level)."""
        rf, jump = 1, 1
        for stride in (2, 2, 1):  # the stems
            rf, jump = rf + 2 * jump, jump * stride
        for _, dils in self.stages:
            rf, jump = rf + 2 * jump, jump * 2
            rf += sum(2 * d * jump for d in dils)
        for i in range(len(self.stages) - 1, 0, -1):  # smoothing convs on the way back up
            rf += 2 * self.stride * 2**i
        return rf + 2 * self.stride  # fuse

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = [self.stem(x)]
        for down, block in zip(self.downs, self.blocks, strict=True):
            feats.append(block(down(feats[-1])))  # a stride-2 conv gives ceil(n / 2): odd sizes are fine
        top = feats[-1]
        for i in range(len(self.stages) - 1, -1, -1):
            up = F.interpolate(self.laterals[i](top), scale_factor=2.0, mode="nearest")
            top = self.smooth[i](feats[i] + up[..., : feats[i].shape[-2], : feats[i].shape[-1]])
        feat = self.fuse(top)
        out = {"heatmap": self.heatmap(feat), "size": self.size(feat), "offset": self.offset(feat)}
        if self.objectness is not None:
            out["objectness"] = self.objectness(feat)
        return out


# ---- targets and loss (CenterNet) -------------------------------------------------------------------------
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


def _at_centres(x: torch.Tensor, batch: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """(B, 2, h, w) map -> (n, 2) values at each object's centre cell."""
    return x.flatten(2)[batch, :, index]


# ---- decoding and the public detector API ----------------------------------------------------------------
@dataclass(frozen=True)
class Detection:
    """One detected object: global class id, box (x0, y0, x1, y1) in canvas pixels, score in (0, 1)."""

    gid: int
    box: tuple[float, float, float, float]
    score: float

    @property
    def name(self) -> str:
        return CLASS_NAMES[self.gid]


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
    from torchvision.ops import nms

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


class DetectorWeightsError(UserError, FileNotFoundError):
    """The detector's weights file is missing or is not one :func:`load_detector` can read."""


class SceneDetector:
    """A trained :class:`CenterNet` for inference: ``detect(canvases)`` -> one list of
    :class:`Detection` per canvas. ``info`` holds what the weights file says about itself (metrics, recipe)."""

    def __init__(
        self,
        net: CenterNet,
        top_k: int = 50,
        nms_iou: float = 0.5,
        info: Mapping[str, Any] | None = None,
        batch_size: int = 64,
    ) -> None:
        self.net = net.eval()
        self.top_k, self.nms_iou, self.batch_size = top_k, nms_iou, batch_size
        self.info = dict(info or {})

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def _check(self, canvases: torch.Tensor) -> torch.Tensor:
        if not isinstance(canvases, torch.Tensor) or canvases.ndim not in (3, 4) or canvases.shape[-3] != 1:
            shape = tuple(canvases.shape) if isinstance(canvases, torch.Tensor) else type(canvases).__name__
            raise ValueError(f"expected canvases (B, 1, H, W) in [-1, 1], got {shape}")
        if canvases.shape[-1] % 4 or canvases.shape[-2] % 4:
            raise ValueError(
                f"canvas height and width must be divisible by 4, got {tuple(canvases.shape[-2:])}"
            )
        return canvases if canvases.ndim == 4 else canvases[None]

    def predict(self, canvases: torch.Tensor, threshold: float = 0.3) -> list[dict[str, torch.Tensor]]:
        """Like :meth:`detect`, as tensors (what the metrics read)."""
        x = self._check(canvases)
        was_training = self.net.training
        self.net.eval()
        results: list[dict[str, torch.Tensor]] = []
        with torch.inference_mode():
            for chunk in x.split(self.batch_size):
                chunk = chunk.to(self.device, torch.float32).contiguous(memory_format=torch.channels_last)
                out = self.net(chunk)
                dets = decode(
                    out, threshold, self.top_k, self.nms_iou, self.net.stride, tuple(chunk.shape[-2:])
                )
                results += [{k: v.cpu() for k, v in r.items()} for r in relabel(self.net, chunk, dets)]
        self.net.train(was_training)
        return results

    def detect(self, canvases: torch.Tensor, threshold: float = 0.3) -> list[list[Detection]]:
        """Objects on each canvas (B, 1, H, W) in [-1, 1], H and W divisible by 4: score >= ``threshold``,
        best first."""
        return [
            [
                Detection(int(g), tuple(float(v) for v in box), float(s))
                for box, s, g in zip(
                    r["boxes"].tolist(), r["scores"].tolist(), r["labels"].tolist(), strict=True
                )
            ]
            for r in self.predict(canvases, threshold)
        ]


def build_net(spec: Mapping[str, Any]) -> CenterNet:
    """A :class:`CenterNet` from its config (only that target: nothing else is built from a file)."""
    target = spec.get("_target_", NET_TARGET)
    if target != NET_TARGET:
        raise DetectorWeightsError(f"the detector net must be {NET_TARGET}, the file names {target}")
    return CenterNet(**{k: v for k, v in spec.items() if not str(k).startswith("_")})


def load_detector(path: str | Path | None = None, map_location: str | torch.device = "cpu") -> SceneDetector:
    """The detector in a file :class:`DetectorModule` exported (``None``: the shipped
    ``artdirector/weights/detector_scenes.pt``), read with ``weights_only=True``, in eval mode."""
    path = Path(path) if path is not None else SHIPPED
    if not path.is_file():
        how = (
            f"it ships with artdirector; reinstall the package, or rebuild it with `{RECIPE}` and copy "
            "<run dir>/detector.pt there"
            if path == SHIPPED
            else f"pass a detector.pt written by `{RECIPE}`"
        )
        raise DetectorWeightsError(f"detector weights not found at {path}: {how}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise DetectorWeightsError(
            f"{path} could not be read as detector weights ({type(err).__name__})"
        ) from err
    if not isinstance(payload, dict) or "state_dict" not in payload or "net" not in payload:
        raise DetectorWeightsError(f"{path} is not a detector weights file (no state_dict / net)")
    net = build_net(payload["net"])
    net.load_state_dict({k: v.float() for k, v in payload["state_dict"].items()})
    net = net.to(map_location).to(memory_format=torch.channels_last).eval()
    info = {k: v for k, v in payload.items() if k != "state_dict"}
    info["path"] = str(path)
    return SceneDetector(net, info=info)


# ---- metrics -----------------------------------------------------------------------------------------------
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
    """Accumulates :func:`scene_result` and mAP@0.5 over scenes (the module docstring defines them)."""

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


# ---- training ----------------------------------------------------------------------------------------------
class DetectorModule(L.LightningModule):
    """CenterNet training: focal loss on the heatmaps, L1 on size (weight ``size_weight``, 0.1 as the
    paper) and offset (``offset_weight``) at the object centres; AdamW with a linear warm-up and a cosine
    decay to ``min_lr_ratio`` over the run's steps (with ``anneal_by_time``, over ``trainer.max_time`` when
    that runs out first: a busier CPU still ends annealed, at the cost of bit-exact repeatability). Validation logs ``val/map50``, ``val/count_acc``,
    ``val/class_acc``, ``val/exact`` (and ``test/...`` in ``trainer.test``). At the end of fitting, the
    net's weights (fp16), its config, the test-scene metrics and the canvas size go to ``export_path``:
    the file :func:`load_detector` reads."""

    def __init__(
        self,
        net: Any,
        optimizer: Any,
        warmup_steps: int = 200,
        min_lr_ratio: float = 0.02,
        size_weight: float = 0.1,
        offset_weight: float = 1.0,
        crop_weight: float = 1.0,
        crop_jitter: float = 0.1,
        threshold: float = 0.3,
        map_threshold: float = 0.01,
        top_k: int = 50,
        export_path: str | None = None,
        export_fp16: bool = True,
        anneal_by_time: bool = False,
    ) -> None:
        super().__init__()
        net, optimizer = plain(net), plain(optimizer)
        if not isinstance(net, Mapping):
            raise TypeError("DetectorModule's net is a config of artdirector.models.detector.CenterNet")
        self.save_hyperparameters()
        self.net = build_net(net).to(memory_format=torch.channels_last)
        self._metrics: SceneMetrics | None = None
        self._timer: Any = None

    def on_train_start(self) -> None:
        from lightning.pytorch.callbacks import Timer

        timer = next((cb for cb in self.trainer.callbacks if isinstance(cb, Timer)), None)
        budget = getattr(timer, "_duration", None)
        self._timer = timer if self.hparams.anneal_by_time and budget else None

    def _progress(self, step: int, total: float) -> float:
        """The fraction of the run done: by steps, or (``anneal_by_time`` with ``trainer.max_time``) by the
        time budget when that runs out first, so a slower or busier CPU still anneals before the stop."""
        done = (step / total) if math.isfinite(total) and total > 0 else 0.0
        if self._timer is not None:
            done = max(done, self._timer.time_elapsed("train") / self._timer._duration)
        return min(1.0, done)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.net(x.contiguous(memory_format=torch.channels_last))

    def _jittered(self, targets) -> list[torch.Tensor]:
        """Ground-truth boxes moved and scaled a little, as the heatmap's boxes will be: what the crop
        classifier learns from (``crop_jitter``: the largest shift, as a fraction of the side, and scale)."""
        j = float(self.hparams.crop_jitter)
        boxes = []
        for t in targets:
            b = t["boxes"].float().reshape(-1, 4)
            wh = (b[:, 2:] - b[:, :2]).clamp(min=1)
            centre = (b[:, :2] + b[:, 2:]) / 2 + (torch.rand_like(wh) * 2 - 1) * j * wh
            half = wh / 2 * (1 + (torch.rand_like(wh) * 2 - 1) * j)
            boxes.append(torch.cat([centre - half, centre + half], 1))
        return boxes

    def _loss(
        self, out: Mapping[str, torch.Tensor], targets, x: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        h, w = out["heatmap"].shape[-2:]
        gt = render_targets(targets, self.net.num_classes, h, w, self.net.stride)
        dev = out["heatmap"].device
        heat = focal_loss(out["heatmap"].float(), gt["heatmap"].to(dev))
        if "objectness" in out:
            heat = heat + focal_loss(out["objectness"].float(), gt["heatmap"].to(dev).amax(1, keepdim=True))
        n = max(len(gt["batch"]), 1)
        b, i = gt["batch"].to(dev), gt["index"].to(dev)
        size = F.l1_loss(_at_centres(out["size"].float(), b, i), gt["size"].to(dev), reduction="sum") / n
        offset = (
            F.l1_loss(_at_centres(out["offset"].float(), b, i), gt["offset"].to(dev), reduction="sum") / n
        )
        hp = self.hparams
        losses = {
            "loss": heat + hp.size_weight * size + hp.offset_weight * offset,
            "heatmap": heat,
            "size": size,
            "offset": offset,
        }
        if self.net.classifier is not None and x is not None and len(gt["batch"]):
            labels = torch.cat([t["labels"].reshape(-1) for t in targets]).to(dev)
            crop = F.cross_entropy(self.net.classify(x, self._jittered(targets)), labels)
            losses["crop"] = crop
            losses["loss"] = losses["loss"] + hp.crop_weight * crop
        return losses

    def training_step(self, batch, batch_idx):
        x, targets = batch
        losses = self._loss(self(x), targets, x)
        self.log("train/loss", losses["loss"], prog_bar=True, batch_size=len(x))
        self.log("train/lr", self.optimizers().param_groups[0]["lr"], batch_size=len(x))
        for k in ("heatmap", "size", "offset", "crop"):
            if k in losses:
                self.log(f"train/{k}_loss", losses[k], batch_size=len(x))
        return losses["loss"]

    # -- evaluation: the same on val (selection scenes) and test (report scenes)
    def _eval_start(self) -> None:
        self._metrics = SceneMetrics(self.hparams.threshold, self.hparams.map_threshold)

    def _eval_step(self, batch, prefix: str) -> None:
        x, targets = batch
        out = self(x)
        self.log(f"{prefix}/loss", self._loss(out, targets, x)["loss"], batch_size=len(x))
        dets = decode(
            out, self.hparams.map_threshold, self.hparams.top_k, 0.5, self.net.stride, tuple(x.shape[-2:])
        )
        dets = relabel(self.net, x, dets)
        assert self._metrics is not None
        self._metrics.update(dets, targets)

    def _eval_end(self, prefix: str) -> None:
        assert self._metrics is not None
        result = self._metrics.compute()
        for k in ("map50", "count_acc", "class_acc", "exact"):
            self.log(f"{prefix}/{k}", result[k], prog_bar=k in ("map50", "exact"))
        self._metrics = None

    def on_validation_epoch_start(self) -> None:
        self._eval_start()

    def validation_step(self, batch, batch_idx):
        self._eval_step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._eval_end("val")

    def on_test_epoch_start(self) -> None:
        self._eval_start()

    def test_step(self, batch, batch_idx):
        self._eval_step(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._eval_end("test")

    def configure_optimizers(self):
        from hydra.utils import instantiate

        spec = self.hparams.optimizer
        opt = instantiate(spec)(self.parameters()) if isinstance(spec, Mapping) else spec(self.parameters())
        total = self.trainer.estimated_stepping_batches if self._trainer is not None else math.inf
        warmup, floor = max(1, int(self.hparams.warmup_steps)), float(self.hparams.min_lr_ratio)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            t = self._progress(step - warmup, total - warmup)
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[KIND_KEY] = "detector"

    @classmethod
    def from_loaded(
        cls, ckpt: dict[str, Any], path: str | Path = "<checkpoint>", map_location: str | torch.device = "cpu"
    ) -> DetectorModule:
        """Rebuild from a checkpoint read with ``read_checkpoint`` (see ``models.checkpoint.load_module``)."""
        if checkpoint_kind(ckpt) != "detector":
            raise CheckpointError(f"{path} holds a '{checkpoint_kind(ckpt)}' model, not a detector")
        model = cls(**ckpt["hyper_parameters"])
        model.load_state_dict(ckpt["state_dict"])
        return model.to(map_location).eval()

    def detector(self) -> SceneDetector:
        """This module's net as a :class:`SceneDetector` (shares the weights)."""
        return SceneDetector(self.net, top_k=self.hparams.top_k)

    def export_payload(self, metrics: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """What ``export_path`` holds: plain tensors and data (``weights_only=True`` reads it)."""
        dm = self.trainer.datamodule if self._trainer is not None else None
        dm_hp = dict(getattr(dm, "hparams", {}) or {})
        half = self.hparams.export_fp16
        state = {
            k: (v.detach().cpu().half() if half and v.is_floating_point() else v.detach().cpu()).contiguous()
            for k, v in self.net.state_dict().items()
        }
        return {
            "format": FORMAT_VERSION,
            "state_dict": state,
            "net": {"_target_": NET_TARGET, **{k: v for k, v in self.hparams.net.items() if k != "_target_"}},
            "stride": self.net.stride,
            "canvas_size": dm_hp.get("canvas_size"),
            "class_names": list(CLASS_NAMES),
            "threshold": float(self.hparams.threshold),
            "metrics": dict(metrics or {}),
            "data": {
                k: (list(v) if isinstance(v, tuple | list) else v)
                for k, v in dm_hp.items()
                if k
                in (
                    "data_used",
                    "datasets",
                    "n_selection",
                    "split_seed",
                    "seed",
                    "n_test",
                    "n_val",
                    "canvas_size",
                )
            },
            "epochs": int(self.trainer.current_epoch) if self._trainer is not None else None,
            "global_step": int(self.global_step),
            "recipe": RECIPE,
        }

    def on_fit_end(self) -> None:
        if not self.hparams.export_path or not self.trainer.is_global_zero or self.trainer.fast_dev_run:
            return
        metrics: dict[str, Any] = {}
        val = {k: float(v) for k, v in self.trainer.callback_metrics.items() if k.startswith("val/")}
        if val:
            metrics["val"] = val
        dm = self.trainer.datamodule
        if dm is not None and hasattr(dm, "test_dataloader"):
            test = evaluate(
                self.detector(), dm.test_dataloader(), self.hparams.threshold, self.hparams.map_threshold
            )
            metrics["test"] = test
            for logger in self.loggers:
                logger.log_metrics({f"test/{k}": v for k, v in test.items()}, step=self.global_step)
        payload = self.export_payload(metrics)
        atomic_write(Path(self.hparams.export_path), lambda p: torch.save(payload, p))
