"""The Data Agent: the data card of an image folder or a packaged data set, cached and rebuilt when stale."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artdirector.data import FakeDataModule, ImageFolderDataModule
from artdirector.data.card import build_card, load_or_build_card
from artdirector.data.card_files import card_markdown
from artdirector.evaluation import Evaluator, LeNetFeatures

REPO = Path(__file__).resolve().parents[1]


def _digit_like(path: Path, seed: int, size: int = 28, mode: str = "L") -> None:
    """A distinct random blob picture (grey or RGB)."""
    rng = np.random.default_rng(seed)
    arr = np.zeros((size, size), dtype=np.uint8)
    for _ in range(6):
        y, x = rng.integers(4, size - 8, 2)
        arr[y : y + rng.integers(3, 8), x : x + rng.integers(3, 8)] = rng.integers(120, 256)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).convert(mode).save(path)


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "imgs"
    for c, name in enumerate(["a", "b"]):
        for i in range(15):
            _digit_like(root / name / f"{i:02d}.png", 100 * c + i)
    # planted exact duplicates: one picture three times (across classes), another twice
    shutil.copyfile(root / "a" / "00.png", root / "a" / "00_copy.png")
    shutil.copyfile(root / "a" / "00.png", root / "b" / "zz_from_a.png")
    shutil.copyfile(root / "b" / "03.png", root / "b" / "03 again.png")
    # a planted near duplicate: one pixel brighter
    arr = np.array(Image.open(root / "a" / "05.png"))
    arr[14, 14] = min(255, int(arr[14, 14]) + 30)
    Image.fromarray(arr).save(root / "a" / "05_touched.png")
    (root / "b" / "broken.png").write_bytes(b"\x89PNG but not really")
    return root


@pytest.fixture(scope="module")
def lenet() -> Evaluator:
    return Evaluator(LeNetFeatures("mnist"), name="lenet")


def test_planted_duplicates_corrupt_files_and_split_sizes(folder, tmp_path, lenet) -> None:
    dm = ImageFolderDataModule(str(folder), cache_dir=str(tmp_path / "cache"))
    card = build_card(dm, lenet, out_dir=tmp_path / "card")
    groups = {frozenset(g["paths"]) for g in card["exact_duplicates"]["groups"]}
    assert groups == {
        frozenset({"a/00.png", "a/00_copy.png", "b/zz_from_a.png"}),
        frozenset({"b/03.png", "b/03 again.png"}),
    }
    ex = card["exact_duplicates"]
    assert ex["n_groups"] == 2 and ex["n_redundant"] == 3
    assert all(len(g["members"]) == g["count"] for g in ex["groups"])
    assert card["corrupt_files"] == ["b/broken.png (UnidentifiedImageError)"] and card["n_corrupt"] == 1
    # 34 readable files; the split n's add up, and so do the classes
    assert card["n_images"] == 34 == sum(s["n"] for s in card["splits"].values())
    assert card["has_labels"] and card["n_per_class"] == {"a": 17, "b": 17}
    assert card["class_imbalance"] == 1.0
    assert sum(sum(c.values()) for c in card["n_per_class_by_split"].values()) == 34
    near = card["near_duplicates"]
    assert {"a/05.png", "a/05_touched.png"} in [set(p["paths"]) for p in near["pairs"]]
    assert near["threshold"] == pytest.approx(0.2 * near["median_nn_distance"])
    assert near["feature_space"].startswith("lenet-mnist") and (tmp_path / "card" / near["grid"]).is_file()
    assert card["source_resolutions"] == {"28x28": 34}
    assert len(card["pixel"]["mean"]) == 1 and 0 < card["pixel"]["mean"][0] < 1
    floor = card["fid_floor"]
    assert floor["n"] == card["splits"]["report"]["n"] and floor["mean"] > 0
    assert any("report split has 3 images" in w for w in card["warnings"])
    md = card_markdown(card)
    assert md.startswith("## Data card") and "| Exact duplicates | 2 groups, 3 redundant" in md
    assert json.loads(json.dumps(card)) == card  # JSON-ready as it is


def test_a_stale_card_is_rebuilt_and_a_fresh_one_reused(folder, tmp_path, lenet) -> None:
    def card():
        dm = ImageFolderDataModule(str(folder), cache_dir=str(tmp_path / "cache"))
        return load_or_build_card(dm, tmp_path / "cards", lenet, floor_draws=2)

    first = card()
    again = card()
    assert not first["from_cache"] and again["from_cache"] and again["key"] == first["key"]
    assert {p.name for p in Path(first["card_dir"]).iterdir()} == {
        "data_card.json",
        "data_card.md",
        "near_duplicates.png",
    }
    _digit_like(folder / "a" / "07.png", seed=999)  # a changed picture
    os.utime(folder / "a" / "07.png", ns=(1, 1))
    rebuilt = card()
    assert not rebuilt["from_cache"] and rebuilt["key"] != first["key"]
    assert rebuilt["splits"] != first["splits"]
    assert not Path(first["card_dir"]).exists()  # the stale card is gone, the fresh one stays
    assert [p.name for p in (tmp_path / "cards").iterdir()] == [Path(rebuilt["card_dir"]).name]


def test_rgb_folder_the_lenet_cannot_read_falls_back_to_pixels(tmp_path, lenet) -> None:
    for i in range(12):
        _digit_like(tmp_path / "rgb" / f"{i}.jpg", i, size=40, mode="RGB")
    dm = ImageFolderDataModule(str(tmp_path / "rgb"), image_size=32, channels=3)
    card = build_card(dm, lenet)
    assert not card["has_labels"] and card["n_per_class"] is None and card["class_imbalance"] is None
    assert card["near_duplicates"]["feature_space"].startswith("pixels")
    assert "cannot read" in card["fid_floor"]["skipped"] and len(card["pixel"]["std"]) == 3
    assert card["source_resolutions"] == {"40x40": 12} and card["image_shape"] == [3, 32, 32]


def test_fake_data_card_without_evaluator_needs_no_weights() -> None:
    card = build_card(FakeDataModule(n_train=64, n_selection=16, n_report=32))
    assert card["n_images"] == 112 and card["exact_duplicates"]["n_groups"] == 0
    assert "skipped" in card["fid_floor"]


def test_prepare_script_end_to_end_and_a_missing_folder_is_one_line(tmp_path) -> None:
    base = [sys.executable, str(REPO / "scripts" / "prepare.py"), f"paths.cache_dir={tmp_path / 'cache'}"]
    run = tmp_path / "run"
    ok = subprocess.run(
        [*base, "data=fake", "data.n_train=256", "data.n_report=128", f"hydra.run.dir={run}"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ok.returncode == 0, ok.stderr[-2000:]
    card = json.loads((run / "data_card.json").read_text())
    assert card["n_images"] == 256 + 128 + 128 and card["fid_floor"]["n"] == 128
    # 10 draws (card.floor_draws) of 128 from 256 train images cannot be disjoint: they overlap, and say so
    assert (
        card["fid_floor"]["draws"] == 10
        and not card["fid_floor"]["disjoint"]
        and card["fid_floor"]["sd"] >= 0
    )
    assert (run / "data_card.md").read_text().startswith("## Data card: fake")
    (cached,) = (tmp_path / "cache" / "data_card").glob("fake_*/data_card.json")
    assert json.loads(cached.read_text()) == card
    assert not json.loads((run / "prepare.json").read_text())["from_cache"]
    bad = subprocess.run(
        [*base, "data=image_folder", f"data.path={tmp_path / 'nope'}", f"hydra.run.dir={tmp_path / 'r2'}"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert bad.returncode == 2 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr


def test_a_decompression_bomb_in_the_folder_is_listed_and_the_card_written(folder, tmp_path) -> None:
    # 400 M one-bit pixels (over twice PIL's MAX_IMAGE_PIXELS, left as shipped) in a 50 kB PNG
    Image.new("1", (20_000, 20_000)).save(folder / "a" / "bomb.png")
    run = tmp_path / "run"
    res = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "prepare.py"),
            "data=image_folder",
            f"data.path={folder}",
            f"paths.cache_dir={tmp_path / 'cache'}",
            f"hydra.run.dir={run}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr[-2000:]
    card = json.loads((run / "data_card.json").read_text())
    assert card["corrupt_files"] == [
        "a/bomb.png (DecompressionBombError)",
        "b/broken.png (UnidentifiedImageError)",
    ]
    assert card["n_corrupt"] == 2 and card["n_images"] == 34
    assert "bomb.png" in (run / "data_card.md").read_text()


def test_prepare_through_compose_reuses_the_cached_card(make_cfg, tmp_path) -> None:
    from artdirector.prepare import prepare

    overrides = ["data=mnist5k", "card.floor_draws=2"]
    first = prepare(make_cfg("prepare", overrides, out=tmp_path / "one"))
    assert first["n_images"] == 5000 and first["n_per_class"]["7"] == 500
    assert first["splits"]["report"]["n"] == 1000 and first["fid_floor"]["n"] == 1000
    second = make_cfg("prepare", overrides, out=tmp_path / "one")
    prepare(second)
    assert json.loads((tmp_path / "one" / "prepare.json").read_text())["from_cache"]
