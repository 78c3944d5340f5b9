"""Lightning callbacks: fixed-noise image grids, periodic FID evaluation, last.ckpt after every epoch."""

from artdirector.callbacks.fid import FIDCallback
from artdirector.callbacks.image_grid import FixedNoiseGrid
from artdirector.callbacks.last import LastCheckpoint

__all__ = ["FIDCallback", "FixedNoiseGrid", "LastCheckpoint"]
