"""torchvision's box kernels (``nms``, ``roi_align``) for inference, without importing the torchvision package.

``import torchvision`` imports its model zoo and, through it, ``torch._dynamo``: about 2 s of CPU, more than
a scene request's drawing and detection together. The kernels themselves live in torchvision's compiled
extension, which registers them as ``torch.ops.torchvision.*`` when loaded; loading only that library gives the
same kernels, so the same boxes and crops. Where it cannot be found (another torchvision layout), and wherever
a gradient is needed (torchvision registers the backward of ``roi_align`` from Python), the functions go
through ``torchvision.ops`` as usual.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
from functools import cache
from pathlib import Path

import torch

# the extension's module name: "_C_stable" in torchvision >= 0.29 (stable ABI), "_C" before
_EXTENSIONS = ("_C_stable", "_C")


@cache
def _kernels_loaded() -> bool:
    """Load torchvision's compiled extension on its own (once); False where it cannot be found or loaded."""
    if hasattr(torch.ops.torchvision, "nms"):  # torchvision already imported: its extension is loaded
        return True
    spec = importlib.util.find_spec("torchvision")  # finds the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        return False
    for folder in spec.submodule_search_locations:
        for name in _EXTENSIONS:
            for suffix in importlib.machinery.EXTENSION_SUFFIXES:
                path = Path(folder) / f"{name}{suffix}"
                if path.is_file():
                    try:
                        torch.ops.load_library(str(path))
                    except OSError:
                        return False
                    return hasattr(torch.ops.torchvision, "nms")
    return False


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """``torchvision.ops.nms``: the indices of the boxes kept, by decreasing score."""
    if _kernels_loaded():
        return torch.ops.torchvision.nms(boxes, scores, iou_threshold)
    from torchvision.ops import nms as tv_nms

    return tv_nms(boxes, scores, iou_threshold)


def roi_align(
    x: torch.Tensor,
    boxes: list[torch.Tensor],
    output_size: int,
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> torch.Tensor:
    """``torchvision.ops.roi_align`` with one (k, 4) xyxy box tensor per image of ``x``."""
    if torch.is_grad_enabled() or not _kernels_loaded():
        from torchvision.ops import roi_align as tv_roi_align

        return tv_roi_align(x, boxes, output_size, spatial_scale, sampling_ratio, aligned)
    # the (K, 5) rows torchvision's convert_boxes_to_roi_format makes: the image index, then the box
    rois = torch.cat([torch.cat([torch.full_like(b[:, :1], i), b], 1) for i, b in enumerate(boxes)])
    return torch.ops.torchvision.roi_align(
        x, rois, spatial_scale, output_size, output_size, sampling_ratio, aligned
    )
