"""A digit/clothing classifier LightningModule; its penultimate layer is the CPU evaluator's feature space."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy

from artdirector.io import atomic_write
from artdirector.models.base import build_module, plain
from artdirector.models.checkpoint import KIND_KEY, CheckpointError, checkpoint_kind


class ClassifierModule(L.LightningModule):
    """Cross-entropy training of an injected classifier net (e.g. :class:`~artdirector.models.nets.LeNet`).

    At the end of fitting, the net's weights and test accuracy go to ``export_path`` (if set): the file
    that ``evaluator=fid_lenet`` loads.
    """

    def __init__(
        self, net: Any, optimizer: Any, scheduler: Any = None, export_path: str | None = None
    ) -> None:
        super().__init__()
        net, optimizer, scheduler = plain(net), plain(optimizer), plain(scheduler)
        self.save_hyperparameters(ignore=[n for n, v in (("net", net),) if not isinstance(v, dict)])
        self.net = build_module(net)
        self._specs = (optimizer, scheduler)
        self.val_acc = MulticlassAccuracy(num_classes=10, average="micro")
        self.export_path = export_path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.val_acc(logits, y)
        self.log("val/loss", F.cross_entropy(logits, y))
        self.log("val/acc", self.val_acc, prog_bar=True)

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
        checkpoint[KIND_KEY] = "classifier"

    @classmethod
    def from_loaded(
        cls, ckpt: dict[str, Any], path: str | Path = "<checkpoint>", map_location: str | torch.device = "cpu"
    ) -> ClassifierModule:
        """Rebuild from a checkpoint read with ``read_checkpoint`` (see ``models.checkpoint.load_module``)."""
        if checkpoint_kind(ckpt) != "classifier":
            raise CheckpointError(f"{path} holds a '{checkpoint_kind(ckpt)}' model, not a classifier")
        if "net" not in ckpt["hyper_parameters"]:
            raise CheckpointError(f"{path} was saved with an injected net and cannot rebuild it")
        model = cls(**ckpt["hyper_parameters"])
        model.load_state_dict(ckpt["state_dict"])
        return model.to(map_location).eval()

    def on_fit_end(self) -> None:
        if not self.export_path or not self.trainer.is_global_zero or self.trainer.fast_dev_run:
            return
        acc = self.trainer.callback_metrics.get("val/acc")
        dm = self.trainer.datamodule
        payload = {
            "state_dict": {k: v.detach().cpu() for k, v in self.net.state_dict().items()},
            "net": self.hparams.get("net"),
            "val_acc": float(acc) if acc is not None else None,
            "dataset": getattr(dm, "hparams", {}).get("data_used") if dm is not None else None,
            "epochs": self.trainer.current_epoch,
        }
        atomic_write(Path(self.export_path), lambda p: torch.save(payload, p))
