"""A class-conditional GAN pair sized for a CPU: conditional batch norm in G, spectral norm and a projection
head in D.

- Generator: z -> dense -> (4c, 7, 7) -> [conditional BN, ReLU, nearest x2, 3x3 conv] x 2 -> conditional BN,
  ReLU, 3x3 conv -> tanh. Conditional batch norm (de Vries et al. 2017; Miyato & Koyama 2018 use it in their
  projection cGAN): every normalisation's scale and shift are looked up per class, so the class enters at
  every resolution instead of once at the input, which is where the seed-shaped cDCGAN collapsed to one image
  per class. Nearest upsampling + 3x3 conv avoids the checkerboard of strided transposed convolutions
  (Odena et al. 2016, "Deconvolution and Checkerboard Artifacts").
- Discriminator: spectrally normalised convolutions (Miyato et al. 2018) down 28 -> 14 -> 7, global sum
  pooling, a spectrally normalised linear head plus the projection <embed(y), phi(x)> (Miyato & Koyama 2018).
  ``minibatch_std=True`` gives its last convolution one more input map at 7x7: the spread of the features
  within each image's class in the batch (``class_minibatch_std.py``), so that D can see a generator that
  draws too little variety within a class.

At 28x28 only (the zoo's MNIST and FashionMNIST); base_channels c sets the width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from artdirector.errors import ConfigError
from artdirector.models.nets.class_minibatch_std import class_minibatch_std


def _check_size(image_size: int) -> None:
    if int(image_size) != 28:
        raise ConfigError(
            f"the SN/CBN GAN draws 28x28 images; got data.image_size={image_size}: use model=cdcgan"
        )


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm without its own affine parameters, then a per-class scale (1 + gamma_y) and shift beta_y."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gamma = nn.Embedding(num_classes, channels)
        self.beta = nn.Embedding(num_classes, channels)
        nn.init.zeros_(self.gamma.weight)
        nn.init.zeros_(self.beta.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        g = 1 + self.gamma(y)[:, :, None, None]
        return self.bn(x) * g + self.beta(y)[:, :, None, None]


class CBNGenerator(nn.Module):
    """(z (N, latent_dim), labels (N,)) -> images (N, channels, 28, 28) in [-1, 1]."""

    def __init__(
        self,
        num_classes: int = 10,
        latent_dim: int = 128,
        base_channels: int = 32,
        channels: int = 1,
        image_size: int = 28,
    ) -> None:
        super().__init__()
        _check_size(image_size)
        c = base_channels
        self.latent_dim, self.num_classes, self.channels, self.image_size = (
            latent_dim,
            num_classes,
            channels,
            28,
        )
        self.project = nn.Linear(latent_dim, 4 * c * 7 * 7)
        self.c0 = 4 * c
        self.norms = nn.ModuleList(ConditionalBatchNorm2d(ch, num_classes) for ch in (4 * c, 2 * c, c))
        self.convs = nn.ModuleList([nn.Conv2d(4 * c, 2 * c, 3, padding=1), nn.Conv2d(2 * c, c, 3, padding=1)])
        self.out = nn.Conv2d(c, channels, 3, padding=1)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"Generator expects z of shape (N, {self.latent_dim}), got {tuple(z.shape)}")
        if labels.shape != (z.shape[0],):
            raise ValueError(f"Generator expects labels of shape ({z.shape[0]},), got {tuple(labels.shape)}")
        y = labels.long()
        # channels-last: oneDNN's fast layout for convolutions on the CPU (measured in docs/zoo.md)
        h = self.project(z).view(z.shape[0], self.c0, 7, 7).contiguous(memory_format=torch.channels_last)
        for norm, conv in zip(self.norms[:2], self.convs, strict=True):
            h = conv(F.interpolate(F.relu(norm(h, y)), scale_factor=2, mode="nearest"))
        return torch.tanh(self.out(F.relu(self.norms[2](h, y))))


class SNProjectionDiscriminator(nn.Module):
    """(images (N, channels, 28, 28), labels (N,)) -> logits (N,)."""

    def __init__(
        self,
        num_classes: int = 10,
        base_channels: int = 32,
        channels: int = 1,
        image_size: int = 28,
        leaky_slope: float = 0.1,
        minibatch_std: bool = False,
    ) -> None:
        super().__init__()
        _check_size(image_size)
        c = base_channels
        self.num_classes, self.channels, self.image_size, self.slope = num_classes, channels, 28, leaky_slope
        self.minibatch_std = bool(minibatch_std)
        self.convs = nn.ModuleList(
            spectral_norm(conv)
            for conv in (
                nn.Conv2d(channels, c, 3, padding=1),  # 28
                nn.Conv2d(c, 2 * c, 4, stride=2, padding=1),  # 14
                nn.Conv2d(2 * c, 2 * c, 3, padding=1),
                nn.Conv2d(2 * c, 4 * c, 4, stride=2, padding=1),  # 7
                nn.Conv2d(4 * c + self.minibatch_std, 4 * c, 3, padding=1),
            )
        )
        self.head = spectral_norm(nn.Linear(4 * c, 1))
        self.embed = spectral_norm(nn.Embedding(num_classes, 4 * c))

    def features(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The pooled features (N, 4 * base_channels) that the head and the projection read (``labels``
        needed with ``minibatch_std``, whose map is the spread within each image's class)."""
        if x.shape[1:] != (self.channels, 28, 28):
            raise ValueError(f"Discriminator expects (N, {self.channels}, 28, 28), got {tuple(x.shape)}")
        if self.minibatch_std and labels is None:
            raise ValueError("a discriminator with minibatch_std reads the labels: call features(x, labels)")
        h = x.contiguous(memory_format=torch.channels_last)
        *body, last = self.convs
        for conv in body:
            h = F.leaky_relu(conv(h), self.slope)
        if self.minibatch_std:  # the spread map enters the last convolution, at 7x7
            h = class_minibatch_std(h, labels, self.num_classes).contiguous(memory_format=torch.channels_last)
        return F.leaky_relu(last(h), self.slope).sum(dim=(2, 3))

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = self.features(x, labels)
        return self.head(h).squeeze(1) + (self.embed(labels.long()) * h).sum(1)
