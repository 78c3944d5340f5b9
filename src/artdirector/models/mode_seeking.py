"""Mode seeking: a generator term against within-class collapse of a conditional GAN.

Mao, Lee, Tseng, Ma and Yang 2019, "Mode Seeking Generative Adversarial Networks for Diverse Image
Synthesis", https://arxiv.org/abs/1903.05628 (reference code: HelenMao/MSGAN). A conditional generator
tends to ignore part of its latent: two latents of one class give nearly one image. The term draws a second
latent for half the batch, with the same labels, and penalises the inverse of how far apart the two images
are relative to how far apart their latents are:

    ratio = mean |a - b| / mean |z_a - z_b|,      L_ms = 1 / (ratio + eps),

added to G's loss with a weight (the paper's 1 for its conditional tasks). No parameters; D's step is
unchanged.

Where the distance is taken (``space``):

- ``pixels``: on the images, as in the paper.
- ``critic``: on the discriminator's pooled features (``discriminator.features(x)``), so that what the term
  rewards is not the pixel distance the zoo's variety figure measures (``evaluation.judge``): the figure
  stays a judge apart from the objective.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

SPACES = ("pixels", "critic")
EPS = 1e-5


def mode_seeking_loss(
    a: torch.Tensor,
    b: torch.Tensor,
    z_a: torch.Tensor,
    z_b: torch.Tensor,
    embed: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """``1 / (mean|e(a) - e(b)| / mean|z_a - z_b| + eps)`` for pairs (a_i, b_i) of one class drawn from latents
    (z_a_i, z_b_i); ``embed`` maps images to where the distance is taken (None: the pixels)."""
    if embed is not None:
        a, b = embed(a), embed(b)
    ratio = (a - b).abs().float().mean() / (z_a - z_b).abs().float().mean()
    return 1.0 / (ratio + EPS)
