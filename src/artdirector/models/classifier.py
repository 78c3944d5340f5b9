"""A digit/clothing classifier LightningModule; its penultimate layer is the CPU evaluator's feature space."""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy

from artdirector.io import atomic_write
from artdirector.models.base import build_module, optimizer_per_epoch, plain
from artdirector.models.checkpoint import KIND_KEY, CheckpointError, checkpoint_kind

log = logging.getLogger(__name__)


class ClassifierModule(L.LightningModule):
    """Cross-entropy training of an injected classifier net (e.g. :class:`~artdirector.models.nets.LeNet`).

    Lightning's validation loop runs on the data module's selection split (held out from the training
    images), and the weights of the epoch with the best selection accuracy are kept. At the end of fitting
    those weights go to ``export_path`` (if set), the file that ``evaluator=fid_lenet`` loads, with their
    selection accuracy, the report (test) split's accuracy (measured once on the chosen weights, stated and
    never used to choose) and every split's n and content hash.
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
        # the selection-chosen weights: (accuracy, epoch, CPU copy of the net's state)
        self._correct = self._seen = 0
        self.best: tuple[float, int, dict[str, torch.Tensor]] | None = None

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
        self._correct += int((logits.argmax(-1) == y).sum())
        self._seen += int(y.numel())

    def on_validation_epoch_start(self) -> None:
        self._correct = self._seen = 0

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking or not self._seen:
            return
        acc = self._correct / self._seen
        if self.best is None or acc > self.best[0]:  # ties keep the earlier epoch
            state = {k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()}
            self.best = (acc, self.current_epoch + 1, state)

    def configure_optimizers(self):
        return optimizer_per_epoch(self.parameters(), *self._specs)

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

    @torch.no_grad()
    def _accuracy(self, state: dict[str, torch.Tensor], loader) -> float:
        """Accuracy of the net with ``state`` on a loader, through a copy (the module's own net is untouched)."""
        net = copy.deepcopy(self.net)
        net.load_state_dict(state)
        net.eval()
        correct = seen = 0
        for x, y in loader:
            correct += int((net(x.to(self.device)).argmax(-1).cpu() == y).sum())
            seen += int(y.numel())
        return correct / seen if seen else float("nan")

    def on_fit_end(self) -> None:
        if not self.export_path or not self.trainer.is_global_zero or self.trainer.fast_dev_run:
            return
        if self.best is None:
            log.warning(
                "no selection accuracy was measured (validation off?): %s not written, since no weights were "
                "chosen on the selection split",
                self.export_path,
            )
            return
        acc, epoch, state = self.best
        dm = self.trainer.datamodule
        payload = {
            "state_dict": state,
            "net": self.hparams.get("net"),
            "dataset": getattr(dm, "hparams", {}).get("data_used") if dm is not None else None,
            "chosen_on": "selection",
            "selection_acc": acc,
            "selected_epoch": epoch,
            "epochs": self.trainer.current_epoch,
            "report_acc": self._accuracy(state, dm.test_dataloader()) if dm is not None else None,
            "splits": dm.split_info() if hasattr(dm, "split_info") else None,
        }
        log.info(
            "feature net: epoch %d of %d chosen on selection (accuracy %.4f), report accuracy %.4f -> %s",
            epoch,
            payload["epochs"],
            acc,
            payload["report_acc"] if payload["report_acc"] is not None else float("nan"),
            self.export_path,
        )
        atomic_write(Path(self.export_path), lambda p: torch.save(payload, p))
