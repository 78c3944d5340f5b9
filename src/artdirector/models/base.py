"""What every trainable creator shares: building networks from configs, and exact resume."""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import nn

from artdirector.models.checkpoint import KIND_KEY


def plain(spec: Any) -> Any:
    """A Hydra config (mapping or list) as plain Python containers; anything else as it is."""
    return OmegaConf.to_container(spec, resolve=True) if isinstance(spec, DictConfig | ListConfig) else spec


def build_module(spec: Any) -> nn.Module:
    """A network is either injected as a module or described by a Hydra config with ``_target_``."""
    if isinstance(spec, nn.Module):
        return spec
    if isinstance(spec, Mapping) and "_target_" in spec:
        return instantiate(spec)
    raise TypeError(f"expected an nn.Module or a Hydra config with _target_, got {type(spec).__name__}")


@runtime_checkable
class TrainingSamples(Protocol):
    """What the training callbacks ask of a creator's LightningModule (GAN or diffusion): the samples the
    FID callback scores and the fixed ones the grid callback draws, each the same for the same seed."""

    def eval_samples(self, n: int, seed: int = 0) -> torch.Tensor: ...

    def fixed_samples(self) -> torch.Tensor: ...


def from_spec(spec: Any, *args: Any) -> Any:
    """A Hydra partial config (``_partial_: true``) or a callable, called with ``args``: how every module turns
    its optimiser and scheduler configs into objects (``from_spec(optimizer, params)``)."""
    return instantiate(spec)(*args) if isinstance(spec, Mapping) else spec(*args)


def optimizer_per_epoch(parameters: Any, optimizer: Any, scheduler: Any = None) -> Any:
    """``configure_optimizers``' answer for an optimiser and an optional scheduler stepped once an epoch."""
    opt = from_spec(optimizer, parameters)
    if scheduler is None:
        return opt
    return {"optimizer": opt, "lr_scheduler": {"scheduler": from_spec(scheduler, opt), "interval": "epoch"}}


def balanced_labels(n: int, num_classes: int) -> torch.Tensor:
    """n class labels taking the classes in turn (0, 1, ..., C-1, 0, ...): what a conditional creator
    draws when asked for images without a condition."""
    return torch.arange(n) % num_classes


def ema_with_warmup(decay: float):
    """EMA whose decay ramps up as min(decay, (1 + k) / (10 + k)) after k updates (the warm-up of
    diffusers' EMAModel): a fixed 0.999 would still be about a third initial weights after 1,000 steps,
    which a short run cannot afford. One decay per update (one host sync), applied with a foreach lerp to
    float parameters and buffers; integer buffers (BatchNorm's batch counter) are copied."""

    def avg(averaged: list[torch.Tensor], current: list[torch.Tensor], num_averaged: torch.Tensor) -> None:
        k = float(num_averaged)
        d = min(decay, (1 + k) / (10 + k))
        if averaged and averaged[0].is_floating_point():  # AveragedModel groups tensors by dtype
            torch._foreach_lerp_(averaged, current, 1 - d)
        else:
            torch._foreach_copy_(averaged, current)

    return avg


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN/inf loss; the weights were left as they were before that step."""


def last_good_checkpoint(trainer: Any) -> str:
    """The newest checkpoint the run has written, for error messages."""
    paths = [
        Path(p)
        for cb in (getattr(trainer, "checkpoint_callbacks", None) or [])
        for p in (getattr(cb, "last_model_path", ""), getattr(cb, "best_model_path", ""))
        if p and Path(p).is_file()
    ]
    if not paths:
        return "none written yet (the run failed before its first checkpoint)"
    last = [p for p in paths if p.name == "last.ckpt"]  # written every epoch: the newest state there is
    return str(last[0] if last else max(paths, key=lambda p: p.stat().st_mtime))


def rng_states() -> dict[str, Any]:
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [np_kind, np_keys.tolist(), int(np_pos), int(np_has_gauss), float(np_gauss)],
        "python": [py_version, list(py_state), py_gauss],
    }


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])
    np_kind, np_keys, *np_rest = states["numpy"]
    np.random.set_state((np_kind, np.asarray(np_keys, dtype=np.uint32), *np_rest))
    py_version, py_state, py_gauss = states["python"]
    random.setstate((py_version, tuple(py_state), py_gauss))


class ExactResume:
    """LightningModule mixin: the checkpoint says what it is (``kind``) and carries every RNG state, so a
    resumed run continues with the noise, dropout masks and shuffling it would have drawn (on every rank);
    under data parallelism each rank draws its own (seed + rank)."""

    kind: str = "?"
    _rng_restored: bool = False

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[KIND_KEY] = self.kind
        # plain tensors, ints and lists only, so that weights_only=True loading accepts them
        states = rng_states()
        checkpoint["rng_states"] = states
        trainer = self._trainer
        if trainer is not None and trainer.world_size > 1 and torch.distributed.is_initialized():
            per_rank: list[Any] = [None] * trainer.world_size
            torch.distributed.all_gather_object(per_rank, states)  # every rank runs this hook
            checkpoint["rng_states_per_rank"] = per_rank

    def on_fit_start(self) -> None:
        """Lightning seeds every rank alike (``PL_GLOBAL_SEED``, which its DistributedSampler also uses, so
        it stays as it is); a resumed run keeps its restored states."""
        trainer = self._trainer
        seed = os.environ.get("PL_GLOBAL_SEED")
        if trainer is None or trainer.world_size == 1 or seed is None or self._rng_restored:
            return
        rank_seed = int(seed) + trainer.global_rank
        torch.manual_seed(rank_seed)
        np.random.seed(rank_seed % 2**32)
        random.seed(rank_seed)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        states = checkpoint.get("rng_states")
        per_rank = checkpoint.get("rng_states_per_rank")
        rank = self._trainer.global_rank if self._trainer is not None else 0
        if per_rank and rank < len(per_rank):
            states = per_rank[rank]
        if states:
            set_rng_states(states)
            self._rng_restored = True
