"""What every entry point shares: where the configs are, which versions ran, which device to use."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import TYPE_CHECKING

from artdirector import __version__

if TYPE_CHECKING:
    import torch

# torch is imported where it is used, not with this module: every entry point imports this one first, and
# `--help` or a mistyped command line should not wait for torch (about 1.2 s of a quiet CPU)

# Shipped inside the package (``configs/`` at the top of the checkout is a link to it), so that a plain
# ``pip install`` finds them from any directory.
CONFIG_DIR = str(Path(__file__).resolve().parent / "configs")
# the shipped model zoo: compact weights, their cards and recipes (docs/zoo.md)
ZOO_DIR = Path(__file__).resolve().parent / "zoo"


def versions() -> dict[str, str]:
    import lightning
    import torch
    import torchmetrics
    import torchvision

    return {
        "artdirector": __version__,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "lightning": lightning.__version__,
        "torchmetrics": torchmetrics.__version__,
        "python": platform.python_version(),
    }


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA if available else CPU; a CUDA request without CUDA is a clear error."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={name} but CUDA is not available; use device=cpu or device=auto")
    return torch.device(name)
