"""The seed DCGAN (the TensorFlow DCGAN tutorial's MNIST model), layer for layer.

Radford et al. 2016, "Unsupervised Representation Learning with Deep Convolutional GANs",
https://arxiv.org/abs/1511.06434. The seed is Keras code, so the defaults reproduce Keras:
LeakyReLU slope 0.3, BatchNorm eps 1e-3 / momentum 0.99 (PyTorch momentum 0.01), Glorot-uniform
weights. ``weight_init="dcgan"`` switches to the paper's N(0, 0.02).

"same" padding: a 5x5 convolution with stride 2 and padding 2 maps 28 -> 14 -> 7 as Keras "same"
does; the transposed convolutions use padding 2 and, for stride 2, output_padding 1 to double the size.

Two layers compute the same function by a faster route on the CPU (measured in docs/benchmarks.md; the
parameters, their shapes and the state dict are the seed's): the last transposed convolution runs as one
ordinary convolution and a pixel shuffle (:class:`SubPixelConvTranspose2d`), and dropout draws its mask
by comparing uniforms (:class:`UniformMaskDropout`) instead of ``bernoulli_``.

Other image sizes (``image_size``): the same family, one more stride-2 stage per doubling, as in Radford et
al.'s 64x64 DCGAN. The generator projects z to a ``start`` x ``start`` map (7 for 28 and its doublings, 4
for 16, 32, 64, ...), runs the seed's stride-1 transposed convolution, then doubles the size at every stage
to the image; the channels halve at every doubling and the last hidden map always has ``base_channels / 4``
(the seed's 64), so the projection is ``base_channels * 2 ** (stages - 2)`` wide. The discriminator
mirrors it: ``base_channels`` after its first stride-2 convolution, doubling at every stage down to
``start`` x ``start``. At 28x28 this is exactly the seed (7 -> 14 -> 28; every parameter and state-dict
key unchanged); 32x32 is 4 -> 8 -> 16 -> 32, 64x64 is 4 -> 8 -> 16 -> 32 -> 64.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from artdirector.errors import ConfigError


def stages(image_size: int) -> tuple[int, int]:
    """(start size, number of stride-2 stages) of the DCGAN family at ``image_size``: 28 -> (7, 2), the
    seed; 32 -> (4, 3); 64 -> (4, 4). Sizes are 7 * 2**k or 4 * 2**k with k >= 2."""
    size = int(image_size)
    for start in (7, 4):
        n = 0
        while size > start and size % 2 == 0:
            size, n = size // 2, n + 1
        if size == start and n >= 2:
            return start, n
        size = int(image_size)
    raise ConfigError(
        f"image_size {image_size} is not one the DCGAN family builds: it needs 7 * 2**k or 4 * 2**k pixels "
        "with k >= 2 (16, 28, 32, 56, 64, 128, ...); set data.image_size to one of them"
    )


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


class SubPixelConvTranspose2d(nn.ConvTranspose2d):
    """``ConvTranspose2d(k=5, stride=2, padding=2, output_padding=1)`` computed as one 3x3 convolution
    with 4x the output channels, followed by a pixel shuffle (the sub-pixel decomposition of a strided
    transposed convolution; Shi et al. 2016, https://arxiv.org/abs/1609.05158, section 2.2).

    Output pixel ``2m + r`` of a stride-2 transposed convolution only sees kernel taps of parity ``r``:
    taps 4, 2, 0 at inputs m-1, m, m+1 for r = 0, and taps 3, 1 at inputs m, m+1 for r = 1. Each of the
    four (row, column) phases is therefore an ordinary 3x3 convolution (zero-padded to 3 taps), and oneDNN
    runs the four as one channels-last convolution. The parameter is the transposed convolution's own
    weight (same shape, same state dict); the phase kernels are gathered from it on every call, so
    gradients reach it unchanged.
    """

    # phase r -> the kernel tap at input offsets -1, 0, +1 (5 = the zero pad tap)
    _TAPS = torch.tensor([[4, 2, 0], [5, 3, 1]])

    def __init__(self, in_channels: int, out_channels: int, bias: bool = False) -> None:
        super().__init__(in_channels, out_channels, 5, stride=2, padding=2, output_padding=1, bias=bias)

    def phase_weight(self) -> torch.Tensor:
        """(4 * out, in, 3, 3): the conv weight whose pixel-shuffled output equals the transposed conv's."""
        w = F.pad(self.weight, (0, 1, 0, 1))  # (in, out, 6, 6); tap 5 is zero
        t = self._TAPS.to(w.device)
        k = w[:, :, t[:, :, None, None], t[None, None, :, :]]  # (in, out, r_h, a, r_w, b)
        return k.permute(1, 2, 4, 0, 3, 5).reshape(4 * self.out_channels, self.in_channels, 3, 3)

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)
        bias = None if self.bias is None else self.bias.repeat_interleave(4)
        y = F.pixel_shuffle(F.conv2d(x, self.phase_weight(), bias, padding=1), 2)
        return y.contiguous()


class UniformMaskDropout(nn.Dropout):
    """Inverted dropout whose keep mask is ``U >= p`` for uniforms U: the same distribution as
    ``nn.Dropout`` (each unit kept with probability 1 - p, scaled by 1 / (1 - p)), about twice as fast on
    the CPU as its ``bernoulli_`` draw."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if self.p >= 1:
            return torch.zeros_like(x)
        keep = torch.rand_like(x) >= self.p
        return x * keep.to(x.dtype) * (1.0 / (1.0 - self.p))


class Generator(nn.Module):
    """z (N, latent_dim) -> image (N, channels, image_size, image_size) in [-1, 1] (the seed: 1x28x28)."""

    def __init__(
        self,
        latent_dim: int = 100,
        channels: int = 1,
        base_channels: int = 256,
        leaky_slope: float = 0.3,
        weight_init: str = "keras",
        image_size: int = 28,
    ) -> None:
        super().__init__()
        if channels < 1:
            raise ConfigError(f"generator channels must be at least 1, got {channels}")
        self.latent_dim = latent_dim
        self.channels = channels
        self.image_size = int(image_size)
        self.start, n_up = stages(image_size)
        if base_channels % 4 or base_channels < 4:
            raise ConfigError(
                f"generator base_channels must be a positive multiple of 4, got {base_channels}"
            )
        c = base_channels * 2 ** (n_up - 2)  # the seed (n_up = 2): 256
        s0 = self.start
        self.project = nn.Sequential(
            nn.Linear(latent_dim, s0 * s0 * c, bias=False),  # seed: (N, 100) -> (N, 7*7*256)
            _bn(s0 * s0 * c, dims=1),
            nn.LeakyReLU(leaky_slope),
        )
        self.c = c
        # Bias before BatchNorm is cancelled by BN's mean subtraction; the seed has none either.
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(c, c // 2, 5, stride=1, padding=2, bias=False),  # seed: 256x7x7 -> 128x7x7
            _bn(c // 2),
            nn.LeakyReLU(leaky_slope),
        ]
        ch = c // 2
        for _ in range(n_up - 1):  # seed: one stage, 128x7x7 -> 64x14x14
            layers += [
                nn.ConvTranspose2d(ch, ch // 2, 5, stride=2, padding=2, output_padding=1, bias=False),
                _bn(ch // 2),
                nn.LeakyReLU(leaky_slope),
            ]
            ch //= 2
        layers += [
            SubPixelConvTranspose2d(ch, channels, bias=False),  # = ConvTranspose2d(5, 2, 2, 1)
            nn.Tanh(),  # seed: -> 1x28x28 in [-1, 1]
        ]
        self.upsample = nn.Sequential(*layers)
        init_weights(self, weight_init)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.image_size, self.image_size)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"Generator expects z of shape (N, {self.latent_dim}), got {tuple(z.shape)}")
        h = self.project(z).view(z.shape[0], self.c, self.start, self.start)
        return self.upsample(h)


class Discriminator(nn.Module):
    """image (N, channels, image_size, image_size) -> one real/fake logit per image, shape (N,)."""

    def __init__(
        self,
        channels: int = 1,
        base_channels: int = 64,
        dropout: float = 0.3,
        leaky_slope: float = 0.3,
        weight_init: str = "keras",
        image_size: int = 28,
    ) -> None:
        super().__init__()
        if channels < 1:
            raise ConfigError(f"discriminator channels must be at least 1, got {channels}")
        self.channels = channels
        self.image_size = int(image_size)
        start, n_down = stages(image_size)
        c = base_channels
        layers: list[nn.Module] = []
        cin, cout = channels, c
        for _ in range(n_down):  # seed: 1x28x28 -> 64x14x14 -> 128x7x7
            layers += [
                nn.Conv2d(cin, cout, 5, stride=2, padding=2),
                nn.LeakyReLU(leaky_slope),
                UniformMaskDropout(dropout),
            ]
            cin, cout = cout, 2 * cout
        layers.append(nn.Flatten())  # seed: -> 6272 (in NCHW order whatever the memory format)
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(cin * start * start, 1)  # -> logit
        init_weights(self, weight_init)
        # oneDNN's channels-last kernels are the fast ones for these convolutions on the CPU
        self.features.to(memory_format=torch.channels_last)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.image_size, self.image_size)

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1:] != self.image_shape:
            raise ValueError(
                f"Discriminator expects images of shape (N, {self.channels}, {self.image_size}, "
                f"{self.image_size}), got {tuple(x.shape)}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        return self.head(self.features(x.contiguous(memory_format=torch.channels_last))).squeeze(1)


class ConditionalGenerator(Generator):
    """The seed generator conditioned on a class: ``z`` is concatenated with a learned label embedding
    before the first dense layer (Mirza & Osindero 2014), so every later layer is the seed's.

    (z (N, latent_dim), labels (N,)) -> image (N, channels, image_size, image_size) in [-1, 1]."""

    def __init__(self, num_classes: int = 10, embed_dim: int = 50, latent_dim: int = 100, **kwargs) -> None:
        super().__init__(latent_dim=latent_dim + embed_dim, **kwargs)
        self.latent_dim = latent_dim  # what callers draw; the dense layer sees latent_dim + embed_dim
        self.num_classes = num_classes
        self.embed = nn.Embedding(num_classes, embed_dim)
        nn.init.normal_(self.embed.weight, std=1.0)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"Generator expects z of shape (N, {self.latent_dim}), got {tuple(z.shape)}")
        if labels.shape != (z.shape[0],):
            raise ValueError(f"Generator expects labels of shape ({z.shape[0]},), got {tuple(labels.shape)}")
        h = torch.cat([z, self.embed(labels.long()).to(z.dtype)], dim=1)
        return self.upsample(self.project(h).view(z.shape[0], self.c, self.start, self.start))


class ProjectionDiscriminator(Discriminator):
    """The seed discriminator with a projection head (Miyato & Koyama 2018): logit = psi(phi(x)) +
    <embed(y), phi(x)>, where phi is the seed's convolutional trunk and psi its linear head.

    Chosen over AC-GAN (Odena et al. 2017): AC-GAN's auxiliary classification loss rewards the generator
    for easily classified images, which is known to cost diversity within a class; the projection keeps the
    GAN's single real/fake objective and makes the class part of what is judged real."""

    def __init__(self, num_classes: int = 10, **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.embed = nn.Embedding(num_classes, self.head.in_features)
        nn.init.normal_(self.embed.weight, std=0.02)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self._check(x)
        h = self.features(x.contiguous(memory_format=torch.channels_last))
        return self.head(h).squeeze(1) + (self.embed(labels.long()).to(h.dtype) * h).sum(1)
