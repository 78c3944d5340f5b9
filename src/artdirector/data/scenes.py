"""Scenes for the scene verifier's detector: real MNIST / FashionMNIST objects pasted on a black canvas.

A scene is a canvas (1, H, W) in [-1, 1] (``artdirector.scenes.canvas``) with 0 to ``max_objects`` objects
in non-overlapping square cells; its targets are each object's tight ink box (``canvas.ink_box``: what the
detector must find) and its global class id (0-9 digits, 10-19 FashionMNIST items).

Scenes are composed on the fly from the images of one split of each source data set, so the detector's
splits inherit the image splits of :class:`~artdirector.data.TorchvisionDataModule`:

- ``train`` scenes from the ``train`` images (a new random draw every epoch, light augmentations of each
  pasted object that imitate generated images: blur, faint background noise, intensity off by a little);
- ``val`` scenes from the ``selection`` images (held out from the training images), ``n_val`` scenes fixed by
  ``seed``: what every model-selection decision reads (``val/map50``, ``best.ckpt``);
- ``test`` scenes from the ``report`` (official test) images, ``n_test`` scenes fixed by ``seed``: the
  numbers the shipped weights and ``scripts/bench_detector.py`` state.

Scene ``i`` of a fixed set is a function of ``(seed, split, i)`` only, so a set is the same whatever the
batch size, worker count or order it is read in.

Layouts cover what the scene planner draws and more: ``row`` and ``column`` (up to ``max_objects`` cells,
gaps of 2 to 8 px, cells down to ``min_cell``), ``grid`` (2x2 and 2x3 blocks, some slots empty) and
``scatter`` (random sizes and places). Cell sides are drawn from ``min_cell`` to ``max_cell`` px, half of the
time near the planner's own cells (19, 22, 24, 32, 48 px). Each scene is all digits, all FashionMNIST, or
mixed, in equal shares (when both data sets are loaded); about ``p_empty`` of the scenes hold no object.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler

from artdirector.data.scene_layouts import LAYOUTS, layout_cells
from artdirector.scenes.canvas import Box, Placed, blank, global_id, ink_box, paste

log = logging.getLogger(__name__)

SOURCES = ("mnist", "fashion_mnist", "mnist5k")  # mnist5k: the bundled digits (offline, for tests)
DOMAINS = ("mnist", "fashion_mnist", "mixed")
SCENE_SPLITS = {"train": "train", "val": "selection", "test": "report"}  # scene split -> image split
# size words of a cell side (px), as the planner's: small 19 px, normal 32 px, large 48 px on 128 px
SIZE_BUCKETS = (("small", 0, 26), ("normal", 26, 40), ("large", 40, 10_000))
DEFAULT_LAYOUTS = {"scatter": 0.4, "row": 0.2, "column": 0.15, "grid": 0.25}
DEFAULT_AUGMENT = {
    "p_blur": 0.3,
    "blur_sigma": (0.3, 1.0),  # px at 28x28, before resizing into the cell
    "p_noise": 0.4,
    "noise_std": (0.02, 0.12),  # in [-1, 1] units, at 28x28: faint background noise
    "p_intensity": 0.5,
    "intensity": (0.7, 1.1),  # scale of the ink's brightness above black
    "p_lift": 0.2,
    "lift": (0.0, 0.1),  # background raised above black
}


def size_word(cell: float) -> str:
    """``small`` / ``normal`` / ``large``: the bucket of a cell side in px (on the default 128 px canvas)."""
    return next(name for name, lo, hi in SIZE_BUCKETS if lo <= cell < hi)


@dataclass(frozen=True)
class Scene:
    """A composed scene: the canvas, its objects (``Placed`` with the ink box and the size word), the cells
    they were drawn in, the layout and the domain."""

    canvas: torch.Tensor
    objects: tuple[Placed, ...]
    cells: tuple[Box, ...]
    layout: str
    domain: str

    def target(self) -> dict[str, torch.Tensor]:
        boxes = torch.tensor([o.box for o in self.objects], dtype=torch.float32).reshape(-1, 4)
        labels = torch.tensor([o.gid for o in self.objects], dtype=torch.long)
        return {"boxes": boxes, "labels": labels}


class ObjectPool:
    """The images of one split of each source data set: uint8 (N, 28, 28), their global ids and their
    source index, with the indices of each class for class-balanced draws."""

    def __init__(self, images: torch.Tensor, gids: torch.Tensor) -> None:
        self.images = images
        self.gids = gids
        self.by_class = {int(g): (gids == g).nonzero().flatten().numpy() for g in torch.unique(gids)}
        self.domains = tuple(
            d for d in DOMAINS[:2] if any(global_id(d, 0) <= g < global_id(d, 10) for g in self.by_class)
        )

    def __len__(self) -> int:
        return len(self.images)

    def classes(self, domain: str) -> list[int]:
        if domain == "mixed":
            return sorted(self.by_class)
        lo = global_id(domain, 0)
        return [g for g in sorted(self.by_class) if lo <= g < lo + 10]

    def draw(self, gid: int, rng: np.random.Generator) -> torch.Tensor:
        """A random image of class ``gid`` as float (1, 28, 28) in [-1, 1]."""
        idx = self.by_class[gid]
        return self.images[int(idx[rng.integers(len(idx))])].float().div(127.5).sub(1.0)[None]


def _gauss_blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, math.ceil(2.5 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-(x**2) / (2 * sigma**2))
    k = k / k.sum()
    pad = F.pad(img[None], (radius, radius, radius, radius), mode="replicate")
    out = F.conv2d(pad, k.view(1, 1, 1, -1))
    return F.conv2d(out, k.view(1, 1, -1, 1))[0]


def augment_object(img: torch.Tensor, rng: np.random.Generator, spec: Mapping[str, Any]) -> torch.Tensor:
    """Make a real 28x28 object look a little like a generated one (each part with its probability): blur,
    brightness scaled, background lifted, Gaussian noise. ``img`` (1, 28, 28) in [-1, 1]."""
    out = img
    if rng.random() < spec["p_blur"]:
        out = _gauss_blur(out, float(rng.uniform(*spec["blur_sigma"])))
    if rng.random() < spec["p_intensity"]:
        out = (out + 1) * float(rng.uniform(*spec["intensity"])) - 1
    if rng.random() < spec["p_lift"]:
        out = torch.maximum(out, torch.full_like(out, -1 + float(rng.uniform(*spec["lift"]))))
    if rng.random() < spec["p_noise"]:
        noise = torch.from_numpy(rng.standard_normal(out.shape).astype(np.float32))
        out = out + noise * float(rng.uniform(*spec["noise_std"]))
    return out.clamp(-1, 1)


class SceneSet(Dataset):
    """Scenes composed from an :class:`ObjectPool`; item ``i`` (or ``(epoch, i)`` from :class:`EpochSampler`)
    is a function of ``(seed, epoch, i)`` only."""

    def __init__(
        self,
        pool: ObjectPool,
        n: int,
        seed: int,
        canvas_size: int | Sequence[int] = 128,
        max_objects: int = 5,
        p_empty: float = 0.03,
        min_cell: int = 16,
        max_cell: int = 56,
        layouts: Mapping[str, float] | None = None,
        augment: Mapping[str, Any] | None = None,
    ) -> None:
        self.pool, self.n, self.seed = pool, int(n), int(seed)
        size = (canvas_size, canvas_size) if isinstance(canvas_size, int) else tuple(canvas_size)
        self.height, self.width = int(size[0]), int(size[1])
        self.max_objects, self.p_empty = int(max_objects), float(p_empty)
        self.min_cell, self.max_cell = int(min_cell), int(max_cell)
        probs = dict(layouts or DEFAULT_LAYOUTS)
        unknown = set(probs) - set(LAYOUTS)
        if unknown:
            raise ValueError(f"unknown layouts {sorted(unknown)}; known: {', '.join(LAYOUTS)}")
        self.layout_names = list(probs)
        self.layout_p = np.array([probs[k] for k in self.layout_names], dtype=float)
        self.layout_p /= self.layout_p.sum()
        self.augment = dict(augment) if augment else None

    def __len__(self) -> int:
        return self.n

    def scene(self, index: int | tuple[int, int]) -> Scene:
        epoch, i = index if isinstance(index, tuple) else (0, index)
        rng = np.random.default_rng((self.seed, int(epoch), int(i)))
        n = 0 if rng.random() < self.p_empty else int(rng.integers(1, self.max_objects + 1))
        domains = (*self.pool.domains, "mixed") if len(self.pool.domains) > 1 else self.pool.domains
        domain = domains[int(rng.integers(len(domains)))]
        layout = self.layout_names[int(rng.choice(len(self.layout_names), p=self.layout_p))]
        cells = layout_cells(layout, n, rng, self.width, self.height, self.min_cell, self.max_cell)
        classes = self.pool.classes(domain)
        canvas = blank(self.height, self.width)
        objects, boxes = [], []
        for x0, y0, s in cells:
            gid = classes[int(rng.integers(len(classes)))]
            img = self.pool.draw(gid, rng)
            cell = (float(x0), float(y0), float(x0 + s), float(y0 + s))
            clean = F.interpolate(
                img[None], size=(s, s), mode="bilinear", antialias=True, align_corners=False
            )[0]
            box = ink_box(clean, cell)  # the target is the clean object's ink, whatever the augmentation
            if self.augment is not None:
                aug = augment_object(img, rng, self.augment)
                clean = F.interpolate(
                    aug[None], size=(s, s), mode="bilinear", antialias=True, align_corners=False
                )[0]
            paste(canvas, clean, cell)
            word = size_word(s)
            objects.append(Placed(gid=gid, box=box, size=None if word == "normal" else word))
            boxes.append(cell)
        return Scene(canvas, tuple(objects), tuple(boxes), layout, domain)

    def __getitem__(self, index: int | tuple[int, int]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        scene = self.scene(index)
        return scene.canvas, scene.target()


class EpochSampler(Sampler):
    """Yields ``(epoch, i)`` for i in range(n): Lightning calls ``set_epoch`` at each epoch, so the training
    scenes are new every epoch and still a function of the seed."""

    def __init__(self, n: int) -> None:
        self.n, self.epoch = int(n), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return ((self.epoch, i) for i in range(self.n))


def collate_scenes(batch) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
    """(B, 1, H, W) canvases and a list of B target dicts {"boxes": (n, 4) float, "labels": (n,) long}."""
    return torch.stack([x for x, _ in batch]), [t for _, t in batch]


def _plain_dict(spec: Mapping[str, Any]) -> dict[str, Any]:
    return {
        str(k): (list(v) if isinstance(v, Sequence) and not isinstance(v, str) else v)
        for k, v in spec.items()
    }


def _to_uint8(images: torch.Tensor) -> torch.Tensor:
    return images.reshape(-1, 28, 28).mul(127.5).add(127.5).round().clamp(0, 255).to(torch.uint8)


class SceneDataModule(L.LightningDataModule):
    """Scenes of MNIST and/or FashionMNIST objects (``datasets``), split as the module docstring says.

    ``datasets`` may also name ``mnist5k``: the 5,000 digits bundled with the package (a 3,000 / 1,000 / 1,000
    split; offline, for tests). The torchvision sets come through :class:`TorchvisionDataModule` with its
    ``root``, ``download``, ``n_selection`` and ``split_seed``, so the selection images are the same ones
    the LeNet classifiers held out.
    """

    def __init__(
        self,
        root: str = "data",
        datasets: Sequence[str] = ("mnist", "fashion_mnist"),
        download: bool = True,
        n_selection: int = 5000,
        split_seed: int = 0,
        canvas_size: int = 128,
        max_objects: int = 5,
        p_empty: float = 0.03,
        min_cell: int = 16,
        max_cell: int = 56,
        layouts: Mapping[str, float] | None = None,
        augment: Mapping[str, Any] | None = None,
        n_train: int = 8192,
        n_val: int = 1000,
        n_test: int = 2000,
        seed: int = 0,
        batch_size: int = 32,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        # plain containers (Hydra passes DictConfig / ListConfig): the hparams go into weights_only checkpoints
        datasets = [str(d) for d in datasets]
        layouts = {str(k): float(v) for k, v in layouts.items()} if layouts else None
        augment = augment if augment is False or augment is None else _plain_dict(augment)
        unknown = [d for d in datasets if d not in SOURCES]
        if unknown or not datasets:
            raise ValueError(f"datasets must be a non-empty list of {', '.join(SOURCES)}, got {datasets}")
        if canvas_size % 4:
            raise ValueError(f"canvas_size must be divisible by 4 (the detector's stride), got {canvas_size}")
        if not 16 <= min_cell <= max_cell <= canvas_size:
            raise ValueError(f"need 16 <= min_cell <= max_cell <= canvas_size, got {min_cell}, {max_cell}")
        self.save_hyperparameters()
        self.hparams["data_used"] = "scenes(" + "+".join(datasets) + ")"
        self.pools: dict[str, ObjectPool] = {}
        self.sets: dict[str, SceneSet] = {}

    def describe(self) -> str:
        return self.hparams["data_used"]

    def _images(self) -> dict[str, list[tuple[torch.Tensor, torch.Tensor]]]:
        from artdirector.data.datamodules import Mnist5kDataModule, TorchvisionDataModule

        parts: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {s: [] for s in SCENE_SPLITS.values()}
        for name in self.hparams.datasets:
            if name == "mnist5k":
                sets = Mnist5kDataModule.split(self.hparams.split_seed)
                dataset = "mnist"
            else:
                dm = TorchvisionDataModule(
                    dataset=name,
                    root=self.hparams.root,
                    download=self.hparams.download,
                    fallback_to_bundled=False,
                    n_selection=self.hparams.n_selection,
                    split_seed=self.hparams.split_seed,
                )
                dm.prepare_data()
                dm.setup("fit")
                sets = (dm.train_set, dm.selection_set, dm.report_set)
                dataset = name
            for split, ds in zip(SCENE_SPLITS.values(), sets, strict=True):
                x, y = ds.tensors
                parts[split].append((_to_uint8(x), y.long() + global_id(dataset, 0)))
        return parts

    def setup(self, stage: str | None = None) -> None:
        if self.sets:
            return
        hp = self.hparams
        for split, tensors in self._images().items():
            self.pools[split] = ObjectPool(
                torch.cat([x for x, _ in tensors]), torch.cat([y for _, y in tensors])
            )
        common = {
            "canvas_size": hp.canvas_size,
            "max_objects": hp.max_objects,
            "p_empty": hp.p_empty,
            "min_cell": hp.min_cell,
            "max_cell": hp.max_cell,
            "layouts": hp.layouts,
        }
        augment = None if hp.augment is False else {**DEFAULT_AUGMENT, **dict(hp.augment or {})}
        # different seeds per split: the fixed sets never repeat a training draw's layout
        self.sets = {
            "train": SceneSet(self.pools["train"], hp.n_train, hp.seed, augment=augment, **common),
            "val": SceneSet(self.pools["selection"], hp.n_val, hp.seed + 1_000_003, **common),
            "test": SceneSet(self.pools["report"], hp.n_test, hp.seed + 2_000_003, **common),
        }
        log.info(
            "scenes from %s: %s images train/selection/report; %d train scenes per epoch, %d val, %d test",
            "+".join(hp.datasets),
            "/".join(f"{len(p):,}" for p in self.pools.values()),
            hp.n_train,
            hp.n_val,
            hp.n_test,
        )

    def scene_set(self, split: str) -> SceneSet:
        """The ``train``, ``val`` or ``test`` :class:`SceneSet`."""
        if split not in SCENE_SPLITS:
            raise ValueError(f"split must be one of {', '.join(SCENE_SPLITS)}, got {split!r}")
        self.setup()
        return self.sets[split]

    def _loader(self, split: str) -> DataLoader:
        ds = self.scene_set(split)
        sampler = EpochSampler(len(ds)) if split == "train" else None
        return DataLoader(
            ds,
            batch_size=self.hparams.batch_size,
            sampler=sampler,
            shuffle=False,
            num_workers=self.hparams.num_workers,
            persistent_workers=self.hparams.num_workers > 0,
            collate_fn=collate_scenes,
            drop_last=False,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")
