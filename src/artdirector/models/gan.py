"""The GAN LightningModule: manual optimisation of an injected generator/discriminator pair."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from artdirector.errors import ConfigError
from artdirector.models.base import (
    ExactResume,
    NonFiniteLossError,
    from_spec,
    last_good_checkpoint,
    plain,
)
from artdirector.models.checkpoint import read_checkpoint
from artdirector.models.diffaugment import diff_augment, parse_policy
from artdirector.models.gan_sampling import GANSampling, gan_hyperparameters
from artdirector.models.mode_seeking import SPACES as MODE_SEEKING_SPACES
from artdirector.models.mode_seeking import mode_seeking_loss

UPDATE_RULES = ("simultaneous", "alternating")
LOSSES = ("bce", "hinge")


def diffaugment_policy(policy: str | None) -> tuple[str, ...]:
    """The parsed ``model.diffaugment`` policy (``"auto"``: off here; ``train()`` decides it from the data
    card before the module is built); an unknown policy is a :class:`ConfigError`."""
    if policy == "auto":
        return ()
    try:
        return parse_policy(policy)
    except ValueError as err:
        raise ConfigError(f"model.diffaugment: {err}") from None


class GANModule(ExactResume, GANSampling, L.LightningModule):
    """A non-saturating GAN trained with manual optimisation.

    Goodfellow et al. 2014, https://arxiv.org/abs/1406.2661 (the non-saturating generator loss).
    Two update rules:

    - ``simultaneous`` (the seed's, the TensorFlow DCGAN tutorial's ``train_step``): one forward pass,
      ``D(x)`` and ``D(G(z))`` with one set of dropout masks; both losses come from those outputs and both
      optimisers step from the same parameters (gradient descent on the two players at once).
    - ``alternating`` (pytorch/examples' dcgan, Lightning's manual-optimisation GAN recipe): D steps on
      ``G(z).detach()``, then D runs again and G steps through the just-updated D.

    Args:
        generator, discriminator: modules, or Hydra configs with ``_target_`` (configs are saved with
            the checkpoint, so ``GANModule.from_checkpoint(path)`` rebuilds the model alone).
        optimizer_g, optimizer_d: Hydra configs with ``_partial_: true`` (or callables ``params -> Optimizer``).
        n_fixed_noise: size of the fixed noise batch whose grid is logged every epoch.
        fixed_noise_seed: seed of that batch, so grids are comparable across runs and resumes.
        update_rule: ``simultaneous`` (the seed's) or ``alternating``.
        loss: ``bce`` (the seed's: D's binary cross-entropy, G's non-saturating loss) or ``hinge`` (Lim & Ye
            2017; Miyato et al. 2018: D minimises relu(1 - D(x)) + relu(1 + D(G(z))), G maximises D(G(z))).
        ema_decay: decay of an exponential moving average of G's weights (Yazici et al. 2019,
            https://arxiv.org/abs/1806.04498) that every sample, latent move and grid draws from; 0 (the
            seed's) samples the trained G itself.
        diffaugment: DiffAugment policy applied to real and fake images before D in both steps
            (:mod:`artdirector.models.diffaugment`): ``""`` off (the seed's), e.g. ``"color,translation,cutout"``;
            ``"auto"`` is decided by ``train()`` from the data card and is off when the module is built
            without it.
        mode_seeking: weight of the mode-seeking term in G's loss (:mod:`artdirector.models.mode_seeking`,
            Mao et al. 2019): a second latent for half the batch, same labels, and a penalty on images that do
            not move with their latent; 0 (the seed's) off.
        mode_seeking_space: where that term measures distance: ``pixels`` (the paper's) or ``critic`` (the
            discriminator's pooled features; the discriminator must have ``features(x)``).
        latent_scale: the sampling temperature, one number or one per class (:class:`GANSampling`); 1 (the
            seed's) draws from the prior G was trained on. Training ignores it.
    """

    kind = "gan"

    def __init__(
        self,
        generator: Any,
        discriminator: Any,
        optimizer_g: Any,
        optimizer_d: Any,
        n_fixed_noise: int = 16,
        fixed_noise_seed: int = 0,
        update_rule: str = "simultaneous",
        diffaugment: str = "",
        loss: str = "bce",
        ema_decay: float = 0.0,
        mode_seeking: float = 0.0,
        mode_seeking_space: str = "pixels",
        latent_scale: Any = 1.0,
    ) -> None:
        super().__init__()
        if update_rule not in UPDATE_RULES:
            raise ConfigError(
                f"model.update_rule must be one of {', '.join(UPDATE_RULES)}, got {update_rule!r}"
            )
        if loss not in LOSSES:
            raise ConfigError(f"model.loss must be one of {', '.join(LOSSES)}, got {loss!r}")
        if not 0 <= ema_decay < 1:
            raise ConfigError(f"model.ema_decay must be in [0, 1), got {ema_decay}")
        if mode_seeking < 0:
            raise ConfigError(f"model.mode_seeking is a loss weight >= 0 (0: off), got {mode_seeking}")
        if mode_seeking_space not in MODE_SEEKING_SPACES:
            raise ConfigError(
                f"model.mode_seeking_space must be one of {', '.join(MODE_SEEKING_SPACES)}, "
                f"got {mode_seeking_space!r}"
            )
        self.update_rule, self.loss = update_rule, loss
        self.mode_seeking, self.mode_seeking_space = float(mode_seeking), mode_seeking_space
        self.diffaugment = diffaugment_policy(diffaugment)
        self.automatic_optimization = False
        generator, discriminator = plain(generator), plain(discriminator)
        optimizer_g, optimizer_d = plain(optimizer_g), plain(optimizer_d)
        latent_scale = plain(latent_scale)  # a list config saved as a list
        injected = [
            n
            for n, v in (
                ("generator", generator),
                ("discriminator", discriminator),
                ("optimizer_g", optimizer_g),
                ("optimizer_d", optimizer_d),
            )
            if not isinstance(v, Mapping)
        ]
        self.save_hyperparameters(ignore=injected)
        self.build_nets(generator, discriminator, ema_decay, n_fixed_noise, fixed_noise_seed, latent_scale)
        if (
            self.mode_seeking
            and mode_seeking_space == "critic"
            and not hasattr(self.discriminator, "features")
        ):
            raise ConfigError(
                f"model.mode_seeking_space=critic needs a discriminator with features(x); "
                f"{type(self.discriminator).__name__} has none: use mode_seeking_space=pixels"
            )
        self._optimizer_specs = (optimizer_g, optimizer_d)

    # ---- training -------------------------------------------------------------------------------
    def configure_optimizers(self):
        opt_g = from_spec(self._optimizer_specs[0], self.generator.parameters())
        opt_d = from_spec(self._optimizer_specs[1], self.discriminator.parameters())
        return opt_g, opt_d

    def _ensure_finite(self, name: str, loss: torch.Tensor) -> None:
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"{name} became {loss.item()} at epoch {self.current_epoch}, step {self.global_step}; training "
                f"stopped before applying it. Last good checkpoint: {last_good_checkpoint(self._trainer)}. "
                "Resume from it with ckpt_path=<that path>, e.g. with a lower learning rate."
            )

    def _d_loss(self, d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
        """bce: real -> 1, fake -> 0 (the seed sums the two BCE terms); hinge: margins of 1 either side."""
        if self.loss == "hinge":
            return F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
        return F.binary_cross_entropy_with_logits(
            d_real, torch.ones_like(d_real)
        ) + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))

    def _g_loss(self, d_fake: torch.Tensor) -> torch.Tensor:
        """bce: the non-saturating generator loss (fake -> 1); hinge: -D(G(z))."""
        if self.loss == "hinge":
            return -d_fake.mean()
        return F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.ema is not None:
            self.ema.update_parameters(self.generator)

    def training_step(self, batch: Any, batch_idx: int) -> None:
        real = batch[0] if isinstance(batch, list | tuple) else batch
        # a conditional GAN: G draws the real batch's labels; D judges each image with its label
        y = batch[1] if self.num_classes and isinstance(batch, list | tuple) else None
        if self.num_classes and y is None:
            raise ConfigError("a class-conditional GAN needs labelled data: use a data config with labels")
        opt_g, opt_d = self.optimizers()
        z = torch.randn(real.shape[0], self.latent_dim, device=self.device, dtype=real.dtype)
        fake = self._g(z, y)
        step = self._simultaneous_step if self.update_rule == "simultaneous" else self._alternating_step
        d_real, d_fake, d_loss, g_loss = step(real, fake, opt_g, opt_d, y, z)
        self.log_dict(
            {
                "train/d_loss": d_loss.detach(),
                "train/g_loss": g_loss.detach(),
                "train/d_real": torch.sigmoid(d_real.detach()).mean(),
                "train/d_fake": torch.sigmoid(d_fake.detach()).mean(),
            },
            prog_bar=True,
            on_step=True,
            on_epoch=True,
            batch_size=real.shape[0],
            sync_dist=self.trainer.world_size > 1,  # epoch means over every rank's batches under DDP
        )

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        """DiffAugment before D (the identity, drawing no random numbers, when it is off)."""
        return diff_augment(x, self.diffaugment) if self.diffaugment else x

    def _mode_seeking_term(self, fake: torch.Tensor, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """The weighted mode-seeking term for G's loss (a zero, drawing nothing, when it is off): the first
        half of the batch against images of the same labels from fresh latents."""
        if not self.mode_seeking or fake.shape[0] < 2:
            return fake.new_zeros(())
        h = fake.shape[0] // 2
        z2 = torch.randn_like(z[:h])
        other = self._g(z2, y[:h] if y is not None else None)
        embed = None
        if self.mode_seeking_space == "critic":
            d = self.discriminator  # a minibatch-std D reads each image's class for its spread map
            embed = (lambda x: d.features(x, y[:h])) if getattr(d, "minibatch_std", False) else d.features
        term = mode_seeking_loss(fake[:h], other, z[:h], z2, embed)
        self.log("train/mode_seeking", term.detach(), on_step=False, on_epoch=True, batch_size=fake.shape[0])
        return self.mode_seeking * term

    def _simultaneous_step(self, real, fake, opt_g, opt_d, y, z):
        """Both losses from one forward pass; both gradients taken before either optimiser steps. With
        DiffAugment, D sees augmented real and fake images, and both losses come from those outputs (G's
        gradient flows back through the augmentation)."""
        d_real = self._d(self._augment(real), y)
        d_fake = self._d(self._augment(fake), y)
        d_loss = self._d_loss(d_real, d_fake)
        g_loss = self._g_loss(d_fake) + self._mode_seeking_term(fake, z, y)
        self._ensure_finite("train/d_loss", d_loss)
        self._ensure_finite("train/g_loss", g_loss)
        opt_g.zero_grad(set_to_none=True)
        opt_d.zero_grad(set_to_none=True)
        g_params, d_params = list(self.generator.parameters()), list(self.discriminator.parameters())
        with self._gradients_averaged_over_ranks([*g_params, *d_params]):
            # `inputs=` keeps each loss's gradient on its own player (no D grads from g_loss, no G grads
            # from d_loss): the two tapes of the seed's train_step.
            self.manual_backward(g_loss, inputs=g_params, retain_graph=True)
            self.manual_backward(d_loss, inputs=d_params)
        opt_g.step()
        opt_d.step()
        return d_real, d_fake, d_loss, g_loss

    @contextlib.contextmanager
    def _gradients_averaged_over_ranks(self, params: list[nn.Parameter]) -> Iterator[None]:
        """Under DDP, average these gradients over ranks with one all-reduce after the block.

        DDP's reducer expects every parameter on a loss's graph to receive a gradient from that backward;
        the simultaneous step's ``inputs=``-restricted backwards break that expectation, so the reducer is
        bypassed for the step (as ``no_sync`` does) and the gradients are reduced here instead."""
        ddp = getattr(self._trainer, "strategy", None) and getattr(self.trainer.strategy, "model", None)
        if not isinstance(ddp, nn.parallel.DistributedDataParallel):
            yield
            return
        ddp.require_backward_grad_sync = False
        try:
            yield
        finally:
            ddp.require_backward_grad_sync = True
            ddp.require_forward_param_sync = True  # keep broadcasting buffers at the next forward
        grads = [p.grad for p in params if p.grad is not None]
        flat = torch._utils._flatten_dense_tensors(grads)
        torch.distributed.all_reduce(flat)
        flat /= torch.distributed.get_world_size()
        for g, reduced in zip(grads, torch._utils._unflatten_dense_tensors(flat, grads), strict=True):
            g.copy_(reduced)

    def _alternating_step(self, real, fake, opt_g, opt_d, y, z):
        """D steps on ``fake.detach()``; then G steps through the just-updated D. With DiffAugment, every
        D pass sees freshly augmented images (real and fake in the D step, fake in the G step)."""
        with self.toggled_optimizer(opt_d):
            d_real = self._d(self._augment(real), y)
            d_fake = self._d(self._augment(fake.detach()), y)
            d_loss = self._d_loss(d_real, d_fake)
            self._ensure_finite("train/d_loss", d_loss)
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(d_loss)
            opt_d.step()
        with self.toggled_optimizer(opt_g):
            g_loss = self._g_loss(self._d(self._augment(fake), y)) + self._mode_seeking_term(fake, z, y)
            self._ensure_finite("train/g_loss", g_loss)
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(g_loss)
            opt_g.step()
        return d_real, d_fake, d_loss, g_loss

    # ---- checkpoints (ExactResume: kind and RNG states) -----------------------------------------
    @classmethod
    def from_checkpoint(cls, path: str | Path, map_location: str | torch.device = "cpu") -> GANModule:
        """Rebuild a trained GAN from its ``.ckpt`` alone, in eval mode."""
        return cls.from_loaded(read_checkpoint(path), path, map_location)

    @classmethod
    def from_loaded(
        cls, ckpt: dict[str, Any], path: str | Path = "<checkpoint>", map_location: str | torch.device = "cpu"
    ) -> GANModule:
        """Rebuild from a checkpoint already read with ``read_checkpoint`` (no second read of the file)."""
        hp = gan_hyperparameters(ckpt, path)
        model = cls(**hp)
        model.load_state_dict(ckpt["state_dict"])
        return model.to(map_location).eval()
