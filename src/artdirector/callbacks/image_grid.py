"""Log the generator's output on the module's fixed noise batch every N epochs."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger
from torchvision.utils import make_grid

from artdirector.errors import InputError
from artdirector.io import save_grid
from artdirector.models.base import TrainingSamples


class FixedNoiseGrid(L.Callback):
    """A grid of the same samples every time: the creator's ``fixed_samples()`` (a GAN's fixed noise, a
    diffusion model's fixed seed and labels). To TensorBoard
    (``samples/fixed_noise``) and, if ``dirpath`` is set, as ``epoch_XXX.png`` plus ``last.png`` there."""

    def __init__(self, every_n_epochs: int = 1, nrow: int = 4, dirpath: str | None = None) -> None:
        self.every_n_epochs = every_n_epochs
        self.nrow = nrow
        self.dirpath = Path(dirpath) if dirpath else None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not isinstance(pl_module, TrainingSamples):
            raise InputError(
                f"the fixed-noise grid draws a creator's samples; {type(pl_module).__name__} draws none: "
                "drop it with ~callbacks.fixed_noise_grid"
            )

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch
        if (epoch + 1) % self.every_n_epochs or trainer.sanity_checking:
            return
        images = pl_module.fixed_samples().float().cpu()
        if trainer.is_global_zero and self.dirpath is not None:
            save_grid(images, self.dirpath / f"epoch_{epoch + 1:03d}.png", nrow=self.nrow)
            save_grid(images, self.dirpath / "last.png", nrow=self.nrow)
        grid = make_grid(images, nrow=self.nrow, normalize=True, value_range=(-1, 1))
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image("samples/fixed_noise", grid, global_step=epoch + 1)
