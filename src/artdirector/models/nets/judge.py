"""The judge: a small residual classifier that scores creators' samples and took no part in making them.

A ResNet in the manner of He et al. 2016, "Deep Residual Learning for Image Recognition" (basic blocks of two
3x3 convolutions with batch norm and an identity or 1x1-projection shortcut, global average pooling, one
linear layer), sized for 28x28 grey images: a stem at 28x28, then one stage per width, each after the first
halving the resolution (28 -> 14 -> 7). Its architecture, weights and training run are all apart from the
LeNet whose features the FID uses, so a creator tuned against the LeNet's features is not graded by the
same network.

In training mode the net shifts each input image by up to ``shift`` pixels (zero filled, DiffAugment's
``rand_translation``), so the data module needs no augmentation of its own; in eval mode the input is
read as it is.
"""

from __future__ import annotations

import torch
from torch import nn

from artdirector.models.diffaugment import rand_translation


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus the shortcut, then ReLU; ``stride`` 2 halves the resolution."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.shortcut = (
            nn.Identity()
            if stride == 1 and cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class JudgeNet(nn.Module):
    """image (N, C, 28, 28) in [-1, 1] -> class logits (N, num_classes).

    Args:
        widths: channels of each stage; the first stage keeps the stem's resolution, each later one halves it.
        blocks: residual blocks per stage.
        shift: the largest random shift, in pixels, applied to training inputs (0: none).
    """

    def __init__(
        self,
        num_classes: int = 10,
        channels: int = 1,
        widths: tuple[int, ...] | list[int] = (16, 32, 64),
        blocks: int = 1,
        shift: int = 2,
    ) -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if not widths or blocks < 1 or shift < 0:
            raise ValueError(f"need >= 1 stage, >= 1 block and shift >= 0, got {widths}, {blocks}, {shift}")
        self.channels, self.shift = channels, int(shift)
        layers: list[nn.Module] = [
            nn.Conv2d(channels, widths[0], 3, padding=1, bias=False),  # C x 28 x 28 -> w0 x 28 x 28
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        ]
        cin = widths[0]
        for i, w in enumerate(widths):
            for b in range(blocks):
                layers.append(BasicBlock(cin, w, stride=2 if i > 0 and b == 0 else 1))
                cin = w
        self.body = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)  # -> (N, w_last, 1, 1)
        self.head = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(f"JudgeNet expects images (N, {self.channels}, H, W), got {tuple(x.shape)}")
        if self.training and self.shift:
            x = rand_translation(x, ratio=self.shift / x.shape[-1])
        return self.head(self.pool(self.body(x)).flatten(1))
