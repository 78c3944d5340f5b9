"""The seed DCGAN (the TensorFlow DCGAN tutorial's MNIST model), layer for layer.

Radford et al. 2016, "Unsupervised Representation Learning with Deep Convolutional GANs",
https://arxiv.org/abs/1511.06434. The seed is Keras code, so the defaults reproduce Keras:
LeakyReLU slope 0.3, BatchNorm eps 1e-3 / momentum 0.99 (PyTorch momentum 0.01), Glorot-uniform
weights. ``weight_init="dcgan"`` switches to the paper's N(0, 0.02).

"same" padding: a 5x5 convolution with stride 2 and padding 2 maps 28 -> 14 -> 7 as Keras "same"
does; the transposed convolutions use padding 2 and, for stride 2, output_padding 1 to double the size.
"""

from __future__ import annotations

import torch
from torch import nn


def _bn(channels: int, dims: int = 2) -> nn.Module:
    cls = nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d
    return cls(channels, eps=1e-3, momentum=0.01)  # Keras defaults: epsilon=1e-3, momentum=0.99


def init_weights(module: nn.Module, scheme: str) -> None:
    """Initialise conv/linear weights: ``keras`` (Glorot uniform, zero bias) or ``dcgan`` (N(0, 0.02))."""
    if scheme not in {"keras", "dcgan"}:
        raise ValueError(f"weight_init must be 'keras' or 'dcgan', got {scheme!r}")
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            if scheme == "keras":
                nn.init.xavier_uniform_(m.weight)
            else:
                nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            nn.init.ones_(m.weight) if scheme == "keras" else nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class Generator(nn.Module):
    """z (N, latent_dim) -> image (N, 1, 28, 28) in [-1, 1]."""

    def __init__(
        self,
        latent_dim: int = 100,
        channels: int = 1,
        base_channels: int = 256,
        leaky_slope: float = 0.3,
        weight_init: str = "keras",
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.channels = channels
        c = base_channels
        self.project = nn.Sequential(
            nn.Linear(latent_dim, 7 * 7 * c, bias=False),  # (N, 100) -> (N, 7*7*256)
            _bn(7 * 7 * c, dims=1),
            nn.LeakyReLU(leaky_slope),
        )
        self.c = c
        # Bias before BatchNorm is cancelled by BN's mean subtraction; the seed has none either.
        self.upsample = nn.Sequential(
            nn.ConvTranspose2d(c, c // 2, 5, stride=1, padding=2, bias=False),  # 256x7x7 -> 128x7x7
            _bn(c // 2),
            nn.LeakyReLU(leaky_slope),
            nn.ConvTranspose2d(c // 2, c // 4, 5, stride=2, padding=2, output_padding=1, bias=False),
            _bn(c // 4),  # -> 64x14x14
            nn.LeakyReLU(leaky_slope),
            nn.ConvTranspose2d(c // 4, channels, 5, stride=2, padding=2, output_padding=1, bias=False),
            nn.Tanh(),  # -> 1x28x28 in [-1, 1]
        )
        init_weights(self, weight_init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"Generator expects z of shape (N, {self.latent_dim}), got {tuple(z.shape)}")
        h = self.project(z).view(z.shape[0], self.c, 7, 7)
        return self.upsample(h)


class Discriminator(nn.Module):
    """image (N, 1, 28, 28) -> one real/fake logit per image, shape (N,)."""

    def __init__(
        self,
        channels: int = 1,
        base_channels: int = 64,
        dropout: float = 0.3,
        leaky_slope: float = 0.3,
        weight_init: str = "keras",
    ) -> None:
        super().__init__()
        self.channels = channels
        c = base_channels
        self.features = nn.Sequential(
            nn.Conv2d(channels, c, 5, stride=2, padding=2),  # 1x28x28 -> 64x14x14
            nn.LeakyReLU(leaky_slope),
            nn.Dropout(dropout),
            nn.Conv2d(c, 2 * c, 5, stride=2, padding=2),  # -> 128x7x7
            nn.LeakyReLU(leaky_slope),
            nn.Dropout(dropout),
            nn.Flatten(),  # -> 6272
        )
        self.head = nn.Linear(2 * c * 7 * 7, 1)  # -> logit
        init_weights(self, weight_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1:] != (self.channels, 28, 28):
            raise ValueError(
                f"Discriminator expects images of shape (N, {self.channels}, 28, 28), got {tuple(x.shape)}"
            )
        return self.head(self.features(x)).squeeze(1)
