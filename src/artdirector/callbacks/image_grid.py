"""Log the generator's output on the module's fixed noise batch every N epochs."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger
from torchvision.utils import make_grid

from artdirector.io import save_grid


class FixedNoiseGrid(L.Callback):
    """A grid of the same samples every time: ``pl_module.sample(z=pl_module.fixed_noise)`` for a GAN, or
    ``pl_module.fixed_samples()`` (e.g. a diffusion model's, from fixed noise and labels). To TensorBoard
    (``samples/fixed_noise``) and, if ``dirpath`` is set, as ``epoch_XXX.png`` plus ``last.png`` there."""

    def __init__(self, every_n_epochs: int = 1, nrow: int = 4, dirpath: str | None = None) -> None:
        self.every_n_epochs = every_n_epochs
        self.nrow = nrow
        self.dirpath = Path(dirpath) if dirpath else None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch
        fixed = getattr(pl_module, "fixed_samples", None)
        if (
            (fixed is None and not hasattr(pl_module, "fixed_noise"))
            or (epoch + 1) % self.every_n_epochs
            or trainer.sanity_checking
        ):
            return
        images = fixed() if fixed is not None else pl_module.sample(z=pl_module.fixed_noise)
        images = images.float().cpu()
        if trainer.is_global_zero and self.dirpath is not None:
            save_grid(images, self.dirpath / f"epoch_{epoch + 1:03d}.png", nrow=self.nrow)
            save_grid(images, self.dirpath / "last.png", nrow=self.nrow)
        grid = make_grid(images, nrow=self.nrow, normalize=True, value_range=(-1, 1))
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image("samples/fixed_noise", grid, global_step=epoch + 1)
