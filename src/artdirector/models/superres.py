"""Super-resolution as a LightningModule (``model=sr``): an injected upsampling net (ESPCN) trained to undo a
stated degradation of real images.

**The degradation** (what "low resolution" means here): bicubic downsampling with antialiasing by the scale
factor, ``F.interpolate(hr, scale_factor=1/r, mode="bicubic", antialias=True)`` (the "BI" degradation of the
SR literature): 28 -> 7 at x4, 28 -> 14 at x2. The net learns 7 -> 28 (or 14 -> 28) and is then applied to
28 px images to make 112 (56) px ones.

:func:`upscale` is what both directors use: x4 is the shipped x4 net; x2 is the same net followed by 2x2 area
averaging (no x2 net is trained; ``scripts/bench_sr.py --factor 2`` measures that choice against bicubic).

Validation (selection split) and test (report split) log PSNR and SSIM (torchmetrics; images in [-1, 1], so
``data_range=2``; PSNR is the mean of per-image PSNRs, as SR papers report it) of the net and of bicubic
upsampling of the same inputs, so the gain is measured on the same images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

from artdirector.io import atomic_write
from artdirector.models.base import build_module, plain
from artdirector.models.checkpoint import KIND_KEY, CheckpointError, checkpoint_kind


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


class SRModule(L.LightningModule):
    kind = "sr"

    def __init__(
        self, net: Any, optimizer: Any, scheduler: Any = None, export_path: str | None = None
    ) -> None:
        super().__init__()
        net, optimizer, scheduler = plain(net), plain(optimizer), plain(scheduler)
        self.save_hyperparameters(ignore=[n for n, v in (("net", net),) if not isinstance(v, dict)])
        self.net = build_module(net)
        self.scale = int(self.net.scale)
        self._specs = (optimizer, scheduler)
        self.export_path = export_path
        self._metrics = torch.nn.ModuleDict(
            {
                f"{stage}_{what}_{who}": (
                    PeakSignalNoiseRatio(data_range=2.0, dim=(1, 2, 3))
                    if what == "psnr"
                    else StructuralSimilarityIndexMeasure(data_range=2.0)
                )
                for stage in ("val", "test")
                for what in ("psnr", "ssim")
                for who in ("sr", "bicubic")
            }
        )

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return self.net(lr)

    @torch.no_grad()
    def upscale(self, images: torch.Tensor, batch: int = 256) -> torch.Tensor:
        """Images (N, C, H, W) in [-1, 1] -> (N, C, rH, rW), in eval mode, on the module's device."""
        was = self.training
        self.eval()
        out = [self(images[i : i + batch].to(self.device)).cpu() for i in range(0, len(images), batch)]
        self.train(was)
        return torch.cat(out)

    def training_step(self, batch, batch_idx):
        hr = batch[0]
        loss = F.l1_loss(self(degrade(hr, self.scale)), hr)
        self.log("train/l1", loss, prog_bar=True)
        return loss

    def _evaluate(self, batch, stage: str) -> None:
        hr = batch[0]
        lr = degrade(hr, self.scale)
        for who, out in (("sr", self(lr)), ("bicubic", bicubic(lr, self.scale))):
            for what in ("psnr", "ssim"):
                m = self._metrics[f"{stage}_{what}_{who}"]
                m(out, hr)
                self.log(f"{stage}/{what}" + ("" if who == "sr" else "_bicubic"), m, prog_bar=what == "psnr")

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, "val")

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, "test")

    def configure_optimizers(self):
        from hydra.utils import instantiate

        opt_spec, sched_spec = self._specs
        opt = (
            instantiate(opt_spec)(self.parameters())
            if isinstance(opt_spec, dict)
            else opt_spec(self.parameters())
        )
        if sched_spec is None:
            return opt
        sched = instantiate(sched_spec)(opt) if isinstance(sched_spec, dict) else sched_spec(opt)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[KIND_KEY] = self.kind

    @classmethod
    def from_loaded(
        cls, ckpt: dict[str, Any], path: str | Path = "<checkpoint>", map_location: str | torch.device = "cpu"
    ) -> SRModule:
        if checkpoint_kind(ckpt) != cls.kind:
            raise CheckpointError(
                f"{path} holds a '{checkpoint_kind(ckpt)}' model, not a super-resolution net"
            )
        if "net" not in ckpt["hyper_parameters"]:
            raise CheckpointError(f"{path} was saved with an injected net and cannot rebuild it")
        model = cls(**ckpt["hyper_parameters"])
        model.load_state_dict(ckpt["state_dict"])
        return model.to(map_location).eval()

    def on_fit_end(self) -> None:
        if not self.export_path or not self.trainer.is_global_zero or self.trainer.fast_dev_run:
            return
        m = self.trainer.callback_metrics
        payload = {
            "state_dict": {k: v.detach().cpu() for k, v in self.net.state_dict().items()},
            "net": self.hparams.get("net"),
            "scale": self.scale,
            "degradation": "bicubic downsampling with antialias (artdirector.models.superres.degrade)",
            "selection": {k: float(v) for k, v in m.items() if k.startswith("val/")},
            "epochs": self.trainer.current_epoch,
        }
        atomic_write(Path(self.export_path), lambda p: torch.save(payload, p))


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
