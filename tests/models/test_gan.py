"""GANModule: the manual-optimisation step, the sampling API, and rebuilding from a checkpoint."""

from __future__ import annotations

import copy

import lightning as L
import pytest
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate

from artdirector.models.checkpoint import CheckpointError
from artdirector.models.gan import GANModule
from helpers import TINY, fit_steps


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def _changed(before: dict[str, torch.Tensor], module: torch.nn.Module) -> bool:
    return any(not torch.equal(before[k], v) for k, v in module.named_parameters())


def _grads(module: torch.nn.Module) -> list[torch.Tensor | None]:
    return [None if p.grad is None else p.grad.clone() for p in module.parameters()]


def _same_grads(a: list[torch.Tensor | None], b: list[torch.Tensor | None]) -> bool:
    return all(
        (x is None and y is None) or (x is not None and y is not None and torch.equal(x, y))
        for x, y in zip(a, b, strict=True)
    )


class _StepSpy(L.Callback):
    """Records, for every optimiser step, which network's parameters it changed and whether the backward
    before it touched the other (frozen) network's gradients."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, bool, bool, bool]] = []

    def on_train_start(self, trainer, pl_module):
        g_net, d_net = pl_module.generator, pl_module.discriminator
        opt_g, opt_d = (o.optimizer if hasattr(o, "optimizer") else o for o in trainer.optimizers)
        # gradients each network held right after its own last step (None: never computed)
        left = {"G": [None] * len(list(g_net.parameters())), "D": [None] * len(list(d_net.parameters()))}
        for name, opt, other, other_name in (("G", opt_g, d_net, "D"), ("D", opt_d, g_net, "G")):
            state = {}

            def pre(_opt, _a, _k, state=state, other=other, other_name=other_name):
                state["g"], state["d"] = _snapshot(g_net), _snapshot(d_net)
                state["other_touched"] = not _same_grads(_grads(other), left[other_name])

            def post(_opt, _a, _k, name=name, state=state):
                left[name] = _grads(g_net if name == "G" else d_net)
                self.steps.append(
                    (name, _changed(state["g"], g_net), _changed(state["d"], d_net), state["other_touched"])
                )

            opt.register_step_pre_hook(pre)
            opt.register_step_post_hook(post)


def test_alternating_step_updates_d_then_g_and_only_the_intended_net(make_cfg) -> None:
    cfg = make_cfg("train", [*TINY, "model.update_rule=alternating"])
    model = instantiate(cfg.model, _recursive_=False)
    dm = instantiate(cfg.data)
    g0, d0 = _snapshot(model.generator), _snapshot(model.discriminator)
    spy = _StepSpy()
    trainer = fit_steps(model, dm, 2, [spy])
    # one batch = D step then G step; each changes only its own network, with no grads on the other
    assert spy.steps == [("D", False, True, False), ("G", True, False, False)]
    assert _changed(g0, model.generator) and _changed(d0, model.discriminator)
    logged = trainer.callback_metrics
    for key in ("train/d_loss", "train/g_loss", "train/d_real", "train/d_fake"):
        assert torch.isfinite(logged[key]), key
    assert 0 < logged["train/d_real"] < 1


class _GradRecorder(L.Callback):
    """Keeps the batch, the RNG state before the first training step, and each net's gradients as its
    optimiser saw them (a pre-step hook), for one batch."""

    def __init__(self) -> None:
        self.grads: dict[str, list[torch.Tensor]] = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.batch, self.rng = batch[0].clone(), torch.get_rng_state()
        self.g0 = {k: v.clone() for k, v in pl_module.generator.state_dict().items()}
        self.d0 = {k: v.clone() for k, v in pl_module.discriminator.state_dict().items()}
        nets = (pl_module.generator, pl_module.discriminator)
        for name, opt, net in zip("GD", trainer.optimizers, nets, strict=True):
            opt = getattr(opt, "optimizer", opt)

            def keep(*_args, name=name, net=net) -> None:
                self.grads.setdefault(name, [p.grad.clone() for p in net.parameters()])

            opt.register_step_pre_hook(keep)


def test_simultaneous_step_gradients_equal_one_forward_pass_by_hand(make_cfg) -> None:
    """The seed's train_step: both losses from one forward pass (one set of dropout masks), each gradient
    taken from those outputs, both applied from the same parameters."""
    cfg = make_cfg("train", [*TINY, "model.update_rule=simultaneous", "model.discriminator.dropout=0.5"])
    model = instantiate(cfg.model, _recursive_=False)
    g_net, d_net = copy.deepcopy(model.generator), copy.deepcopy(model.discriminator)
    rec = _GradRecorder()
    fit_steps(model, instantiate(cfg.data), 2, [rec])  # 2 optimiser steps = one batch
    assert set(rec.grads) == {"G", "D"}
    # by hand, from the same RNG state: z, G(z), D(x), D(G(z)) in that order, both losses, two tapes
    g_net.load_state_dict(rec.g0)
    d_net.load_state_dict(rec.d0)
    torch.set_rng_state(rec.rng)
    real = rec.batch
    z = torch.randn(real.shape[0], g_net.latent_dim)
    fake = g_net(z)
    d_real, d_fake = d_net(real), d_net(fake)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    g_loss = bce(d_fake, torch.ones_like(d_fake))
    d_loss = bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake))
    g_grads = torch.autograd.grad(g_loss, list(g_net.parameters()), retain_graph=True)
    d_grads = torch.autograd.grad(d_loss, list(d_net.parameters()))
    for got, want in ((rec.grads["G"], g_grads), (rec.grads["D"], d_grads)):
        assert len(got) == len(want)
        for a, b in zip(got, want, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    # a second D pass for G (new dropout masks), as the alternating rule does, gives other G gradients
    g_loss_2 = bce(d_net(fake), torch.ones_like(d_fake))
    g_grads_2 = torch.autograd.grad(g_loss_2, list(g_net.parameters()))
    assert not all(torch.allclose(a, b) for a, b in zip(rec.grads["G"], g_grads_2, strict=True))


def test_unknown_update_rule_is_a_clear_error(make_cfg) -> None:
    cfg = make_cfg("train", [*TINY, "model.update_rule=sideways"])
    with pytest.raises(InstantiationException, match="update_rule must be one of simultaneous, alternating"):
        instantiate(cfg.model, _recursive_=False)


def test_sample_discriminate_and_latent_dim(make_cfg) -> None:
    model = instantiate(make_cfg("train", [])["model"], _recursive_=False)
    assert model.latent_dim == 100 and model.fixed_noise.shape == (16, 100)
    x = model.sample(5)
    assert x.shape == (5, 1, 28, 28) and x.min() >= -1 and x.max() <= 1
    z = torch.randn(3, 100)
    assert torch.equal(model.sample(z=z), model.sample(z=z))  # eval mode: deterministic BN
    assert model.generator.training  # sampling restored the mode
    x = model.sample(z=z).requires_grad_(True)
    logits = model.discriminate(x)
    assert logits.shape == (3,)
    logits.sum().backward()  # differentiable w.r.t. the images (latent refinement needs this)
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="n or z"):
        model.sample()


def test_checkpoint_alone_rebuilds_the_model(make_cfg, tmp_path) -> None:
    from artdirector.train import train

    cfg = make_cfg("train", [*TINY, "trainer.max_epochs=1"])
    train(cfg)
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    model = GANModule.from_checkpoint(ckpt)
    state = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    assert model.generator.project[0].out_features == 7 * 7 * 32  # the tiny config, not the default
    assert model.sample(2).shape == (2, 1, 28, 28)


def test_bad_checkpoints_get_clear_errors(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        GANModule.from_checkpoint(tmp_path / "missing.ckpt")
    corrupt = tmp_path / "corrupt.ckpt"
    corrupt.write_bytes(b"\x80\x04not a checkpoint at all")
    with pytest.raises(CheckpointError, match="could not be read"):
        GANModule.from_checkpoint(corrupt)
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="not a Lightning checkpoint"):
        GANModule.from_checkpoint(foreign)
