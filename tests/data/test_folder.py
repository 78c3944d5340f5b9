"""data=image_folder: your own images, decoded once, with bad files skipped and clear errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artdirector.data import ImageFolderDataModule
from artdirector.errors import ConfigError, InputError

REPO = Path(__file__).resolve().parents[2]


def _png(path: Path, value: int, size=(40, 30), mode="RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.full((size[1], size[0], 3), value, dtype=np.uint8)
    arr[:, : size[0] // 2] = 255 - value  # not flat, so that resizing and cropping show
    Image.fromarray(arr).convert(mode).save(path)


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "imgs"
    for c, name in enumerate(["cats", "dogs"]):
        for i in range(10):
            ext = ".png" if i % 2 else ".jpg"
            _png(root / name / f"{i}{ext}", 20 * c + i)
    (root / "dogs" / "broken.png").write_bytes(b"not an image at all")
    return root


def test_class_folders_become_labels_and_bad_files_are_listed(folder, tmp_path) -> None:
    dm = ImageFolderDataModule(str(folder), image_size=16, channels=3, cache_dir=str(tmp_path / "cache"))
    dm.setup()
    assert dm.classes == ["cats", "dogs"] and dm.num_classes == 2
    assert dm.corrupt_files == ["dogs/broken.png (UnidentifiedImageError)"]
    n = len(dm.train_set) + len(dm.selection_set) + len(dm.report_set)
    assert n == 20 and len(dm.report_set) == 2 and len(dm.selection_set) == 2
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape[1:] == (3, 16, 16) and x.min() >= -1 and x.max() <= 1 and set(y.tolist()) <= {0, 1}
    card = dm.card()
    assert card["n_images"] == 20 and card["n_per_class"] == [10, 10] and len(card["corrupt_files"]) == 1


def _bomb(path: Path) -> None:
    """A decompression bomb: 400 M one-bit pixels (over twice PIL's MAX_IMAGE_PIXELS, which stays as shipped)
    in a 50 kB PNG."""
    assert Image.MAX_IMAGE_PIXELS and 2 * Image.MAX_IMAGE_PIXELS < 20_000**2
    Image.new("1", (20_000, 20_000)).save(path)


def test_a_decompression_bomb_is_listed_as_unreadable(folder, tmp_path) -> None:
    _bomb(folder / "cats" / "bomb.png")
    dm = ImageFolderDataModule(str(folder), cache_dir=str(tmp_path / "cache"))
    dm.setup()
    assert dm.corrupt_files == [
        "cats/bomb.png (DecompressionBombError)",
        "dogs/broken.png (UnidentifiedImageError)",
    ]
    assert dm.card()["n_images"] == 20 and "cats/bomb.png" not in dm.readable_files()
    assert sum(dm.source_resolutions().values()) == 20


def test_decoded_once_and_a_changed_file_rebuilds_the_cache(folder, tmp_path, caplog) -> None:
    cache = tmp_path / "cache"
    ImageFolderDataModule(str(folder), cache_dir=str(cache)).setup()
    assert len(list(cache.glob("*.pt"))) == 1
    caplog.set_level("INFO")
    dm = ImageFolderDataModule(str(folder), cache_dir=str(cache))
    dm.setup()
    assert "from the cache" in caplog.text and dm.corrupt_files  # the skipped list survives the cache
    _png(folder / "cats" / "0.jpg", 200)
    os.utime(folder / "cats" / "0.jpg", ns=(1, 1))  # a different mtime even within one clock tick
    ImageFolderDataModule(str(folder), cache_dir=str(cache)).setup()
    assert len(list(cache.glob("*.pt"))) == 2


def test_a_flat_folder_is_unlabelled_and_grey(tmp_path) -> None:
    for i in range(12):
        _png(tmp_path / "flat" / f"{i}.webp", 10 * i, mode="RGB")
    dm = ImageFolderDataModule(str(tmp_path / "flat"), image_size=28, channels=1)
    dm.setup()
    assert dm.num_classes == 0 and dm.real_images("train").shape[1:] == (1, 28, 28)


def _missing(p: Path) -> Path:
    return p / "missing"


def _empty(p: Path) -> Path:
    (p / "empty").mkdir()
    return p / "empty"


def _junk(p: Path) -> Path:
    (p / "junk").mkdir()
    (p / "junk" / "a.png").write_bytes(b"x")
    return p / "junk"


def _file(p: Path) -> Path:
    (p / "f.png").write_bytes(b"x")
    return p / "f.png"


@pytest.mark.parametrize(
    "make, words",
    [(_missing, "does not exist"), (_empty, "holds no files"), (_junk, "none of its"), (_file, "is a file")],
)
def test_bad_folders_say_what_is_wrong(tmp_path, make, words) -> None:
    with pytest.raises(InputError, match=words):
        ImageFolderDataModule(str(make(tmp_path))).setup()


def test_bad_settings_are_config_errors(folder) -> None:
    with pytest.raises(ConfigError, match="channels"):
        ImageFolderDataModule(str(folder), channels=2)
    with pytest.raises(ConfigError, match="report_fraction"):
        ImageFolderDataModule(str(folder), report_fraction=0.7)


def test_train_on_a_folder_and_a_missing_one_is_one_line(folder, tmp_path) -> None:
    base = [
        sys.executable,
        str(REPO / "scripts" / "train.py"),
        "data=image_folder",
        "trainer=cpu",
        "debug=fdr",
        "model.generator.base_channels=16",
        "model.discriminator.base_channels=8",
        "callbacks.fid.n_samples=4",  # a 20-image folder: 2 selection images, P/R reported as NaN, no crash
        "evaluator.n_bootstrap=0",  # no 2048-d bootstrap FIDs on a CPU
    ]
    ok = subprocess.run(
        [*base, f"data.path={folder}", f"hydra.run.dir={tmp_path / 'run'}"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ok.returncode == 0, ok.stderr[-2000:]
    log = (tmp_path / "run" / "debug.log").read_text()  # the evaluator follows the data and says why
    assert "evaluator=auto: an image folder (28x28x1)" in log and "FID" in log and "(inception," in log
    bad = subprocess.run(
        [*base, f"data.path={tmp_path / 'nope'}", f"hydra.run.dir={tmp_path / 'run2'}"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert bad.returncode == 2 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr
