"""A class-conditional diffusion model (Ho et al. 2020) with classifier-free guidance (Ho & Salimans 2022).

The backbone is any network ``(x_t, t, class_labels) -> eps``: diffusers' ``UNet2DModel`` (``model=ddpm``) or
``DiTTransformer2DModel`` (``model=dit``, Peebles & Xie 2023, adaLN-Zero), built from their config so nothing
is downloaded. The noise schedule and the samplers are diffusers' schedulers: the training schedule is a
``DDPMScheduler``; sampling uses DDPM (ancestral), DDIM (Song et al. 2021, eta = 0) or DPM-Solver++ (Lu et
al. 2022) built from the same config, with the number of steps and the guidance scale as options.

Labels are replaced by the null class (index ``num_classes``) with probability ``p_uncond`` during training,
so one network learns both the conditional and the unconditional noise prediction; guidance scale ``w``
samples with ``eps_u + w (eps_c - eps_u)`` (``w = 1``: plain conditional; ``w = 0``: unconditional).
Sampling uses an exponential moving average of the weights (torch's ``AveragedModel``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler
from torch import nn
from torch.optim.swa_utils import AveragedModel

from artdirector.errors import ConfigError
from artdirector.models.base import (
    ExactResume,
    NonFiniteLossError,
    balanced_labels,
    build_module,
    ema_with_warmup,
    from_spec,
    last_good_checkpoint,
    plain,
)
from artdirector.models.checkpoint import CheckpointError, checkpoint_kind, read_checkpoint

SAMPLERS = ("ddpm", "ddim", "dpm++")


def make_scheduler(sampler: str, config: Mapping[str, Any]):
    """A diffusers scheduler for ``sampler``, from the training schedule's config."""
    # "trailing" spacing starts at t = T - 1 (pure noise, what the sampler is given) at any step count;
    # diffusers' default "leading" would start 25 steps at t = 960, where the model expects some image
    if sampler == "ddpm":
        return DDPMScheduler.from_config(config, timestep_spacing="trailing")
    if sampler == "ddim":
        return DDIMScheduler.from_config(config, timestep_spacing="trailing")
    if sampler == "dpm++":
        # lambda_min_clipped: the cosine schedule's last steps have log-SNR near -inf, where the solver's
        # data prediction blows up; diffusers documents -5.1 as "critical for the cosine schedule". Without it
        # 25 steps gave noise where DDPM ancestral steps gave digits (same weights; docs/zoo.md)
        clip = -5.1 if config.get("beta_schedule") == "squaredcos_cap_v2" else -float("inf")
        return DPMSolverMultistepScheduler.from_config(
            config, algorithm_type="dpmsolver++", solver_order=2, lambda_min_clipped=clip
        )
    raise ConfigError(f"sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")


def check_backbone_shape(backbone: Mapping[str, Any], image_shape: list[int]) -> None:
    """A :class:`ConfigError` (one line, naming the key) unless a backbone config fits ``image_shape``:
    square images, ``sample_size`` and the channels equal to the data's, a DiT patch size that divides the
    size, and a UNet whose downsamplings divide it."""
    if len(image_shape) != 3 or image_shape[1] != image_shape[2] or min(image_shape) < 1:
        raise ConfigError(f"model.image_shape must be (channels, size, size), got {image_shape}")
    channels, size = image_shape[0], image_shape[1]
    for key, want in (("sample_size", size), ("in_channels", channels), ("out_channels", channels)):
        got = backbone.get(key)
        values = list(got) if isinstance(got, list | tuple) else [got]
        if got is not None and any(int(v) != want for v in values):
            raise ConfigError(
                f"model.backbone.{key}={got} does not fit model.image_shape={image_shape}; it must be {want}"
            )
    patch = backbone.get("patch_size")
    if patch is not None and size % int(patch):
        raise ConfigError(
            f"model.backbone.patch_size={patch} must divide the image size {size} (data.image_size); "
            f"choose a patch size that divides {size}"
        )
    blocks = backbone.get("block_out_channels")
    if blocks is not None and size % 2 ** (len(blocks) - 1):
        raise ConfigError(
            f"a UNet with {len(blocks)} levels halves the image {len(blocks) - 1} times, so the image size "
            f"must be a multiple of {2 ** (len(blocks) - 1)}, got {size} (data.image_size)"
        )


class DiffusionModule(ExactResume, L.LightningModule):
    """eps-prediction diffusion over images in [-1, 1], class-conditional with a null class for guidance.

    Args:
        backbone: a module or a Hydra config (``_target_``) of a diffusers ``UNet2DModel`` (with
            ``num_class_embeds = num_classes + 1``) or ``DiTTransformer2DModel`` (``num_embeds_ada_norm =
            num_classes``); called as ``backbone(x, t, class_labels=y).sample``.
        optimizer: a partial Hydra config (``_partial_: true``) of a torch optimiser.
        num_classes: conditional classes; label ``num_classes`` is the null (unconditional) class.
        image_shape: (channels, height, width).
        num_train_timesteps, beta_schedule: the forward process (``DDPMScheduler``'s options).
        p_uncond: probability of training on the null label.
        ema_decay: decay of the weight average used for sampling (0 disables it).
        sampler, steps, guidance: the default sampling options (each can be passed to :meth:`sample`).
        warmup_steps: linear learning-rate warm-up.
        snr_gamma: Min-SNR-gamma loss weighting (Hang et al. 2023): each sample's noise loss is weighted by
            ``min(SNR(t), gamma) / SNR(t)``, so the near-clean timesteps, whose targets are easy and whose
            gradients conflict with the rest, stop dominating; the paper reports about 3x faster convergence
            with gamma = 5. ``None``: the plain mean squared error.
        sampling_precision: ``"fp32"``, or ``"bf16"`` to run the network under bfloat16 autocast while
            sampling (about twice as fast on a CPU with bf16 units; the solver's arithmetic stays fp32).
    """

    kind = "diffusion"

    def __init__(
        self,
        backbone: Any,
        optimizer: Any,
        num_classes: int = 10,
        image_shape: tuple[int, int, int] | list[int] = (1, 28, 28),
        num_train_timesteps: int = 1000,
        beta_schedule: str = "squaredcos_cap_v2",
        p_uncond: float = 0.1,
        ema_decay: float = 0.999,
        sampler: str = "dpm++",
        steps: int = 25,
        guidance: float = 2.0,
        warmup_steps: int = 500,
        snr_gamma: float | None = None,
        sampling_precision: str = "fp32",
    ) -> None:
        super().__init__()
        if sampling_precision not in ("fp32", "bf16"):
            raise ConfigError(f"model.sampling_precision must be fp32 or bf16, got {sampling_precision!r}")
        if snr_gamma is not None and not snr_gamma > 0:
            raise ConfigError(f"model.snr_gamma must be positive or null, got {snr_gamma}")
        if sampler not in SAMPLERS:
            raise ConfigError(f"model.sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
        if not 0 <= p_uncond < 1:
            raise ConfigError(f"model.p_uncond must be in [0, 1), got {p_uncond}")
        backbone, optimizer = plain(backbone), plain(optimizer)
        image_shape = [int(v) for v in image_shape]  # a plain list in the checkpoint, not a ListConfig
        if isinstance(backbone, Mapping):
            check_backbone_shape(backbone, image_shape)
        injected = [
            n for n, v in (("backbone", backbone), ("optimizer", optimizer)) if not isinstance(v, Mapping)
        ]
        self.save_hyperparameters(ignore=injected)
        self.backbone = build_module(backbone)
        self._no_dropout_in_label_embedder()  # before the EMA copy, so that the copy has it off too
        self.ema = (
            AveragedModel(self.backbone, multi_avg_fn=ema_with_warmup(ema_decay), use_buffers=True)
            if ema_decay > 0
            else None
        )
        if self.ema is not None:
            self.ema.requires_grad_(False)
        self._optimizer_spec = optimizer
        self.num_classes = num_classes
        self.image_shape = tuple(int(s) for s in image_shape)
        self.p_uncond = p_uncond
        self.defaults = {"sampler": sampler, "steps": steps, "guidance": guidance}
        self.warmup_steps = warmup_steps
        self.snr_gamma = snr_gamma
        self.sampling_precision = sampling_precision
        self.train_scheduler = DDPMScheduler(
            num_train_timesteps=num_train_timesteps, beta_schedule=beta_schedule, clip_sample=True
        )

    def _no_dropout_in_label_embedder(self) -> None:
        """DiT's label embedder drops labels itself in train mode; the null label is ours to draw here (the
        same p for every backbone), so its own dropout is switched off. Its null row stays in the table."""
        for m in self.backbone.modules():
            if type(m).__name__ == "LabelEmbedding":
                m.dropout_prob = 0.0

    # ---- the network -----------------------------------------------------------------------------
    @property
    def null_label(self) -> int:
        return self.num_classes

    def eps(
        self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor, net: nn.Module | None = None
    ) -> torch.Tensor:
        net = net or self.backbone
        return net(x, t, class_labels=y).sample

    # ---- training --------------------------------------------------------------------------------
    def configure_optimizers(self):
        opt = from_spec(self._optimizer_spec, self.backbone.parameters())
        warm = max(1, self.warmup_steps)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / warm))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch[0], batch[1]
        drop = torch.rand(y.shape[0], device=y.device) < self.p_uncond
        y = torch.where(drop, torch.full_like(y, self.null_label), y)
        noise = torch.randn_like(x)
        t = torch.randint(0, self.train_scheduler.config.num_train_timesteps, (x.shape[0],), device=x.device)
        x_t = self.train_scheduler.add_noise(x, noise, t)
        per_sample = F.mse_loss(self.eps(x_t, t, y).float(), noise.float(), reduction="none").mean((1, 2, 3))
        loss = (per_sample * self.loss_weights(t)).mean()
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"train/loss became {loss.item()} at step {self.global_step}; last good checkpoint: "
                f"{last_good_checkpoint(self._trainer)}"
            )
        self.log(
            "train/loss",
            loss,
            prog_bar=True,
            on_step=True,
            on_epoch=True,
            batch_size=x.shape[0],
            sync_dist=self._trainer is not None and self.trainer.world_size > 1,
        )
        return loss

    def loss_weights(self, t: torch.Tensor) -> torch.Tensor:
        """Per-sample weights of the noise loss at timesteps ``t``: ones, or Min-SNR-gamma's
        ``min(SNR, gamma) / SNR`` with ``SNR = abar / (1 - abar)``."""
        if self.snr_gamma is None:
            return torch.ones(t.shape, device=t.device)
        abar = self.train_scheduler.alphas_cumprod.to(t.device)[t].float()
        snr = abar / (1 - abar)
        return snr.clamp(max=self.snr_gamma) / snr

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.ema is not None:
            self.ema.update_parameters(self.backbone)

    # ---- sampling -------------------------------------------------------------------------------
    def guided_eps(
        self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor, guidance: float, net: nn.Module | None = None
    ) -> torch.Tensor:
        """Classifier-free guidance: eps_u + w (eps_c - eps_u), conditional and unconditional in one batch of
        2N; rows that ask for the null class get eps_u. ``guidance == 1``: one plain conditional pass."""
        if guidance == 1.0:
            return self.eps(x, t, y, net)
        null = torch.full_like(y, self.null_label)
        e_c, e_u = self.eps(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, null]), net).chunk(2)
        e = e_u + guidance * (e_c - e_u)
        return torch.where((y == self.null_label).view(-1, 1, 1, 1), e_u, e)

    def _sampling(self, sampler: str | None, steps: int | None, guidance: float | None):
        """(sampler, steps, guidance) with the model's defaults for those not given."""
        return (
            sampler or self.defaults["sampler"],
            int(steps or self.defaults["steps"]),
            float(self.defaults["guidance"] if guidance is None else guidance),
        )

    def sampling_net(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self.backbone

    @torch.no_grad()
    def sample(
        self,
        n: int | None = None,
        labels: torch.Tensor | None = None,
        seed: int = 0,
        sampler: str | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        noise: torch.Tensor | None = None,
        batch_size: int = 500,
        x0_grad: Callable[[torch.Tensor, slice], torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Images in [-1, 1]: ``labels`` (N,) of classes, or ``n`` unconditional samples (null label).

        Everything random comes from ``seed`` (the initial noise, or ``noise`` when given, and the DDPM
        sampler's per-step noise), so the same call gives the same images.

        ``x0_grad(x0, rows)``: guidance by a differentiable score of the predicted clean image (attribute
        guidance, :mod:`artdirector.editing.style`): at each step the noise prediction becomes
        ``eps + sqrt(1 - abar_t) * x0_grad(x0_hat, rows)`` for the batch's images ``rows`` of the whole call."""
        sampler, steps, guidance = self._sampling(sampler, steps, guidance)
        if labels is None:
            if n is None:
                raise ValueError("sample() needs n or labels")
            labels = torch.full((n,), self.null_label, dtype=torch.long)
        labels = labels.long().cpu()
        if steps < 1:
            raise ConfigError(f"steps must be at least 1, got {steps}")
        gen = torch.Generator().manual_seed(seed)
        if noise is None:
            noise = torch.randn(labels.shape[0], *self.image_shape, generator=gen)
        out = []
        for i in range(0, labels.shape[0], batch_size):
            rows = slice(i, min(i + batch_size, labels.shape[0]))
            out.append(
                self._sample_batch(
                    noise[rows], labels[rows], gen, sampler, steps, guidance, x0_grad=x0_grad, rows=rows
                )
            )
        return torch.cat(out)

    @torch.no_grad()
    def sdedit(
        self,
        images: torch.Tensor,
        labels: torch.Tensor | None = None,
        strength: float = 0.5,
        seed: int = 0,
        sampler: str | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        batch_size: int = 500,
    ) -> torch.Tensor:
        """SDEdit (Meng et al. 2022): each image is noised to the step a fraction ``strength`` of the way
        from the clean end of the ``steps``-step schedule, ``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps``,
        and denoised from there under ``labels`` (the class to make it: another class translates it;
        the null class, ``labels=None``, keeps it unconditional). ``strength`` 0 returns the input; 1 ignores it
        (a fresh sample). The noise and the sampler's step noise come from ``seed``."""
        if not 0.0 <= float(strength) <= 1.0:
            raise ConfigError(f"SDEdit strength must be in [0, 1], got {strength}")
        sampler, steps, guidance = self._sampling(sampler, steps, guidance)
        images = images.float().cpu()
        if labels is None:
            labels = torch.full((images.shape[0],), self.null_label, dtype=torch.long)
        labels = labels.long().cpu()
        skip = steps - round(float(strength) * steps)
        if skip >= steps:
            return images.clamp(-1, 1)
        gen = torch.Generator().manual_seed(seed)
        noise = torch.randn(images.shape, generator=gen)
        out = []
        for i in range(0, images.shape[0], batch_size):
            rows = slice(i, min(i + batch_size, images.shape[0]))
            out.append(
                self._sample_batch(
                    noise[rows], labels[rows], gen, sampler, steps, guidance, start=(skip, images[rows])
                )
            )
        return torch.cat(out)

    def _sample_batch(
        self, x, y, gen, sampler, steps, guidance, x0_grad=None, rows=None, start=None
    ) -> torch.Tensor:
        net = self.sampling_net()
        was = net.training
        net.eval()
        sched = make_scheduler(sampler, self.train_scheduler.config)
        sched.set_timesteps(steps)
        timesteps = sched.timesteps
        abar = self.train_scheduler.alphas_cumprod.to(self.device)
        y = y.to(self.device)
        if start is None:
            x = x.to(self.device) * sched.init_noise_sigma
        else:  # SDEdit: the input noised to the first timestep run (VP: the same x_t for every sampler)
            skip, x0 = start
            timesteps = timesteps[skip:]
            if hasattr(sched, "set_begin_index"):
                sched.set_begin_index(skip)
            a = abar[int(timesteps[0])]
            x = a.sqrt() * x0.to(self.device) + (1 - a).sqrt() * x.to(self.device)
        guided = guidance != 1.0 and bool((y != self.null_label).any())
        try:
            for t in timesteps:
                tt = torch.full((x.shape[0],), int(t), device=self.device, dtype=torch.long)
                xin = sched.scale_model_input(x, t)
                with torch.autocast(
                    x.device.type, dtype=torch.bfloat16, enabled=self.sampling_precision == "bf16"
                ):
                    e = self.guided_eps(xin, tt, y, guidance if guided else 1.0, net).float()
                if x0_grad is not None:
                    a = abar[int(t)]
                    x0 = ((x.float() - (1 - a).sqrt() * e) / a.sqrt()).clamp(-1, 1)
                    e = e + (1 - a).sqrt() * x0_grad(x0, rows).to(e)
                # stochastic samplers (DDPM) draw their step noise from `gen` (CPU), so replays are exact
                x = sched.step(e, t, x.float(), generator=gen).prev_sample
        finally:
            net.train(was)
        return x.clamp(-1, 1).cpu()

    def _callback_steps(self) -> int | None:
        """A fast_dev_run only checks the wiring: its callbacks sample with 2 steps."""
        return 2 if self._trainer is not None and self.trainer.fast_dev_run else None

    def eval_samples(self, n: int, seed: int = 0) -> torch.Tensor:
        """n samples with the classes in turn, with the default sampler (what the FID callback scores)."""
        return self.sample(
            labels=balanced_labels(n, self.num_classes), seed=seed, steps=self._callback_steps()
        )

    def fixed_samples(self) -> torch.Tensor:
        """The same 16 samples (fixed noise, classes 0-9 then 0-5) every epoch, for the grid callback."""
        return self.sample(labels=balanced_labels(16, self.num_classes), seed=0, steps=self._callback_steps())

    # ---- checkpoints -----------------------------------------------------------------------------
    @classmethod
    def from_checkpoint(cls, path: str | Path, map_location: str | torch.device = "cpu") -> DiffusionModule:
        return cls.from_loaded(read_checkpoint(path), path, map_location)

    @classmethod
    def from_loaded(
        cls, ckpt: dict[str, Any], path: str | Path = "<checkpoint>", map_location="cpu"
    ) -> DiffusionModule:
        kind = checkpoint_kind(ckpt)
        if kind != cls.kind:
            raise CheckpointError(f"{path} holds a '{kind}' model, not a diffusion model")
        hp = dict(ckpt["hyper_parameters"])
        if "backbone" not in hp:
            raise CheckpointError(f"{path} was saved with an injected backbone and cannot rebuild it")
        model = cls(**hp)
        model.load_state_dict(ckpt["state_dict"])
        return model.to(map_location).eval()
