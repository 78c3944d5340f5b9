"""The truncation trick (Brock et al. 2019): latents redrawn inside a threshold."""

from __future__ import annotations

import torch

from artdirector.agents.refiners.base import Context, SamplesRefiner, need_latents
from artdirector.agents.types import Samples


class Truncation(SamplesRefiner):
    """Latent components beyond +-threshold are redrawn from N(0, 1) until they fall inside, i.e. z follows a
    truncated normal. Brock et al. 2019, "Large Scale GAN Training for High Fidelity Natural Image Synthesis",
    https://arxiv.org/abs/1809.11096. Lower thresholds trade diversity (recall) for fidelity (precision)."""

    name = "truncation"
    requires = frozenset({"latent"})

    def refined(self, samples: Samples, ctx: Context, threshold: float = 1.0) -> Samples:
        z = need_latents(samples, ctx, "truncation").cpu().clone()
        out = z.abs() > threshold
        while out.any():
            z[out] = torch.randn(int(out.sum()), generator=ctx.gen.generator)
            out = z.abs() > threshold
        return samples.derived(
            ctx.gen.from_latents(z, labels=samples.labels).images, z, f"truncation(threshold={threshold})"
        )
