"""Refinement techniques checked where the right answer is known: a 2-D mixture of Gaussians.

The "generator" is the identity on z ~ N(0, I); the data are 8 Gaussians on a circle. The optimal
discriminator is then known in closed form, d*(x) = log p_data(x) - log p_g(x), so a correct technique must
move the sample distribution towards the data, not merely raise the discriminator's score:

- DRS (Azadi et al. 2019) accepts x with a probability increasing in d*(x): the accepted set is closer to
  the data (MMD), and the closer the larger the shift gamma.
- Langevin on E(z) = ||z||^2 / 2 - d*(G(z)) (DDLS, Che et al. 2020) has stationary density
  exp(-E) proportional to p_g(z) p_data(z) / p_g(z) = p_data(z): the chain samples the data.

DOT (Tanaka 2019) is checked on a critic whose answer is known locally: a step d(x) = 2 tanh(20 x_1), steep
near x_1 = 0 and flat elsewhere. Its objective ||z - z0|| - d(G(z)) / k_eff has its minimum at z0 where
|grad d| < k_eff, so DOT must leave those samples where they are and never lower any sample's score.
"""

from __future__ import annotations

import math
import re

import torch

from artdirector.agents import Action, RefinementAgent, Samples
from artdirector.agents.refiners.drs import calibrate
from artdirector.creators import GANCreator

MODES, RADIUS, SD = 8, 2.0, 0.2
_CENTRES = torch.stack(
    [
        torch.tensor([math.cos(2 * math.pi * k / MODES), math.sin(2 * math.pi * k / MODES)]) * RADIUS
        for k in range(MODES)
    ]
)


def data(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    k = torch.randint(0, MODES, (n,), generator=g)
    return _CENTRES[k] + SD * torch.randn(n, 2, generator=g)


def log_p_data(x: torch.Tensor) -> torch.Tensor:
    d2 = (x[:, None, :] - _CENTRES[None]).pow(2).sum(-1)
    return torch.logsumexp(-d2 / (2 * SD**2), dim=1) - math.log(MODES * 2 * math.pi * SD**2)


def log_p_g(x: torch.Tensor) -> torch.Tensor:
    return -x.pow(2).sum(-1) / 2 - math.log(2 * math.pi)


class ToyGAN(torch.nn.Module):
    """G = identity on N(0, I) latents; D = the optimal discriminator's logit, log p_data - log p_g."""

    latent_dim = 2
    device = torch.device("cpu")

    def sample(self, n=None, z=None, labels=None, batch_size=1024):
        return z.detach().clone()

    def generate(self, z, labels=None):
        return z

    def discriminate(self, x, labels=None):
        return log_p_data(x) - log_p_g(x)


class ToyGeneration:
    """The slice of the Generation Agent that the Refinement Agent uses."""

    latent_dim, device, ckpt, model_version = 2, torch.device("cpu"), "toy", 0
    capabilities = frozenset({"latent", "critic"})

    def __init__(self, seed: int = 0) -> None:
        self.creator = GANCreator(ToyGAN(), "toy")  # the real adapter: techniques reach G and D through it
        self.generator = torch.Generator().manual_seed(seed)

    def latents(self, n: int) -> torch.Tensor:
        return torch.randn(n, 2, generator=self.generator)

    def from_latents(self, z, history=None, creator=None, labels=None) -> Samples:
        return Samples(
            images=(creator or self.creator).from_latents(z), latents=z, model="toy", history=history or []
        )

    def critic(self, images, labels=None, creator=None):
        return (creator or self.creator).critic_scores(images)


def mmd2(x: torch.Tensor, y: torch.Tensor, bandwidth: float = 0.5) -> float:
    """The unbiased squared MMD with a Gaussian kernel (Gretton et al. 2012)."""

    def k(a, b):
        return torch.exp(-torch.cdist(a, b).pow(2) / (2 * bandwidth**2))

    m, n = len(x), len(y)
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    return float(
        (kxx.sum() - kxx.diag().sum()) / (m * (m - 1))
        + (kyy.sum() - kyy.diag().sum()) / (n * (n - 1))
        - 2 * kxy.mean()
    )


def _agent(seed: int = 0) -> tuple[ToyGeneration, RefinementAgent]:
    gen = ToyGeneration(seed)
    return gen, RefinementAgent(gen, real_images=data(2000, seed=99))


def test_the_toy_discriminator_is_optimal() -> None:
    """Sanity of the set-up: d* = log p_data / p_g, so E_pg[exp(d*)] = 1 (importance weights)."""
    z = torch.randn(200_000, 2, generator=torch.Generator().manual_seed(0))
    assert abs(ToyGAN().discriminate(z).exp().mean().item() - 1) < 0.05


def test_drs_moves_samples_towards_the_data() -> None:
    gen, agent = _agent()
    reference = data(1500, seed=1)
    raw = gen.from_latents(gen.latents(1500))
    base = mmd2(raw.images, reference)
    shifted = []
    for gamma in (50.0, 95.0):
        out = agent.refine(
            raw, Action("drs", {"gamma_percentile": gamma, "burn_in": 5000, "max_candidates": 200_000})
        )
        shifted.append(mmd2(out.samples.images, reference))
    a, b = calibrate(agent)
    assert abs(a - 1) < 0.2 and abs(b) < 0.3  # Platt scaling leaves an optimal D nearly as it is
    assert shifted[0] < 0.5 * base and shifted[1] < shifted[0]  # closer to the data, more so with more shift
    assert shifted[1] < 0.02  # a stated bound: the raw N(0, I) sits at about 0.13


def test_langevin_chain_samples_the_data_distribution() -> None:
    gen, agent = _agent()
    reference = data(1500, seed=1)
    raw = gen.from_latents(gen.latents(1500))
    out = agent.refine(raw, Action("langevin", {"steps": 400, "step_size": 0.01, "noise": 1.0})).samples
    before, after = mmd2(raw.images, reference), mmd2(out.images, reference)
    assert after < 0.1 * before and after < 0.01
    radius = out.images.norm(dim=1)
    assert abs(radius.mean().item() - RADIUS) < 0.1 and radius.std().item() < 2 * SD  # on the ring
    # every mode is reached (the chain does not collapse onto a few)
    nearest = torch.cdist(out.images, _CENTRES).argmin(1)
    assert torch.bincount(nearest, minlength=MODES).min() > 0.5 * len(out.images) / MODES


class StepCritic(ToyGAN):
    """G = identity; d(x) = 2 tanh(20 x_1): |grad d| is 40 at x_1 = 0 and below 0.03 for |x_1| > 0.5."""

    def discriminate(self, x, labels=None):
        return 2 * torch.tanh(20 * x[:, 0])


def test_dot_never_lowers_the_critic_and_leaves_samples_whose_optimum_is_where_they_are() -> None:
    gen, agent = _agent()
    gen.creator.model = critic = StepCritic()
    raw = gen.from_latents(gen.latents(512))
    out = agent.refine(raw, Action("dot", {"steps": 20, "lr": 0.01})).samples
    k_eff = float(re.search(r"k_eff=([\d.]+(?:e[-+]?\d+)?)", out.history[-1]).group(1))
    d0, d1 = critic.discriminate(raw.images), critic.discriminate(out.images)
    moved = (out.latents - raw.latents).norm(dim=1)
    # the kept iterate's objective is at most z0's: d(G(z)) >= d(G(z0)) + k_eff ||z - z0|| for every sample
    assert (d1 >= d0).all(), f"{int((d1 < d0).sum())} samples scored lower after DOT"
    assert (d1 - d0 >= 0.999 * k_eff * moved - 1e-6).all()
    # where the step is steep (|grad d| well above k_eff) the objective falls away from z0: those samples move up
    z = raw.latents.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic.discriminate(z).sum(), z)
    steep = grad.norm(dim=1) > 1.5 * k_eff
    assert steep.sum() >= 5 and (d1[steep] > d0[steep] + 0.1).all()
    # far from the step no point within reach scores enough to pay for the move: the samples stay exactly
    far = raw.latents[:, 0].abs() > 0.5
    assert far.sum() > 200 and torch.equal(out.latents[far], raw.latents[far])
    assert torch.equal(out.images[far], raw.images[far])
