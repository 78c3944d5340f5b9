"""Are the samples copies? The copy rate, proven on both ends, and its place in the evaluation JSON."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from PIL import Image

from artdirector.data import Mnist5kDataModule
from artdirector.evaluation import LeNetFeatures
from artdirector.evaluation.copying import copy_rate, nearest_neighbours, save_pairs_grid, wilson_interval
from artdirector.runtime import ZOO_DIR


def test_nearest_neighbours_match_brute_force() -> None:
    g = torch.Generator().manual_seed(0)
    q, r = torch.randn(70, 5, generator=g), torch.randn(40, 5, generator=g)
    d, i = nearest_neighbours(q, r, chunk=16)
    full = torch.cdist(q, r)
    assert torch.allclose(d, full.min(1).values, atol=1e-5) and torch.equal(i, full.argmin(1))
    _, i_self = nearest_neighbours(r, r, chunk=7, exclude_self=True)
    full = torch.cdist(r, r).fill_diagonal_(float("inf"))
    assert torch.equal(i_self, full.argmin(1)) and (i_self != torch.arange(40)).all()
    with pytest.raises(ValueError, match="features"):
        nearest_neighbours(q, torch.randn(4, 3))


def test_wilson_interval_stays_inside_zero_one() -> None:
    lo, hi = wilson_interval(0, 100)
    assert lo == 0 and 0.03 < hi < 0.04
    lo, hi = wilson_interval(100, 100)
    assert hi == 1 and 0.96 < lo < 0.97
    lo, hi = wilson_interval(10, 1000)
    assert lo < 0.01 < hi


@pytest.fixture(scope="module")
def digits() -> dict[str, torch.Tensor]:
    dm = Mnist5kDataModule()
    dm.setup()
    net = LeNetFeatures("mnist")
    images = {s: dm.real_images(s) for s in ("train", "selection", "report")}
    return {"net": net, **images, **{f"f_{s}": net(x) for s, x in images.items()}}


def test_copy_rate_is_near_100_for_training_images_and_near_1_for_new_real_ones(digits) -> None:
    """The ends: a 'generator' that returns training digits copies; one that returns held-out digits (the
    selection split: never seen, and not the report images that set the threshold) scores about 1 %."""
    train, report = digits["f_train"], digits["f_report"]
    pick = torch.randperm(3000, generator=torch.Generator().manual_seed(1))[:1000]
    copies = copy_rate(train[pick], train, report)
    assert copies.copy_rate == 1.0 and copies.ci95[0] > 0.99 and copies.n_samples == 1000
    assert copies.p_closer == 1.0 and copies.sample_median == 0
    assert all(t == pick[s] for s, t, _ in copies.closest)  # the nearest training image is the original
    new = copy_rate(digits["f_selection"], train, report)
    assert new.copy_rate <= 0.03 and new.ci95[0] < 0.01 < new.ci95[1]
    assert 0.4 < new.p_closer < 0.6  # Meehan et al.'s statistic: no data copying
    assert new.threshold == copies.threshold and new.heldout_rate == pytest.approx(0.01, abs=0.002)
    assert new.n_train == 3000 and new.n_heldout == 1000 and 0 < new.binomial_se < new.se < 0.02
    # lightly noised copies are still caught, and pixel space shows the same two ends
    noisy = digits["train"][pick] + 0.02 * torch.randn(1000, 1, 28, 28, generator=torch.Generator())
    assert copy_rate(digits["net"](noisy.clamp(-1, 1)), train, report).copy_rate > 0.9
    flat = {s: digits[s].flatten(1) for s in ("train", "selection", "report")}
    assert copy_rate(flat["train"][pick], flat["train"], flat["report"]).copy_rate == 1.0
    assert copy_rate(flat["selection"], flat["train"], flat["report"]).copy_rate <= 0.03


def test_pairs_grid_puts_each_sample_above_its_partner(tmp_path, digits) -> None:
    a, b = digits["train"][:10], digits["selection"][:10]
    path = save_pairs_grid(a, b, tmp_path / "pairs.png", per_row=4)
    with Image.open(path) as im:  # 3 blocks of 2 rows, 4 columns, 28 px + 2 px padding
        assert im.size == (4 * 30 + 2, 6 * 30 + 2)
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind
    with pytest.raises(ValueError, match="pairs"):
        save_pairs_grid(a, b[:3], tmp_path / "bad.png")


def test_evaluate_json_has_the_copy_rate_and_its_grid(make_cfg, tmp_path) -> None:
    from artdirector.evaluate import evaluate

    ckpt = tmp_path / "dcgan.ckpt"
    shutil.copyfile(ZOO_DIR / "dcgan.ckpt", ckpt)
    common = ["data=mnist5k", "n_samples=300", "evaluator.kid_subsets=5", "evaluator.kid_subset_size=100"]
    common += ["evaluator.n_bootstrap=2"]  # FID's bootstrap is not under test here
    result = evaluate(make_cfg("evaluate", [f"ckpt={ckpt}", *common], out=tmp_path / "eval"))
    saved = json.loads(ckpt.with_name("dcgan.lenet-300.metrics.json").read_text())
    c = saved["copy_rate"]
    assert c == json.loads(json.dumps(result["copy_rate"]))
    assert 0 <= c["copy_rate"] <= 1 and c["se"] >= 0 and c["threshold"] > 0 and c["quantile"] == 0.01
    assert (c["n_samples"], c["n_train"], c["n_train_total"], c["n_heldout"]) == (300, 3000, 3000, 300)
    assert len(c["closest"]) == 16 and c["feature_network"].startswith("lenet-mnist")
    with Image.open(c["pairs_grid"]) as im:
        assert im.size[0] == 8 * 30 + 2
    # a subsample of the training images is stated, and cached as reference features
    sub = evaluate(
        make_cfg("evaluate", [f"ckpt={ckpt}", *common, "copying.n_train=500"], out=tmp_path / "eval2")
    )["copy_rate"]
    assert sub["n_train"] == 500 and "only 500 of 3000" in sub["note"]
    assert list((tmp_path / "eval2" / "cache" / "reference").glob("mnist5k_train_500_*.pt"))
    off = evaluate(
        make_cfg("evaluate", [f"ckpt={ckpt}", *common, "copying.enabled=false"], out=tmp_path / "e3")
    )
    assert off["copy_rate"] is None


def test_bad_copy_rate_inputs_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="quantile"):
        copy_rate(torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(3, 2), quantile=1.5)
    with pytest.raises(ValueError, match="held-out"):
        copy_rate(torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(0, 2))
