"""The GAN LightningModule: manual optimisation of an injected generator/discriminator pair."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from artdirector.models.checkpoint import KIND_KEY, CheckpointError, checkpoint_kind, read_checkpoint


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN/inf loss; the weights were left as they were before that step."""


def _plain(spec: Any) -> Any:
    return OmegaConf.to_container(spec, resolve=True) if isinstance(spec, DictConfig) else spec


def _build(spec: Any) -> nn.Module:
    """A network is either injected as a module or described by a Hydra config with ``_target_``."""
    if isinstance(spec, nn.Module):
        return spec
    if isinstance(spec, Mapping) and "_target_" in spec:
        return instantiate(spec)
    raise TypeError(f"expected an nn.Module or a Hydra config with _target_, got {type(spec).__name__}")


@contextlib.contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Temporarily put modules in eval mode (BatchNorm running stats, no dropout), then restore."""
    was_training = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for m, flag in zip(modules, was_training, strict=True):
            m.train(flag)


def last_good_checkpoint(trainer: L.Trainer | None) -> str:
    """The newest checkpoint the run has written, for error messages."""
    cb = getattr(trainer, "checkpoint_callback", None) if trainer is not None else None
    path = (getattr(cb, "last_model_path", "") or getattr(cb, "best_model_path", "")) if cb else ""
    return path or "none written yet (the run failed before its first checkpoint)"


class GANModule(L.LightningModule):
    """A non-saturating GAN trained with manual optimisation (one D step, then one G step per batch).

    Goodfellow et al. 2014, https://arxiv.org/abs/1406.2661 (the non-saturating generator loss);
    the step order follows Lightning's manual-optimisation GAN recipe.

    Args:
        generator, discriminator: modules, or Hydra configs with ``_target_`` (configs are saved with
            the checkpoint, so ``GANModule.from_checkpoint(path)`` rebuilds the model alone).
        optimizer_g, optimizer_d: Hydra configs with ``_partial_: true`` (or callables ``params -> Optimizer``).
        n_fixed_noise: size of the fixed noise batch whose grid is logged every epoch.
        fixed_noise_seed: seed of that batch, so grids are comparable across runs and resumes.
    """

    def __init__(
        self,
        generator: Any,
        discriminator: Any,
        optimizer_g: Any,
        optimizer_d: Any,
        n_fixed_noise: int = 16,
        fixed_noise_seed: int = 0,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        generator, discriminator = _plain(generator), _plain(discriminator)
        optimizer_g, optimizer_d = _plain(optimizer_g), _plain(optimizer_d)
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
        self.generator = _build(generator)
        self.discriminator = _build(discriminator)
        self._optimizer_specs = (optimizer_g, optimizer_d)
        noise = torch.randn(
            n_fixed_noise, self.latent_dim, generator=torch.Generator().manual_seed(fixed_noise_seed)
        )
        self.register_buffer("fixed_noise", noise)

    # ---- what later parts use -------------------------------------------------------------------
    @property
    def latent_dim(self) -> int:
        return int(self.generator.latent_dim)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (int(self.generator.channels), 28, 28)

    def sample_latents(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, device=self.device, generator=generator)

    @torch.no_grad()
    def sample(
        self, n: int | None = None, z: torch.Tensor | None = None, batch_size: int = 1024
    ) -> torch.Tensor:
        """Images in [-1, 1] from ``z`` (or ``n`` fresh latents), with the generator in eval mode."""
        if z is None:
            if n is None:
                raise ValueError("sample() needs n or z")
            z = self.sample_latents(n)
        z = z.to(self.device)
        with eval_mode(self.generator):
            return torch.cat([self.generator(chunk) for chunk in z.split(batch_size)])

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """Differentiable generation in eval mode (latent refinement needs gradients through G)."""
        with eval_mode(self.generator):
            return self.generator(z)

    def discriminate(self, x: torch.Tensor) -> torch.Tensor:
        """Discriminator logits (N,) in eval mode (no dropout); differentiable w.r.t. ``x``."""
        with eval_mode(self.discriminator):
            return self.discriminator(x)

    # ---- training -------------------------------------------------------------------------------
    def configure_optimizers(self):
        def make(spec: Any, params) -> torch.optim.Optimizer:
            return instantiate(spec)(params) if isinstance(spec, Mapping) else spec(params)

        opt_g = make(self._optimizer_specs[0], self.generator.parameters())
        opt_d = make(self._optimizer_specs[1], self.discriminator.parameters())
        return opt_g, opt_d

    def _ensure_finite(self, name: str, loss: torch.Tensor) -> None:
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"{name} became {loss.item()} at epoch {self.current_epoch}, step {self.global_step}; training "
                f"stopped before applying it. Last good checkpoint: {last_good_checkpoint(self._trainer)}. "
                "Resume from it with ckpt_path=<that path>, e.g. with a lower learning rate."
            )

    def training_step(self, batch: Any, batch_idx: int) -> None:
        real = batch[0] if isinstance(batch, list | tuple) else batch
        opt_g, opt_d = self.optimizers()
        z = torch.randn(real.shape[0], self.latent_dim, device=self.device, dtype=real.dtype)
        fake = self.generator(z)

        # Discriminator: real -> 1, fake -> 0 (the seed sums the two BCE terms).
        with self.toggled_optimizer(opt_d):
            d_real = self.discriminator(real)
            d_fake = self.discriminator(fake.detach())
            d_loss = F.binary_cross_entropy_with_logits(
                d_real, torch.ones_like(d_real)
            ) + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
            self._ensure_finite("train/d_loss", d_loss)
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(d_loss)
            opt_d.step()

        # Generator: non-saturating loss, fake -> 1, through the just-updated discriminator.
        with self.toggled_optimizer(opt_g):
            g_logits = self.discriminator(fake)
            g_loss = F.binary_cross_entropy_with_logits(g_logits, torch.ones_like(g_logits))
            self._ensure_finite("train/g_loss", g_loss)
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(g_loss)
            opt_g.step()

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
        )

    # ---- checkpoints ----------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[KIND_KEY] = "gan"
        # Exact resume: noise, dropout masks and shuffling continue from where they stopped.
        # Plain tensors, ints and lists only, so that weights_only=True loading (Lightning's default) accepts them.
        np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
        py_version, py_state, py_gauss = random.getstate()
        checkpoint["rng_states"] = {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": [np_kind, np_keys.tolist(), int(np_pos), int(np_has_gauss), float(np_gauss)],
            "python": [py_version, list(py_state), py_gauss],
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        states = checkpoint.get("rng_states")
        if not states:
            return
        torch.set_rng_state(states["torch"])
        if states["cuda"] and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states["cuda"])
        np_kind, np_keys, *np_rest = states["numpy"]
        np.random.set_state((np_kind, np.asarray(np_keys, dtype=np.uint32), *np_rest))
        py_version, py_state, py_gauss = states["python"]
        random.setstate((py_version, tuple(py_state), py_gauss))

    @classmethod
    def from_checkpoint(cls, path: str | Path, map_location: str | torch.device = "cpu") -> GANModule:
        """Rebuild a trained GAN from its ``.ckpt`` alone, in eval mode."""
        return cls.from_loaded(read_checkpoint(path), path, map_location)

    @classmethod
    def from_loaded(
        cls, ckpt: dict[str, Any], path: str | Path = "<checkpoint>", map_location: str | torch.device = "cpu"
    ) -> GANModule:
        """Rebuild from a checkpoint already read with ``read_checkpoint`` (no second read of the file)."""
        kind = checkpoint_kind(ckpt)
        if kind != "gan":
            raise CheckpointError(
                f"{path} holds a '{kind}' model, not a GAN generator; pass a checkpoint from "
                "`python scripts/train.py model=dcgan`"
            )
        hp = dict(ckpt["hyper_parameters"])
        missing = {"generator", "discriminator"} - hp.keys()
        if missing:
            raise CheckpointError(
                f"{path} was saved with injected {sorted(missing)} modules and cannot rebuild them"
            )
        model = cls(**hp)
        model.load_state_dict(ckpt["state_dict"])
        return model.to(map_location).eval()
