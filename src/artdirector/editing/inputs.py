"""Images a user hands the agents for image-to-image, in whatever form: converted to the creator's shape, with
a note for every conversion (the trace states them).

- a ``.png``/``.jpg``/``.bmp``/``.gif``/``.webp`` file of any size and mode (grey, RGB, RGBA, palette);
- a directory of such files (sorted by name);
- a ``.pt`` tensor of images: (N, C, H, W), (C, H, W) or (H, W), float in [-1, 1] or [0, 1], or uint8;
  at least 8 px on a side (as an image file);
- an earlier agent run's directory (its ``final/images.pt``).

Conversions: to grey by ITU-R 601 luma (RGB), over black (RGBA: alpha-composited), to the creator's size
by area averaging (antialiased) into a centred square (the longer side fits, the shorter is padded with the
background), and to MNIST's polarity (light ink on black) when the border is mostly light.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from artdirector.errors import InputError
from artdirector.io import load_user_tensor

MIN_SIDE = 8  # px: a smaller image cannot hold a drawing worth converting
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def _read_file(path: Path, notes: list[str]) -> torch.Tensor:
    """One image file as (1, C, H, W) floats in [0, 1] (C = 1 grey, 3 RGB; alpha composited over black)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            mode = im.mode
            if mode in ("RGBA", "LA", "P", "PA"):
                notes.append(f"{path.name}: {mode} -> RGB (alpha composited over black)")
                im = im.convert("RGBA")
                bg = Image.new("RGBA", im.size, (0, 0, 0, 255))
                im = Image.alpha_composite(bg, im).convert("RGB")
            elif mode not in ("L", "RGB"):
                notes.append(f"{path.name}: {mode} -> RGB")
                im = im.convert("RGB")
            c = 1 if im.mode == "L" else 3
            t = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8).view(im.height, im.width, c)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as err:
        raise InputError(f"input image {path} could not be decoded; is it a valid image file?") from err
    if min(t.shape[:2]) < MIN_SIDE:
        raise InputError(
            f"input image {path} is {t.shape[1]}x{t.shape[0]}: too small to hold a drawing (at least "
            f"{MIN_SIDE}x{MIN_SIDE} px)"
        )
    return t.permute(2, 0, 1).unsqueeze(0).float() / 255


def _from_tensor(t: object, path: Path) -> tuple[torch.Tensor, str]:
    """A user's tensor as (N, C, H, W) in [0, 1], and how its range was read."""
    if not isinstance(t, torch.Tensor):
        raise InputError(f"{path} holds {type(t).__name__}, not a tensor of images")
    if t.ndim == 2:
        t = t[None, None]
    elif t.ndim == 3:
        t = t[None]
    if t.ndim != 4 or t.shape[1] not in (1, 3, 4) or min(t.shape[-2:]) < MIN_SIDE:
        raise InputError(
            f"{path} holds a tensor of shape {tuple(t.shape)}; expected images (N, C, H, W) with C in 1, 3, 4"
        )
    if t.dtype == torch.uint8:
        return t.float() / 255, "uint8 [0, 255]"
    if not t.is_floating_point():
        raise InputError(f"{path} holds {t.dtype} images; expected floats in [-1, 1] or [0, 1], or uint8")
    t = t.float()
    if not torch.isfinite(t).all():
        raise InputError(f"{path} holds NaN or infinite values")
    lo, hi = float(t.min()), float(t.max())
    if lo >= -1.001 and hi <= 1.001 and lo < -0.001:
        return ((t + 1) / 2).clamp(0, 1), "[-1, 1]"
    if lo >= -0.001 and hi <= 1.001:
        return t.clamp(0, 1), "[0, 1]"
    raise InputError(
        f"{path} holds float images with values in [{lo:.3g}, {hi:.3g}]; expected floats in [-1, 1] or [0, 1] "
        "(or uint8 for 0-255: x.to(torch.uint8), or x / 255)"
    )


def conform(x: torch.Tensor, shape: tuple[int, int, int], source: str, notes: list[str]) -> torch.Tensor:
    """(N, C, H, W) in [0, 1] -> (N, *shape) in [-1, 1], noting each conversion."""
    c, h, w = shape
    if x.shape[1] == 4:  # RGBA tensor: composite over black
        x = x[:, :3] * x[:, 3:]
        notes.append(f"{source}: alpha composited over black")
    if x.shape[1] == 3 and c == 1:
        x = (0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]).clamp(0, 1)
        notes.append(f"{source}: RGB -> grey (ITU-R 601 luma)")
    elif x.shape[1] == 1 and c == 3:
        x = x.expand(-1, 3, -1, -1)
        notes.append(f"{source}: grey -> RGB")
    border = torch.cat([x[..., 0, :], x[..., -1, :], x[..., :, 0], x[..., :, -1]], -1).mean()
    if c == 1 and float(border) > 0.5:
        x = 1 - x
        notes.append(f"{source}: inverted to light ink on black (its border is mostly light)")
    ih, iw = x.shape[-2:]
    if (ih, iw) != (h, w):
        side = max(ih, iw)
        if ih != iw:
            pad = (
                (side - iw) // 2,
                side - iw - (side - iw) // 2,
                (side - ih) // 2,
                side - ih - (side - ih) // 2,
            )
            x = F.pad(x, pad, value=0.0)
        x = F.interpolate(x, size=(h, w), mode="area" if side >= h else "bicubic", align_corners=None)
        x = x.clamp(0, 1)
        notes.append(
            f"{source}: {iw}x{ih} -> {w}x{h} ({'area average' if side >= h else 'bicubic'}"
            + (", padded to a square" if ih != iw else "")
            + ")"
        )
    return x * 2 - 1


def read_images(
    path: str | Path, shape: tuple[int, int, int] = (1, 28, 28)
) -> tuple[torch.Tensor, list[str]]:
    """The images at ``path`` as (N, *shape) in [-1, 1], and the notes on what was converted."""
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"input not found: {path}")
    notes: list[str] = []
    if path.is_dir():
        final = path / "final" / "images.pt"
        if final.is_file():
            t, how = _from_tensor(load_user_tensor(final), final)
            notes.append(f"{final}: images of an earlier run ({how})")
            return conform(t, shape, final.name, notes), notes
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise InputError(
                f"{path} holds no images ({', '.join(IMAGE_SUFFIXES)}) and is not an agent run (final/images.pt)"
            )
        out = [conform(_read_file(p, notes), shape, p.name, notes) for p in files]
        notes.insert(0, f"{len(files)} images from {path}")
        return torch.cat(out), notes
    if path.suffix == ".pt":
        t, how = _from_tensor(load_user_tensor(path), path)
        notes.append(f"{path.name}: {t.shape[0]} images ({how})")
        return conform(t, shape, path.name, notes), notes
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return conform(_read_file(path, notes), shape, path.name, notes), notes
    raise InputError(
        f"input {path}: expected an image file ({', '.join(IMAGE_SUFFIXES)}), a directory of them, a .pt tensor "
        "of images or an earlier run's directory"
    )
