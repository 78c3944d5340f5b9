"""Super-resolution: an upsampling net (ESPCN) trained to undo a stated degradation of real images
(:class:`SRModule`, ``model=sr``, in :mod:`artdirector.models.sr_module`), and what its users need of it.

**The degradation** (what "low resolution" means here): bicubic downsampling with antialiasing by the scale
factor, ``F.interpolate(hr, scale_factor=1/r, mode="bicubic", antialias=True)`` (the "BI" degradation of the
SR literature): 28 -> 7 at x4, 28 -> 14 at x2. The net learns 7 -> 28 (or 14 -> 28) and is then applied to
28 px images to make 112 (56) px ones.

:func:`upscale` is what both directors use: x4 is the shipped x4 net; x2 is the same net followed by 2x2 area
averaging (no x2 net is trained; ``scripts/bench_sr.py --factor 2`` measures that choice against bicubic).

This module imports neither Lightning nor torchmetrics (a run that only upscales loads the shipped net and
these functions);
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from artdirector.models.checkpoint import CheckpointError


def degrade(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """The stated degradation: bicubic downsampling with antialiasing by ``scale``."""
    return F.interpolate(
        hr, scale_factor=1 / scale, mode="bicubic", antialias=True, align_corners=False
    ).clamp(-1, 1)


def bicubic(lr: torch.Tensor, scale: int) -> torch.Tensor:
    return F.interpolate(lr, scale_factor=scale, mode="bicubic", align_corners=False).clamp(-1, 1)


FACTORS = (2, 4)


def check_factor(factor: Any) -> int:
    """``factor`` as an int if it is 2 or 4; otherwise a one-line ``ValueError`` saying what is allowed."""
    if isinstance(factor, bool) or factor not in FACTORS:
        raise ValueError(f"upscale factor must be 2 or 4, got {factor!r}")
    return int(factor)


def area_downsample(images: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Images (..., H, W) -> (..., h, w) = ``size`` by area averaging (each output pixel the mean of a
    (H/h) x (W/w) block), when H and W are integer multiples of h and w; at ``size`` already: unchanged."""
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    big_h, big_w = images.shape[-2:]
    if big_h % h or big_w % w:
        raise ValueError(
            f"area downsampling to {h}x{w} needs a size that is a multiple of it, got {big_h}x{big_w}"
        )
    if (big_h, big_w) == (h, w):
        return images
    return F.avg_pool2d(images, (big_h // h, big_w // w))


@torch.no_grad()
def upscale(
    images: torch.Tensor, factor: int = 4, net: torch.nn.Module | None = None, batch: int = 256
) -> torch.Tensor:
    """Images (N, C, H, W) in [-1, 1] -> (N, C, factor H, factor W) in [-1, 1], on the CPU.

    ``net``: an upsampling net (:func:`load_sr`; None: the shipped x4 ESPCN). x4 is the net; x2 is the x4 net
    followed by 2x2 area averaging (a net of scale r serves every factor that divides r). Deterministic."""
    factor = check_factor(factor)
    net = shipped_sr() if net is None else net
    scale = int(getattr(net, "scale", 4))
    if scale % factor:
        raise ValueError(f"a x{scale} super-resolution net cannot make x{factor} images")
    device = next(net.parameters()).device
    out = torch.cat(
        [net(images[i : i + batch].to(device)).float().cpu() for i in range(0, len(images), batch)]
    )
    if scale != factor:
        out = F.avg_pool2d(out, scale // factor)
    return out.clamp(-1, 1)


SHIPPED = Path(__file__).resolve().parents[1] / "weights" / "sr_x4.pt"
RECIPE = "python scripts/train.py experiment=sr"


def load_sr(path: str | Path | None = None, map_location: str | torch.device = "cpu") -> torch.nn.Module:
    """The upsampling net in a file :class:`SRModule` exported (``None``: the shipped x4 net,
    ``artdirector/weights/sr_x4.pt``), read with ``weights_only=True``, in eval mode. Only an ESPCN is built."""
    from artdirector.models.nets import ESPCN

    path = Path(path) if path is not None else SHIPPED
    if not path.is_file():
        raise CheckpointError(
            f"super-resolution weights not found at {path}: pass a sr.pt written by `{RECIPE}`"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        spec = {k: v for k, v in payload["net"].items() if not str(k).startswith("_")}
        if str(payload["net"].get("_target_", "")).rsplit(".", 1)[-1] != "ESPCN":
            raise CheckpointError(f"{path} names {payload['net'].get('_target_')}, not an ESPCN")
        net = ESPCN(**{**spec, "features": tuple(spec.get("features", (64, 32)))})
        net.load_state_dict(payload["state_dict"])
    except CheckpointError:
        raise
    except Exception as err:
        raise CheckpointError(
            f"{path} could not be read as super-resolution weights ({type(err).__name__})"
        ) from err
    return net.to(map_location).eval()


_SHIPPED_NET: torch.nn.Module | None = None


def shipped_sr() -> torch.nn.Module:
    """The shipped x4 net on the CPU, loaded once per process (frozen, eval mode)."""
    global _SHIPPED_NET
    if _SHIPPED_NET is None:
        _SHIPPED_NET = load_sr().requires_grad_(False)
    return _SHIPPED_NET
