"""The super-resolution LightningModule (``model=sr``): an injected net trained to undo the stated degradation
(:func:`artdirector.models.superres.degrade`), exported for :func:`artdirector.models.superres.load_sr`.

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
from artdirector.models.base import build_module, optimizer_per_epoch, plain
from artdirector.models.checkpoint import KIND_KEY, CheckpointError, checkpoint_kind
from artdirector.models.superres import bicubic, degrade


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
        return optimizer_per_epoch(self.parameters(), *self._specs)

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
