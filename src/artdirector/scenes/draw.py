"""Boxes and their labels drawn on an image, as ``torchvision.utils.draw_bounding_boxes`` draws them, with PIL
alone: importing torchvision imports its model zoo and ``torch._dynamo`` (about 2 s of CPU), more than the
rest of a scene request's report costs."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def draw_boxes(
    image: torch.Tensor,
    boxes: torch.Tensor,
    labels: Sequence[str],
    colors: Sequence[str],
    width: int = 1,
) -> torch.Tensor:
    """``image`` (3, H, W) uint8 with each xyxy box (pixels, truncated to integers) outlined ``width`` px wide in
    its colour (a PIL colour name) and its label written inside its top-left corner in PIL's default font:
    the pixels ``draw_bounding_boxes(image, boxes, labels, colors, width=width)`` gives."""
    import numpy as np
    from PIL import Image, ImageColor, ImageDraw, ImageFont

    if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) uint8 image, got {tuple(image.shape)} {image.dtype}")
    pil = Image.fromarray(image.permute(1, 2, 0).contiguous().numpy())
    draw, font = ImageDraw.Draw(pil), ImageFont.load_default()
    margin = width + 1  # torchvision's: the outline, then one pixel
    for box, label, color in zip(boxes.to(torch.int64).tolist(), labels, colors, strict=True):
        rgb = ImageColor.getrgb(color)
        draw.rectangle(box, width=width, outline=rgb)
        draw.text((box[0] + margin, box[1] + margin), label, fill=rgb, font=font)
    return torch.from_numpy(np.array(pil)).permute(2, 0, 1)
