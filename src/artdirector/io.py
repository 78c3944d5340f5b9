"""Atomic file writes: a crash or a full disk never leaves a half-written output behind."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the mode open() would
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes (read in 1 MB chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_json(path: str | Path, data: Any) -> Path:
    return atomic_write(path, lambda p: p.write_text(json.dumps(data, indent=2, default=str) + "\n"))


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda p: p.write_text(text))


def save_grid(images, path: str | Path, nrow: int = 8) -> Path:
    """Save images in [-1, 1] as one PNG grid."""
    from torchvision.utils import save_image

    return atomic_write(
        path,
        lambda p: save_image(
            images.float().cpu(), p, nrow=nrow, normalize=True, value_range=(-1, 1), format="png"
        ),
    )


def load_user_tensor(path: str | Path) -> object:
    """A tensor file a user hands us, loaded safely (``weights_only=True``); an :class:`InputError` (one
    line) when it cannot be read."""
    import torch

    from artdirector.errors import InputError

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise InputError(
            f"input {path} could not be read as a tensor file ({first}); save tensors with torch.save"
        ) from err
