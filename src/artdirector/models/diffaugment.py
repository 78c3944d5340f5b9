"""DiffAugment: differentiable augmentation of real and fake images before the discriminator.

Zhao, Liu, Lin, Zhu and Han 2020, "Differentiable Augmentation for Data-Efficient GAN Training",
https://arxiv.org/abs/2006.10738 (reference code: mit-han-lab/data-efficient-gans, ``DiffAugment_pytorch.py``).
With few training images the discriminator memorises them and its feedback to the generator degrades;
augmenting what it sees (both real and generated images, in the D step *and* the G step, with an
augmentation the generator's gradient can pass through) keeps it from overfitting without teaching the
generator to produce augmented images.

The paper's three policies, on images in [-1, 1] laid out (N, C, H, W):

- ``color``: brightness (add U(-0.5, 0.5) per image), saturation (scale each pixel's deviation from its
  channel mean by U(0, 2); 3-channel images only: a grey image has no saturation, and drawing for it would
  only spend random numbers), contrast (scale each image's deviation from its mean by U(0.5, 1.5));
- ``translation``: shift each image by an integer in [-H/8, H/8] x [-W/8, W/8] pixels, zero padding;
- ``cutout``: zero one square of half the image's side per image, at a random centre.

Every random number comes from torch's RNG (the global one, or ``generator=``), so a seeded run is
repeatable and an exactly resumed run (the project checkpoints the RNG states) draws the same
augmentations. The empty policy is the identity and draws nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

POLICIES = ("color", "translation", "cutout")


def _rand(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One U(0, 1) number per image, shaped to broadcast over (C, H, W)."""
    return torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device, generator=generator)


def rand_brightness(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    return x + (_rand(x, generator) - 0.5)


def rand_saturation(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    if x.shape[1] != 3:
        return x  # the paper's colour jitter is for RGB; on grey images it is the identity anyway
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (_rand(x, generator) * 2) + mean


def rand_contrast(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand(x, generator) + 0.5) + mean


def _grid(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    n, _, h, w = x.shape
    return torch.meshgrid(
        torch.arange(n, device=x.device),
        torch.arange(h, device=x.device),
        torch.arange(w, device=x.device),
        indexing="ij",
    )


def rand_translation(
    x: torch.Tensor, ratio: float = 0.125, generator: torch.Generator | None = None
) -> torch.Tensor:
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device, generator=generator)
    tx = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device, generator=generator)
    gb, gy, gx = _grid(x)
    # indices into the image padded by one pixel of zeros: anything shifted in from outside reads a zero
    gy = (gy + ty + 1).clamp(0, h + 1)
    gx = (gx + tx + 1).clamp(0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1])
    return padded.permute(0, 2, 3, 1)[gb, gy, gx].permute(0, 3, 1, 2).contiguous()


def rand_cutout(
    x: torch.Tensor, ratio: float = 0.5, generator: torch.Generator | None = None
) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    oy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device, generator=generator)
    ox = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device, generator=generator)
    _, gy, gx = _grid(x)
    gy, gx = gy - oy + ch // 2, gx - ox + cw // 2  # the square is [o - c/2, o - c/2 + c) on each axis
    inside = (gy >= 0) & (gy < ch) & (gx >= 0) & (gx < cw)
    return x * (~inside).to(x.dtype).unsqueeze(1)


AUGMENTS: dict[str, list[Callable[..., torch.Tensor]]] = {
    "color": [rand_brightness, rand_saturation, rand_contrast],
    "translation": [rand_translation],
    "cutout": [rand_cutout],
}


def parse_policy(policy: str | None) -> tuple[str, ...]:
    """``"color,translation"`` -> ``("color", "translation")``; ``""``/None -> ``()``. Raises ValueError
    naming the unknown parts (callers turn it into their own ConfigError)."""
    parts = tuple(p.strip() for p in (policy or "").split(",") if p.strip())
    unknown = [p for p in parts if p not in AUGMENTS]
    if unknown:
        raise ValueError(
            f"unknown DiffAugment policy {', '.join(map(repr, unknown))}: use a comma-separated subset of "
            f"{', '.join(POLICIES)} (or an empty string for none)"
        )
    return parts


def diff_augment(
    x: torch.Tensor, policy: str | tuple[str, ...] = "", generator: torch.Generator | None = None
):
    """Apply ``policy`` (a comma-separated string or parsed tuple) to a batch (N, C, H, W); differentiable
    w.r.t. ``x``. The empty policy returns ``x`` itself."""
    parts = parse_policy(policy) if isinstance(policy, str) else policy
    for name in parts:
        for fn in AUGMENTS[name]:
            x = fn(x, generator=generator)
    return x
