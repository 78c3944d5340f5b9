"""Latent moves guided by the critic: Langevin dynamics on the GAN's energy (DDLS) and Discriminator
Optimal Transport (DOT). Both move each sample's latent and redraw its image: the output is paired with the
input."""

from __future__ import annotations

import math

import torch

from artdirector.agents.refiners.base import Context, SamplesRefiner, need_latents
from artdirector.agents.types import Samples


def _labels(samples: Samples, ctx: Context) -> torch.Tensor | None:
    return None if samples.labels is None else samples.labels.to(ctx.gen.creator.device)


class Langevin(SamplesRefiner):
    """Discriminator Driven Latent Sampling: Langevin dynamics on the energy
    E(z) = ||z||^2 / 2 - d(G(z)), with d the discriminator logit. Che et al. 2020,
    "Your GAN is Secretly an Energy-based Model", https://arxiv.org/abs/2003.06060.
    z <- z - step_size / 2 * grad E(z) + noise * sqrt(step_size) * N(0, I)."""

    name = "langevin"
    requires = frozenset({"latent", "critic"})

    def refined(
        self, samples: Samples, ctx: Context, steps: int = 30, step_size: float = 0.01, noise: float = 1.0
    ) -> Samples:
        z = need_latents(samples, ctx, "langevin").clone()
        c = ctx.gen.creator
        y = _labels(samples, ctx)
        with c.frozen():  # d(G(z)) is differentiated with respect to z alone
            for i in range(steps):
                if ctx.out_of_time():
                    ctx.stopped(i, steps, "steps")
                    break
                z.requires_grad_(True)
                energy = 0.5 * z.pow(2).sum(1) - c.critic(c.decode(z, y), y)
                (grad,) = torch.autograd.grad(energy.sum(), z)
                with torch.no_grad():
                    eta = torch.randn(z.shape, generator=ctx.gen.generator).to(z.device)
                    z = z - 0.5 * step_size * grad + noise * math.sqrt(step_size) * eta
        z = z.detach()
        return samples.derived(
            c.from_latents(z, y),
            z.cpu(),
            ctx.what(f"langevin(steps={steps}, step_size={step_size}"),
        )


class DOT(SamplesRefiner):
    """Discriminator Optimal Transport in latent space. Tanaka 2019, https://arxiv.org/abs/1910.06832.
    Moves each z0 towards argmin_z ||z - z0|| - d(G(z)) / k_eff, with k_eff the Lipschitz constant of
    d(G(.)) estimated on random latent pairs (the paper's max over pairs of |d(G(a)) - d(G(b))| / ||a - b||),
    by Adam, and keeps for each sample the iterate with the lowest objective seen, z0 included.

    Keeping the best iterate is what makes DOT's promise hold step by step: the objective at the kept z is
    at most its value at z0, so d(G(z)) >= d(G(z0)) + k_eff ||z - z0||: no sample's critic score falls.
    Where |grad d| < k_eff at z0 the objective's minimum is z0 itself; Adam's first steps move every
    coordinate by about ``lr`` whatever the gradient's size, so its iterates circle z0 and the last one
    can be worse than the start; such a sample stays where it was. (The paper's smoothed norm
    ||z - z0 + delta|| only defines the gradient at z = z0; torch's norm has the zero subgradient there.)
    """

    name = "dot"
    requires = frozenset({"latent", "critic"})

    def refined(
        self, samples: Samples, ctx: Context, steps: int = 30, lr: float = 0.01, k_pairs: int = 500
    ) -> Samples:
        z0 = need_latents(samples, ctx, "dot")
        c = ctx.gen.creator
        y = _labels(samples, ctx)
        with torch.no_grad():
            a, b = ctx.gen.latents(k_pairs).to(z0.device), ctx.gen.latents(k_pairs).to(z0.device)
            yk = None if y is None else y[torch.arange(k_pairs) % len(y)]  # pairs share a class
            da, db = c.critic(c.decode(a, yk), yk), c.critic(c.decode(b, yk), yk)
            k_eff = max(float(((da - db).abs() / (a - b).norm(dim=1)).max()), 1e-6)
        z = z0.clone().requires_grad_(True)
        opt = torch.optim.Adam([z], lr=lr)
        best_z, best_x = z0.clone(), None
        best = torch.full((z0.shape[0],), math.inf, device=z0.device)
        with c.frozen():  # the objective is differentiated with respect to z alone
            for i in range(steps + 1):  # the objective at z0, at each step, and at the last iterate
                last = i == steps or ctx.out_of_time()
                with torch.set_grad_enabled(not last):
                    x = c.decode(z, y)
                    objective = (z - z0).norm(dim=1) - c.critic(x, y) / k_eff
                with torch.no_grad():
                    better = objective < best
                    best = torch.where(better, objective, best)
                    best_z[better] = z[better]
                    best_x = x.detach().clone() if best_x is None else best_x
                    best_x[better] = x[better].detach()
                if last:
                    if i < steps:
                        ctx.stopped(i, steps, "steps")
                    break
                (z.grad,) = torch.autograd.grad(objective.sum(), z)
                opt.step()
        moved = (best_z != z0).any(dim=1).cpu()
        images = samples.images.clone()  # a sample that stays keeps its image exactly
        images[moved] = best_x.cpu()[moved]
        return samples.derived(
            images,
            best_z.cpu(),
            ctx.what(f"dot(steps={steps}, k_eff={k_eff:.3g}, moved {int(moved.sum())} of {len(samples)}"),
        )
