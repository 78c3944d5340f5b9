"""What drawing from a trained GAN needs, without Lightning: the sampling half of
:class:`~artdirector.models.gan.GANModule` (:class:`GANSampling`, which that module inherits), and
:class:`GANNets`, the same networks rebuilt from a checkpoint as a plain ``nn.Module`` for a process that only
samples and scores (a scene request: importing Lightning costs seconds of CPU). Both draw the same pixels from
the same weights: one implementation of sampling, one layout of the state dict."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from artdirector.errors import ConfigError
from artdirector.models.base import balanced_labels, build_module, ema_with_warmup, plain
from artdirector.models.checkpoint import CheckpointError, checkpoint_kind


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


def gan_hyperparameters(ckpt: dict[str, Any], path: str | Path = "<checkpoint>") -> dict[str, Any]:
    """The hyperparameters a GAN checkpoint rebuilds from, or a :class:`CheckpointError` saying why it cannot."""
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
    return hp


def latent_scales(latent_scale: Any, num_classes: int) -> tuple[float, ...]:
    """``latent_scale`` (one number, or one per class of a conditional GAN) as a tuple of positive floats, or a
    :class:`ConfigError` saying what to write instead."""
    scales = tuple(
        float(s) for s in (latent_scale if isinstance(latent_scale, list | tuple) else [latent_scale])
    )
    if len(scales) not in {1, max(num_classes, 1)} or min(scales) <= 0:
        raise ConfigError(
            f"model.latent_scale must be one number > 0 or one per class ({num_classes}), got {latent_scale}"
        )
    return scales


class GANSampling:
    """Sampling and scoring over ``self.generator``, ``self.discriminator`` and ``self.ema`` (an
    ``AveragedModel`` of the generator, or None); the host class gives ``device``.

    Sampling temperature: every sampling path (``sample``, ``generate``, and so every agent's draw and latent
    move) decodes ``G(s * z, y)`` with ``s = latent_scale`` of the class ``y``, that is latents from
    N(0, s^2 I), while the latents the caller holds stay N(0, I) (priors and latent moves are unchanged).
    s < 1 is the truncation side (Brock et al. 2019); s > 1 widens a class its generator draws too narrowly.
    Training draws N(0, I) whatever it is: the scale is a sampling choice, set when a model is exported
    (``scripts/export_zoo.py --hp latent_scale=[...]``, chosen on the selection split by
    ``scripts/bench_variety.py --target-variety``)."""

    generator: nn.Module
    discriminator: nn.Module
    ema: AveragedModel | None
    device: torch.device

    def build_nets(
        self,
        generator: Any,
        discriminator: Any,
        ema_decay: float,
        n_fixed_noise: int,
        fixed_noise_seed: int,
        latent_scale: Any = 1.0,
    ) -> None:
        """The generator, the discriminator, the weight average (``ema_decay`` > 0) and the fixed noise, in this
        order (the default initialisations draw the same global random numbers for every host class), laid out
        as both hosts' checkpoints hold them; and the sampling temperature (``latent_scale``)."""
        self.generator = build_module(plain(generator))
        self.discriminator = build_module(plain(discriminator))
        self.ema = None
        if ema_decay > 0:
            self.ema = AveragedModel(
                self.generator, multi_avg_fn=ema_with_warmup(ema_decay), use_buffers=True
            )
            self.ema.requires_grad_(False)
        noise = torch.randn(
            n_fixed_noise, self.latent_dim, generator=torch.Generator().manual_seed(fixed_noise_seed)
        )
        self.register_buffer("fixed_noise", noise)
        self.latent_scale = latent_scales(plain(latent_scale), self.num_classes)

    @property
    def latent_dim(self) -> int:
        return int(self.generator.latent_dim)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of the generator's images; rebuilt from the checkpoint's hyperparameters
        (networks from before ``image_size`` existed are the seed's 28x28)."""
        size = int(getattr(self.generator, "image_size", 28))
        return (int(self.generator.channels), size, size)

    def sample_latents(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, device=self.device, generator=generator)

    @property
    def num_classes(self) -> int:
        """Classes the generator is conditioned on (0: unconditional)."""
        return int(getattr(self.generator, "num_classes", 0) or 0)

    def default_labels(self, n: int) -> torch.Tensor | None:
        """A conditional GAN asked for n images with no labels draws the classes in turn (balanced)."""
        return balanced_labels(n, self.num_classes).to(self.device) if self.num_classes else None

    def _check_labels(self, labels: torch.Tensor | None) -> None:
        if self.num_classes and labels is None:
            raise ValueError(
                "a class-conditional GAN needs the labels of its images (only sample() draws them)"
            )
        if not self.num_classes and labels is not None:
            raise ValueError("an unconditional GAN takes no labels")

    @property
    def sampling_generator(self) -> nn.Module:
        """The generator samples come from: the weight average when there is one, else G itself."""
        return self.ema.module if self.ema is not None else self.generator

    def _g(self, z: torch.Tensor, labels: torch.Tensor | None, net: nn.Module | None = None) -> torch.Tensor:
        self._check_labels(labels)
        net = net or self.generator
        return net(z, labels.to(z.device)) if self.num_classes else net(z)

    def _tempered(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """``s * z`` with ``s`` the latent scale of each latent's class (see the class's docstring)."""
        if len(self.latent_scale) == 1:
            return z if self.latent_scale[0] == 1.0 else z * self.latent_scale[0]
        self._check_labels(labels)  # a scale per class needs each latent's class
        scale = torch.tensor(self.latent_scale, device=z.device, dtype=z.dtype)
        return z * scale[labels.to(z.device)].unsqueeze(1)

    def _d(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        self._check_labels(labels)
        return self.discriminator(x, labels.to(x.device)) if self.num_classes else self.discriminator(x)

    @torch.no_grad()
    def sample(
        self,
        n: int | None = None,
        z: torch.Tensor | None = None,
        batch_size: int = 1024,
        labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Images in [-1, 1] from ``z`` (or ``n`` fresh latents), with the generator in eval mode; a
        conditional GAN takes ``labels`` (N,), balanced classes when none are given."""
        if z is None:
            if n is None:
                raise ValueError("sample() needs n or z")
            z = self.sample_latents(n)
        z = z.to(self.device)
        if self.num_classes and labels is None:
            labels = self.default_labels(z.shape[0])
        ys = (
            labels.to(self.device).split(batch_size)
            if labels is not None
            else [None] * len(z.split(batch_size))
        )
        g = self.sampling_generator
        with eval_mode(g):
            return torch.cat(
                [self._g(self._tempered(c, y), y, g) for c, y in zip(z.split(batch_size), ys, strict=True)]
            )

    def eval_samples(self, n: int, seed: int = 0) -> torch.Tensor:
        """n samples from latents drawn under ``seed`` (the process's RNG forked, so training's stream is left
        as it was), the classes in turn for a conditional GAN: what the FID callback scores."""
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            z = torch.randn(n, self.latent_dim, device=self.device)
        return self.sample(z=z)

    def fixed_samples(self) -> torch.Tensor:
        """The fixed-noise batch's images (the same latents every epoch and resume): the grid callback's."""
        return self.sample(z=self.fixed_noise)

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Differentiable generation in eval mode (latent refinement needs gradients through G)."""
        g = self.sampling_generator
        with eval_mode(g):
            return self._g(self._tempered(z, labels), labels, g)

    def discriminate(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Discriminator logits (N,) in eval mode (no dropout); differentiable w.r.t. ``x``."""
        with eval_mode(self.discriminator):
            return self._d(x, labels)


class GANNets(GANSampling, nn.Module):
    """A trained GAN's networks for sampling and scoring only: the generator, the discriminator, the weight
    average and the fixed noise, laid out as in :class:`~artdirector.models.gan.GANModule`'s state dict (which
    loads strictly), with no optimisers, training step or Lightning. ``kind`` is the checkpoint's."""

    kind = "gan"

    def __init__(
        self,
        generator: Any,
        discriminator: Any,
        ema_decay: float = 0.0,
        n_fixed_noise: int = 16,
        fixed_noise_seed: int = 0,
        latent_scale: Any = 1.0,
    ) -> None:
        super().__init__()
        self.build_nets(generator, discriminator, ema_decay, n_fixed_noise, fixed_noise_seed, latent_scale)

    @property
    def device(self) -> torch.device:
        return self.fixed_noise.device

    @classmethod
    def from_loaded(
        cls, ckpt: dict[str, Any], path: str | Path = "<checkpoint>", map_location: str | torch.device = "cpu"
    ) -> GANNets:
        """The networks of a checkpoint already read with ``read_checkpoint``, in eval mode."""
        hp = gan_hyperparameters(ckpt, path)
        keep = (
            "generator",
            "discriminator",
            "ema_decay",
            "n_fixed_noise",
            "fixed_noise_seed",
            "latent_scale",
        )
        nets = cls(**{k: hp[k] for k in keep if k in hp})
        nets.load_state_dict(ckpt["state_dict"])
        return nets.to(map_location).eval()
