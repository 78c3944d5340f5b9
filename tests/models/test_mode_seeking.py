"""Mode seeking (Mao et al. 2019) in the GAN module: the paper's term, a gradient that spreads a collapsed
generator, G's loss gaining it in both update rules, and clear errors for bad settings."""

from __future__ import annotations

import pytest
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate

from artdirector.errors import ConfigError
from artdirector.models.gan import GANModule
from artdirector.models.mode_seeking import EPS, mode_seeking_loss
from artdirector.models.nets import CBNGenerator
from helpers import TINY, TINY_CGAN, fit_steps

CGAN = TINY_CGAN


def test_the_term_is_the_inverse_of_image_distance_over_latent_distance() -> None:
    a, b = torch.zeros(4, 1, 2, 2), torch.full((4, 1, 2, 2), 0.5)
    za, zb = torch.zeros(4, 3), torch.ones(4, 3)
    assert float(mode_seeking_loss(a, b, za, zb)) == pytest.approx(1 / (0.5 + EPS))
    # one image for two latents: the largest penalty; twice the latent distance: twice the penalty
    assert float(mode_seeking_loss(a, a, za, zb)) == pytest.approx(1 / EPS)
    assert float(mode_seeking_loss(a, b, za, 2 * zb)) == pytest.approx(1 / (0.25 + EPS))
    # the distance is taken where `embed` maps the images
    assert float(mode_seeking_loss(a, b, za, zb, embed=lambda x: 4 * x)) == pytest.approx(1 / (2 + EPS))


def test_descending_the_term_spreads_a_collapsed_generator() -> None:
    """A generator that all but ignores its latent: steps on the term alone make its images move with z."""
    torch.manual_seed(0)
    g = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh())
    with torch.no_grad():
        g[0].weight.mul_(1e-3)
    z_eval = torch.randn(64, 8)

    def spread() -> float:
        with torch.no_grad():
            x = g(z_eval)
        return float(torch.cdist(x, x).mean())

    before = spread()
    opt = torch.optim.SGD(g.parameters(), lr=1e-4)
    for _ in range(20):
        za, zb = torch.randn(32, 8), torch.randn(32, 8)
        opt.zero_grad()
        mode_seeking_loss(g(za), g(zb), za, zb).backward()
        opt.step()
    assert spread() > 10 * before


def _fit_two_steps(make_cfg, overrides: list[str]) -> tuple[GANModule, object, dict[str, int]]:
    cfg = make_cfg("train", [*CGAN, *overrides])
    model: GANModule = instantiate(cfg.model, _recursive_=False)
    calls = {"g": 0, "d_features": 0}
    model.generator.register_forward_pre_hook(lambda *_: calls.__setitem__("g", calls["g"] + 1))
    model.discriminator.features = _counted(model.discriminator.features, calls)
    trainer = fit_steps(model, instantiate(cfg.data), steps=2)
    return model, trainer, calls


def _counted(fn, calls):
    def wrapper(*args):
        calls["d_features"] += 1
        return fn(*args)

    return wrapper


@pytest.mark.parametrize("rule", ["alternating", "simultaneous"])
def test_g_draws_a_second_half_batch_only_when_the_term_is_on(make_cfg, rule) -> None:
    # alternating: D sees real, fake (D step), fake (G step); simultaneous: real and fake once
    d_per_step = 3 if rule == "alternating" else 2
    # max_steps counts optimiser steps (two per batch), so 2 steps = 1 batch
    _, trainer, calls = _fit_two_steps(make_cfg, [f"model.update_rule={rule}"])
    assert calls == {"g": 1, "d_features": d_per_step}
    assert "train/mode_seeking" not in trainer.callback_metrics
    _, trainer, calls = _fit_two_steps(make_cfg, [f"model.update_rule={rule}", "model.mode_seeking=1"])
    assert calls == {"g": 2, "d_features": d_per_step}
    assert float(trainer.callback_metrics["train/mode_seeking"]) > 0
    # in D's feature space: D reads both halves once more
    _, trainer, calls = _fit_two_steps(
        make_cfg, [f"model.update_rule={rule}", "model.mode_seeking=1", "model.mode_seeking_space=critic"]
    )
    assert calls == {"g": 2, "d_features": d_per_step + 2}


def test_bad_mode_seeking_settings_are_one_line_errors(make_cfg) -> None:
    for overrides, message in (
        (["model.mode_seeking=-1"], r"model\.mode_seeking is a loss weight >= 0"),
        (["model.mode_seeking_space=latents"], r"model\.mode_seeking_space must be one of pixels, critic"),
    ):
        with pytest.raises(InstantiationException, match=message):
            instantiate(make_cfg("train", [*CGAN, *overrides])["model"], _recursive_=False)
    # a discriminator with no features(x) has nowhere to measure
    with pytest.raises(ConfigError, match=r"needs a discriminator with features\(x\); _Logits has none"):
        GANModule(
            CBNGenerator(base_channels=8),
            _Logits(),
            optimizer_g=torch.optim.Adam,
            optimizer_d=torch.optim.Adam,
            mode_seeking=1.0,
            mode_seeking_space="critic",
        )


class _Logits(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return x.flatten(1).mean(1) * self.w


def test_critic_space_also_reads_the_seed_discriminators_conv_features(make_cfg) -> None:
    cfg = make_cfg("train", [*TINY, "+model.mode_seeking=1", "+model.mode_seeking_space=critic"])
    model: GANModule = instantiate(cfg["model"], _recursive_=False)
    z = torch.randn(8, model.latent_dim)
    term = model._mode_seeking_term(model.generator(z), z, None)
    assert term > 0 and term.requires_grad
