"""Loading Lightning checkpoints with errors a person can act on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


class CheckpointError(ValueError):
    """A checkpoint path that is missing, unreadable, or of the wrong kind."""


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a ``.ckpt`` onto the CPU, or raise :class:`CheckpointError` saying what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint not found: {path} (pass ckpt=<path to a .ckpt written by train.py>)"
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises many types for truncated or foreign files
        raise CheckpointError(
            f"checkpoint {path} could not be read ({type(err).__name__}: {err}); "
            "it may be truncated or not a PyTorch file"
        ) from err
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise CheckpointError(
            f"{path} is not a Lightning checkpoint written by artdirector (no state_dict/hyper_parameters)"
        )
    return ckpt


KIND_KEY = "artdirector_kind"


def checkpoint_kind(ckpt: dict[str, Any]) -> str:
    """The kind a module wrote into its checkpoint (``gan``, ``classifier``), or ``unknown``."""
    return str(ckpt.get(KIND_KEY, "unknown"))
