"""Safe loading of every model kind: one reader, one allow-list, one map from kind to class.

A ``.ckpt`` is read with ``torch.load(weights_only=True)``: tensors, numbers, strings and plain containers,
never pickled code. What its hyperparameters name to build (Hydra ``_target_``s) is checked against
:data:`ALLOWED_TARGETS` before anything is instantiated, and its ``artdirector_kind`` says which class
rebuilds it (:func:`load_module`). Anything else is a :class:`CheckpointError` that says why.
"""

from __future__ import annotations

import importlib
import pickle
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from artdirector.errors import UserError


class CheckpointError(UserError, ValueError):
    """A checkpoint path that is missing, unreadable, unsafe, or of the wrong kind."""


KIND_KEY = "artdirector_kind"

# kind -> the class whose ``from_loaded(ckpt, path, map_location)`` rebuilds it
KINDS: dict[str, str] = {
    "gan": "artdirector.models.gan.GANModule",
    "classifier": "artdirector.models.classifier.ClassifierModule",
    "diffusion": "artdirector.models.diffusion.DiffusionModule",
    "sr": "artdirector.models.sr_module.SRModule",
}

# what a checkpoint's hyperparameters may name to instantiate (module prefixes)
ALLOWED_TARGETS: tuple[str, ...] = (
    "artdirector.",
    "torch.optim.",  # optimisers and torch.optim.lr_scheduler
    "torch.nn.",
    "diffusers.",  # schedulers and denoisers built from config
)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a ``.ckpt`` onto the CPU with ``weights_only=True`` and check what it names to build, or raise
    :class:`CheckpointError` saying what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint not found: {path} (pass ckpt=<path to a .ckpt written by train.py>)"
        )
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes); it was not written completely")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        detail = next((ln.strip() for ln in str(err).splitlines() if "WeightsUnpickler error" in ln), "")
        if "unsupported global" in detail.lower():  # a class or function to import and call: code
            raise CheckpointError(
                f"refused to load {path}: it holds pickled Python objects, not only weights and plain "
                "data, and loading them could run code. Only load checkpoints from sources you trust; "
                "artdirector's own checkpoints never need this"
            ) from err
        raise CheckpointError(
            f"checkpoint {path} could not be read ({detail or type(err).__name__}); it may be truncated or "
            "not a PyTorch file"
        ) from err
    except Exception as err:  # torch raises many types for truncated or foreign files
        raise CheckpointError(
            f"checkpoint {path} could not be read ({type(err).__name__}: {err}); "
            "it may be truncated or not a PyTorch file"
        ) from err
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise CheckpointError(
            f"{path} is not a Lightning checkpoint written by artdirector (no state_dict/hyper_parameters)"
        )
    check_targets(ckpt["hyper_parameters"], path)
    return ckpt


def _targets(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "_target_":
                yield str(value)
            else:
                yield from _targets(value)
    elif isinstance(node, list | tuple):
        for value in node:
            yield from _targets(value)


def check_targets(hyper_parameters: Any, path: str | Path = "<checkpoint>") -> None:
    """Refuse hyperparameters that name anything outside :data:`ALLOWED_TARGETS` to instantiate."""
    foreign = sorted({t for t in _targets(hyper_parameters) if not t.startswith(ALLOWED_TARGETS)})
    if foreign:
        allowed = ", ".join(f"{p}*" for p in ALLOWED_TARGETS)
        raise CheckpointError(
            f"refused to load {path}: its hyperparameters name {', '.join(foreign)} to build, outside the "
            f"allowed {allowed}"
        )


def checkpoint_kind(ckpt: dict[str, Any]) -> str:
    """The kind a module wrote into its checkpoint (``gan``, ``classifier``), or ``unknown``."""
    return str(ckpt.get(KIND_KEY, "unknown"))


def module_class(kind: str) -> type:
    if kind not in KINDS:
        raise CheckpointError(
            f"checkpoint kind {kind!r} is not one artdirector can rebuild (known: {', '.join(KINDS)})"
        )
    module, _, name = KINDS[kind].rpartition(".")
    return getattr(importlib.import_module(module), name)


def read_kind(path: str | Path, kinds: Sequence[str] | None = None) -> tuple[dict[str, Any], str]:
    """A checkpoint read with :func:`read_checkpoint` and the kind it holds, refused unless one of ``kinds``."""
    ckpt = read_checkpoint(path)
    kind = checkpoint_kind(ckpt)
    if kinds is not None and kind not in kinds:
        raise CheckpointError(
            f"{path} holds a '{kind}' model; this needs {' or '.join(repr(k) for k in kinds)}"
        )
    return ckpt, kind


def load_module(
    path: str | Path, kinds: Sequence[str] | None = None, map_location: str | torch.device = "cpu"
) -> Any:
    """Rebuild the model a checkpoint holds, whatever its kind (or one of ``kinds``), in eval mode."""
    ckpt, kind = read_kind(path, kinds)
    return module_class(kind).from_loaded(ckpt, path, map_location)
