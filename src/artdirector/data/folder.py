"""Your own images: ``data=image_folder data.path=DIR``.

A flat folder (unlabelled: every label 0, ``num_classes = 0``) or one subfolder per class (labels from the
folder names in sorted order, as torchvision's ``ImageFolder`` does). Anything PIL decodes is read (PNG, JPEG,
WebP, ...); each image is converted to ``channels`` (1: grey, 3: RGB), resized on its shorter side to
``image_size`` and centre-cropped. Unreadable files are skipped, counted and listed, never a crash; so is a
decompression bomb (a small file declaring more than twice ``PIL.Image.MAX_IMAGE_PIXELS`` pixels), which PIL
refuses from its header before decoding anything.

Decoding happens once: the uint8 tensors are cached under ``cache_dir`` with a key made of every file's
relative path, size and modification time (and the size/channel settings), so a second run starts in
seconds and a changed, added or removed file rebuilds the cache.

The three sets come from the folder itself (there is no official test split): ``report_fraction`` and then
``selection_fraction`` of the images are held out by seeded draws (``split_seed``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import torch
import torchvision.transforms.functional as TF
from PIL import Image, UnidentifiedImageError

from artdirector.data.datamodules import ImageDataModule, hold_out
from artdirector.errors import ConfigError, InputError
from artdirector.io import atomic_write

log = logging.getLogger(__name__)

CACHE_VERSION = 1
# what PIL raises for a file it cannot read: not an image, truncated or broken, or a decompression bomb
UNREADABLE = (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError)


def _files(root: Path) -> tuple[list[tuple[Path, int]], list[str]]:
    """(file, label) pairs and the class names: subfolders are classes; files at the top are one class."""
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if subdirs:
        classes = [d.name for d in subdirs]
        files = [(f, i) for i, d in enumerate(subdirs) for f in sorted(d.rglob("*")) if f.is_file()]
        return [(f, i) for f, i in files if not f.name.startswith(".")], classes
    return [(f, 0) for f in sorted(root.iterdir()) if f.is_file() and not f.name.startswith(".")], []


def _decode(path: Path, image_size: int, channels: int) -> torch.Tensor:
    with Image.open(path) as im:
        im = im.convert("L" if channels == 1 else "RGB")
        x = TF.pil_to_tensor(im)  # uint8 (C, H, W)
    x = TF.resize(x, image_size, antialias=True)  # the shorter side to image_size
    return TF.center_crop(x, [image_size, image_size])


class ImageFolderDataModule(ImageDataModule):
    name = "image_folder"

    def __init__(
        self,
        path: str,
        image_size: int = 28,
        channels: int = 1,
        cache_dir: str | None = None,
        selection_fraction: float = 0.1,
        report_fraction: float = 0.1,
        split_seed: int = 0,
        batch_size: int = 64,
        num_workers: int = 0,
        limit_train: int | None = None,
    ) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, limit_train=limit_train)
        if channels not in (1, 3):
            raise ConfigError(f"data.channels must be 1 or 3, got {channels}")
        if image_size < 8:
            raise ConfigError(f"data.image_size must be at least 8, got {image_size}")
        for key, f in (("selection_fraction", selection_fraction), ("report_fraction", report_fraction)):
            if not 0 < f < 0.5:
                raise ConfigError(f"data.{key} must be in (0, 0.5), got {f}")
        self.root = Path(path).expanduser()
        self.image_size, self.channels = image_size, channels
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else None
        self.fractions = (selection_fraction, report_fraction)
        self.split_seed = split_seed
        self.classes: list[str] = []
        self.corrupt_files: list[str] = []
        self._data: tuple[torch.Tensor, torch.Tensor] | None = None
        self.hparams["data_used"] = f"image_folder {self.root}"

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def describe(self) -> str:
        return f"image_folder {self.root} ({self.image_size}x{self.image_size}x{self.channels})"

    # ---- decode once -----------------------------------------------------------------------------
    def _listing(self) -> tuple[list[tuple[Path, int]], list[str]]:
        if not self.root.exists():
            raise InputError(f"data.path {self.root} does not exist: point data.path at a folder of images")
        if not self.root.is_dir():
            raise InputError(f"data.path {self.root} is a file, not a folder of images")
        files, classes = _files(self.root)
        if not files:
            raise InputError(
                f"data.path {self.root} holds no files: put images in it (or one subfolder per class)"
            )
        return files, classes

    def _key(self, files: list[tuple[Path, int]], classes: list[str]) -> str:
        h = hashlib.sha256()
        h.update(json.dumps([CACHE_VERSION, self.image_size, self.channels, classes]).encode())
        for f, label in files:
            st = f.stat()
            h.update(f"{f.relative_to(self.root)}\0{st.st_size}\0{st.st_mtime_ns}\0{label}\n".encode())
        return h.hexdigest()[:16]

    def prepare_data(self) -> None:
        self._load()

    def _load(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._data is not None:
            return self._data
        files, classes = self._listing()
        key = self._key(files, classes)
        cache = self.cache_dir / f"image_folder_{key}.pt" if self.cache_dir else None
        if cache is not None and cache.is_file():
            blob = torch.load(cache, map_location="cpu", weights_only=True)
            log.info("%s: %d images from the cache %s", self.describe(), len(blob["images"]), cache)
        else:
            images, labels, corrupt = [], [], []
            for f, label in files:
                try:
                    images.append(_decode(f, self.image_size, self.channels))
                    labels.append(label)
                except UNREADABLE as e:
                    corrupt.append(f"{f.relative_to(self.root)} ({type(e).__name__})")
            if not images:
                raise InputError(
                    f"data.path {self.root}: none of its {len(files)} files is a readable image "
                    f"(e.g. {corrupt[0]})"
                )
            blob = {
                "images": torch.stack(images),
                "labels": torch.tensor(labels, dtype=torch.long),
                "classes": classes,
                "corrupt": corrupt,
            }
            if cache is not None:
                cache.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(cache, lambda p: torch.save(blob, p))
        self.classes, self.corrupt_files = list(blob["classes"]), list(blob["corrupt"])
        if self.corrupt_files:
            shown = ", ".join(self.corrupt_files[:5]) + (" ..." if len(self.corrupt_files) > 5 else "")
            log.warning(
                "%s: skipped %d unreadable files: %s", self.describe(), len(self.corrupt_files), shown
            )
        self._data = (blob["images"], blob["labels"])
        return self._data

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        images, labels = self._load()
        x = images.float().div(127.5).sub(1.0)
        n = len(x)
        n_report = max(1, round(self.fractions[1] * n))
        n_selection = max(1, round(self.fractions[0] * n))
        if n - n_report - n_selection < 1:
            raise InputError(
                f"data.path {self.root} has {n} readable images: too few for train, selection and report sets"
            )
        rest, self.report_set = hold_out(x, labels, n_report, self.split_seed)
        train, self.selection_set = hold_out(*rest.tensors, n_selection, self.split_seed + 1)
        self.train_set = self._limit(train)

    def readable_files(self) -> list[str]:
        """The relative paths of the images read, in the order of the decoded tensors (skipped files left
        out): ``readable_files()[i]`` is the file behind image ``i`` of the folder."""
        files, _ = self._listing()
        self._load()
        skipped = {c.rsplit(" (", 1)[0] for c in self.corrupt_files}
        names = [str(f.relative_to(self.root)) for f, _ in files]
        return [n for n in names if n not in skipped]

    def source_resolutions(self) -> dict[str, int]:
        """How many readable images have each source size ``WxH`` (read from the file headers), most common
        first."""
        sizes: dict[str, int] = {}
        for name in self.readable_files():
            try:
                with Image.open(self.root / name) as im:
                    key = f"{im.width}x{im.height}"
            except UNREADABLE:
                key = "unreadable now"
            sizes[key] = sizes.get(key, 0) + 1
        return dict(sorted(sizes.items(), key=lambda kv: -kv[1]))

    def card(self) -> dict[str, Any]:
        """What was read: counts, classes, skipped files (the start of the data card)."""
        images, labels = self._load()
        return {
            "path": str(self.root),
            "n_images": len(images),
            "classes": self.classes,
            "n_per_class": torch.bincount(labels).tolist() if self.classes else [len(images)],
            "corrupt_files": self.corrupt_files,
            "image_size": self.image_size,
            "channels": self.channels,
        }
