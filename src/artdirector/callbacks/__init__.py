"""Lightning callbacks: fixed-noise image grids and periodic FID evaluation."""

from artdirector.callbacks.fid import FIDCallback
from artdirector.callbacks.image_grid import FixedNoiseGrid

__all__ = ["FIDCallback", "FixedNoiseGrid"]
