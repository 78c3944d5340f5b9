"""Discriminator Rejection Sampling (Azadi et al. 2019) with the critic's Platt-calibrated logits."""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

from artdirector.agents.refiners.base import Context, SamplesRefiner
from artdirector.agents.types import Samples

log = logging.getLogger(__name__)


@torch.no_grad()
def _logits(ctx: Context, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    return ctx.gen.critic(images, labels)


def calibrate(ctx: Context, n: int = 1000, iters: int = 200) -> tuple[float, float]:
    """Platt scaling of the current model's D on ``ctx.real_images`` (held out from D's training: the
    selection split) against as many fresh samples; refitted whenever the model changes."""
    gen = ctx.gen
    cached = ctx.state.get("drs_calibration")  # (model version, a, b)
    if cached is not None and cached[0] == gen.model_version:
        return cached[1:]
    if ctx.real_images is None:
        ctx.state["drs_calibration"] = (gen.model_version, 1.0, 0.0)
        log.warning("no real images for DRS logit calibration: using raw logits")
        return 1.0, 0.0
    real = ctx.real_images[:n]
    real_labels = None
    if gen.creator.num_classes:  # a projection D judges an image with its class
        if ctx.real_labels is None:
            raise ValueError("calibrating a class-conditional critic needs the real images' labels")
        real_labels = ctx.real_labels[:n]
    fake = gen.from_latents(gen.latents(real.shape[0]), labels=real_labels)
    logits = torch.cat([_logits(ctx, real, real_labels), _logits(ctx, fake.images, fake.labels)])
    target = torch.cat([torch.ones(real.shape[0]), torch.zeros(len(fake))])
    ab = torch.tensor([1.0, 0.0], requires_grad=True)
    opt = torch.optim.LBFGS([ab], max_iter=iters)

    def closure():
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(ab[0] * logits + ab[1], target)
        loss.backward()
        return loss

    opt.step(closure)
    ctx.state["drs_calibration"] = (gen.model_version, float(ab[0].detach()), float(ab[1].detach()))
    return ctx.state["drs_calibration"][1:]


def calibrated_logits(ctx: Context, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """D's logits after Platt scaling (a * logit + b) fitted on held-out real vs generated images.
    Azadi et al. 2019 calibrate D before rejection sampling, since D's raw outputs overfit."""
    a, b = calibrate(ctx)
    return a * _logits(ctx, images, labels) + b


class DRS(SamplesRefiner):
    """Discriminator Rejection Sampling. Azadi et al. 2019, https://arxiv.org/abs/1810.06758.

    With calibrated logits l, D*_M the largest seen, accept x with probability sigmoid(F(x)) where
    F(x) = l - D*_M - log(1 - exp(l - D*_M - eps)) - gamma, and gamma the ``gamma_percentile``-th
    percentile of F over each batch (the paper's shift; higher keeps fewer, more confident samples).
    Candidates are the current samples first, then fresh draws from the generator, until len(samples)
    are accepted (or ``max_candidates``; then the best-scored rejected ones fill in, noted in the log).
    A conditional creator's samples keep their classes: each accepted candidate fills a slot of its own
    class, so the output has exactly the input's labels (in the input's order). The output is not paired
    with the input: an accepted sample may be a fresh draw."""

    name = "drs"
    requires = frozenset({"latent", "critic"})  # the samples' latents are the first candidates
    paired = False

    def refined(
        self,
        samples: Samples,
        ctx: Context,
        gamma_percentile: float = 80.0,
        burn_in: int = 2000,
        max_candidates: int = 20000,
        batch: int = 500,
        eps: float = 1e-6,
    ) -> Samples:
        gen = ctx.gen
        n = len(samples)
        if samples.latents is None:
            raise ValueError("drs draws fresh latents beside the samples'; these samples have none")
        conditional = samples.labels is not None
        burn = gen.from_latents(gen.latents(burn_in))
        d_max = float(calibrated_logits(ctx, burn.images, burn.labels).max())
        # slots[c]: the output positions still waiting for an image of class c (one class, -1, if unconditional)
        want = samples.labels if conditional else torch.full((n,), -1)
        slots: dict[int, list[int]] = {}
        for i, c in enumerate(want.tolist()):
            slots.setdefault(c, []).append(i)
        z_out = torch.empty_like(samples.latents)
        x_out = torch.empty_like(samples.images)
        rejected: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = []
        pool = [(samples.latents, samples.images, want)]
        seen = filled = accepted = 0
        while filled < n and seen < max_candidates:
            if not pool and ctx.out_of_time():  # fill from what has been scored
                ctx.stopped(seen, max_candidates, "candidates")
                break
            if pool:
                z, x, y = pool.pop(0)
            else:  # fresh candidates of the classes still wanted, in proportion
                still = torch.tensor([c for c, s in slots.items() for _ in s])
                y = still[torch.randint(len(still), (batch,), generator=gen.generator)]
                fresh = gen.from_latents(gen.latents(batch), labels=y if conditional else None)
                z, x = fresh.latents, fresh.images
            seen += len(z)
            logit = calibrated_logits(ctx, x, y if conditional else None)
            d_max = max(d_max, float(logit.max()))
            f = logit - d_max - torch.log1p(-torch.exp(logit - d_max - eps).clamp(max=1 - 1e-7))
            gamma = torch.quantile(f, gamma_percentile / 100.0)
            keep = torch.rand(len(z), generator=gen.generator) < torch.sigmoid(f - gamma)
            accepted += int(keep.sum())
            used = torch.zeros(len(z), dtype=torch.bool)
            for j in keep.nonzero().flatten().tolist():
                free = slots.get(int(y[j]))
                if free:
                    k = free.pop(0)
                    z_out[k], x_out[k], used[j] = z[j], x[j], True
                    filled += 1
            rejected.append((f[~used], z[~used], x[~used], y[~used]))
        if filled < n:  # budget of candidates spent: fill with the highest-scored rejected of each class
            f_r = torch.cat([r[0] for r in rejected])
            z_r, x_r, y_r = (torch.cat([r[i] for r in rejected]) for i in (1, 2, 3))
            for j in f_r.argsort(descending=True).tolist():
                free = slots.get(int(y_r[j]))
                if free:
                    k = free.pop(0)
                    z_out[k], x_out[k] = z_r[j], x_r[j]
            for k in (k for free in slots.values() for k in free):  # none of its class left: keep the input
                z_out[k], x_out[k] = samples.latents[k], samples.images[k]
            log.info(
                "DRS: only %d of %d accepted in %d candidates; filled with the best rejected", filled, n, seen
            )
        log.info("DRS: acceptance rate %.3f (%d candidates)", accepted / max(seen, 1), seen)
        return samples.derived(x_out, z_out, ctx.what(f"drs(gamma_percentile={gamma_percentile}"))
