"""The scene detector's network: a small CenterNet ("Objects as Points", Zhou, Wang and Krähenbühl 2019).

A per-class centre heatmap over the 20 global classes of a scene (``artdirector.prompts.words.CLASS_NAMES``:
digits 0-9, FashionMNIST items 10-19), each centre's box size and sub-pixel offset, and a second-stage crop
classifier. Turning its output into boxes is :mod:`artdirector.models.detection.decode`; training it is
``artdirector.models.detector.DetectorModule``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from artdirector.prompts.words import NUM_CLASSES


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
        from artdirector.models.vision_ops import roi_align

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
