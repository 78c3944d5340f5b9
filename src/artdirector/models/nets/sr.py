"""ESPCN (Shi et al. 2016, "Real-Time Single Image and Video Super-Resolution Using an Efficient Sub-Pixel
Convolutional Neural Network"): features are computed at the low resolution and a sub-pixel convolution
(``PixelShuffle``) rearranges ``C * r^2`` channels into an image ``r`` times larger. Here it predicts the
residual over bicubic upsampling (as VDSR, Kim et al. 2016, does), so an untrained net starts at bicubic."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ESPCN(nn.Module):
    def __init__(self, scale: int = 4, channels: int = 1, features: tuple[int, ...] = (64, 32)) -> None:
        super().__init__()
        if scale not in (2, 3, 4, 8):
            raise ValueError(f"scale must be 2, 3, 4 or 8, got {scale}")
        self.scale, self.channels = int(scale), int(channels)
        f1, f2 = features
        self.body = nn.Sequential(
            nn.Conv2d(channels, f1, 5, padding=2),  # (N, C, h, w) -> (N, f1, h, w)
            nn.Tanh(),
            nn.Conv2d(f1, f2, 3, padding=1),  # -> (N, f2, h, w)
            nn.Tanh(),
            nn.Conv2d(f2, channels * scale**2, 3, padding=1),  # -> (N, C r^2, h, w)
            nn.PixelShuffle(scale),  # -> (N, C, r h, r w)
        )
        nn.init.zeros_(self.body[-2].weight)  # the residual starts at zero: the output starts at bicubic
        nn.init.zeros_(self.body[-2].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return (up + self.body(x)).clamp(-1, 1)
