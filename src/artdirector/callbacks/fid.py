"""Periodic FID (and KID, precision, recall) of the generator during training."""

from __future__ import annotations

import logging

import lightning as L
import torch

from artdirector.errors import InputError
from artdirector.evaluation import Evaluator
from artdirector.models.base import TrainingSamples

log = logging.getLogger(__name__)


class FIDCallback(L.Callback):
    """Every ``every_n_epochs``, sample ``n_samples`` images from fixed latents and log ``val/fid``,
    ``val/kid``, ``val/precision``, ``val/recall`` against the data module's ``split`` (reference features
    cached on disk). Runs inside ``torch.random.fork_rng`` so training's random stream is untouched and
    ``ckpt_path=`` resumes stay exact. A ``ModelCheckpoint(monitor="val/fid")`` keeps the best model.
    Under DDP only rank 0 samples and scores; the numbers are broadcast so that every rank logs (and every
    rank's checkpoint callback sees) the same values."""

    def __init__(
        self,
        evaluator: Evaluator,
        every_n_epochs: int = 5,
        n_samples: int = 2000,
        n_real: int | None = None,
        split: str = "selection",
        seed: int = 1234,
    ) -> None:
        self.evaluator = evaluator
        self.every_n_epochs = every_n_epochs
        self.n_samples = n_samples
        self.n_real = n_real or n_samples
        self.split = split
        self.seed = seed

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not isinstance(pl_module, TrainingSamples):
            raise InputError(
                f"the FID callback scores a creator's samples; {type(pl_module).__name__} draws none: "
                "drop it with ~callbacks.fid"
            )
        dm = trainer.datamodule
        if dm is None or not hasattr(dm, "real_images"):
            raise ValueError(
                "FIDCallback needs an artdirector data module (with real_images) for its reference"
            )
        if not trainer.is_global_zero:
            return
        self.evaluator.to(pl_module.device)
        shape = getattr(pl_module, "image_shape", None)
        if shape is not None:
            self._confidence_only_if_readable(tuple(int(s) for s in shape))
        with torch.random.fork_rng(devices=[]):  # setting up must not move training's random stream
            self.evaluator.set_reference_from(dm, self.split, self.n_real)

    def _confidence_only_if_readable(self, shape: tuple[int, int, int]) -> None:
        """The Inception evaluator takes its per-sample confidence from the 28x28 grey LeNet; at other shapes
        that classifier cannot read the images, so the FID runs without it (and says so) instead of failing.
        A feature network that cannot read them fails with its own one-line error at the reference."""
        ev = self.evaluator
        if ev.classifier is None or hasattr(ev.feature_net, "logits_from_features"):
            return
        try:
            with torch.no_grad():
                ev.classifier(torch.zeros(1, *shape, device=ev.device))
        except InputError:
            log.warning(
                "FID (%s) without per-sample confidence: its classifier cannot read %s images",
                ev.name,
                "x".join(map(str, shape)),
            )
            ev.classifier = None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if (trainer.current_epoch + 1) % self.every_n_epochs and not trainer.fast_dev_run:
            return
        values = None
        if trainer.is_global_zero:
            report = self._score(pl_module)
            values = {
                "val/fid": report.fid,
                "val/kid": report.kid,
                "val/precision": report.precision,
                "val/recall": report.recall,
            }
        values = trainer.strategy.broadcast(values, src=0)
        pl_module.log_dict(values, on_epoch=True, prog_bar=False)
        if not trainer.is_global_zero:
            return
        log.info(
            "epoch %d: FID %.3f  KID %.4f  precision %.3f  recall %.3f (%s, %d samples, %.1fs)",
            trainer.current_epoch + 1,
            report.fid,
            report.kid,
            report.precision,
            report.recall,
            self.evaluator.name,
            report.n_fake,
            report.seconds,
        )

    def _score(self, pl_module: L.LightningModule):
        return self.evaluator.evaluate(pl_module.eval_samples(self.n_samples, seed=self.seed).float())
