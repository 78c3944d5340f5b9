"""The diffusion training loss: plain noise MSE, or Min-SNR-gamma weighted (Hang et al. 2023)."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from artdirector.errors import ConfigError
from artdirector.models.diffusion import DiffusionModule
from helpers import TINY_UNET

UNET = [*TINY_UNET, "model.p_uncond=0.0"]


def _model(make_cfg, extra):
    return instantiate(make_cfg("train", [*UNET, *extra]).model, _recursive_=False)


def _loss_with_zero_prediction(model, monkeypatch):
    """The training loss when the network predicts zero noise, and the timesteps it drew: each sample's
    MSE is then the mean square of its own noise, known to the test."""
    seen = {}
    monkeypatch.setattr(model, "log", lambda *a, **k: None)

    def eps(x, t, y, net=None):
        seen["t"] = t.clone()
        return torch.zeros_like(x)

    monkeypatch.setattr(model, "eps", eps)
    torch.manual_seed(0)
    x, y = torch.rand(64, 1, 28, 28) * 2 - 1, torch.randint(0, 10, (64,))
    torch.manual_seed(1)
    loss = model.training_step((x, y), 0)
    # replay the draws of training_step: the null-label coin, then the noise, then the timesteps
    torch.manual_seed(1)
    torch.rand(64)
    noise = torch.randn_like(x)
    return loss, seen["t"], noise.pow(2).mean((1, 2, 3))


def test_plain_loss_is_the_unweighted_noise_mse(make_cfg, monkeypatch) -> None:
    model = _model(make_cfg, [])
    loss, _, per_sample = _loss_with_zero_prediction(model, monkeypatch)
    assert loss.item() == pytest.approx(per_sample.mean().item(), rel=1e-5)


def test_min_snr_weights_each_sample_by_min_snr_gamma_over_snr(make_cfg, monkeypatch) -> None:
    gamma = 5.0
    model = _model(make_cfg, [f"model.snr_gamma={gamma}"])
    loss, t, per_sample = _loss_with_zero_prediction(model, monkeypatch)
    abar = model.train_scheduler.alphas_cumprod[t].double()
    snr = abar / (1 - abar)
    weights = torch.minimum(snr, torch.full_like(snr, gamma)) / snr
    assert loss.item() == pytest.approx((per_sample.double() * weights).mean().item(), rel=1e-5)
    # the draw covers both regimes: near-clean steps (SNR > gamma) are down-weighted, noisy ones are not
    assert (weights < 1).any() and (weights == 1).any()
    assert loss.item() < per_sample.mean().item()


def test_snr_gamma_must_be_positive(make_cfg) -> None:
    spec = OmegaConf.to_container(make_cfg("train", UNET).model, resolve=True)
    spec.pop("_target_")
    with pytest.raises(ConfigError, match="snr_gamma must be positive"):
        DiffusionModule(**{**spec, "snr_gamma": 0.0})
