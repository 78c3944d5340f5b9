"""scripts/bench_variety.py: the variety and LeNet-read conformance of a conditional GAN's samples at a latent
scale, per class; a zero scale draws one image per class (variety 0), the prior draws varied ones."""

from __future__ import annotations

import pytest
import torch

from artdirector.creators import load_creator
from artdirector.evaluation import LeNetFeatures
from helpers import TINY_CGAN, build_model, load_script, save_checkpoint


@pytest.fixture(scope="module")
def bench_variety():
    return load_script("bench_variety")


def test_scale_zero_is_one_image_per_class_and_the_prior_varies(bench_variety, make_cfg, tmp_path) -> None:
    creator = load_creator(save_checkpoint(build_model(make_cfg, TINY_CGAN), tmp_path / "cgan.ckpt"))
    g = torch.Generator().manual_seed(0)
    real_x, real_y = torch.rand(60, 1, 28, 28, generator=g) * 2 - 1, torch.arange(10).repeat(6)
    lenet = LeNetFeatures("mnist")
    flat = bench_variety.measure(creator, lenet, real_x, real_y, scale=0.0, n_per_class=5, seed=0)
    prior = bench_variety.measure(creator, lenet, real_x, real_y, scale=1.0, n_per_class=5, seed=0)
    assert len(flat["variety"]) == len(flat["conformance"]) == 10
    assert all(v == 0 for v in flat["variety"]) and all(v > 0 for v in prior["variety"])
    # conformance is a share of each class's 5 samples: one image drawn 5 times is read one way
    assert all(c in (0.0, 1.0) for c in flat["conformance"])
    assert all(0 <= c <= 1 for c in prior["conformance"])


def test_the_scale_rule_takes_the_smallest_scale_that_reaches_the_target_within_the_conformance_drop(
    bench_variety,
) -> None:
    # class 0 reaches 0.85 at 1.2; class 1 reaches it at 1.1 only by losing 0.10 of conformance, so it
    # stays at the largest scale within the drop (1.0); class 2 already reaches it
    measured = {
        1.0: {"variety": [0.78, 0.80, 0.90], "conformance": [0.97, 0.90, 0.99]},
        1.1: {"variety": [0.82, 0.86, 0.95], "conformance": [0.96, 0.80, 0.99]},
        1.2: {"variety": [0.86, 0.90, 0.99], "conformance": [0.95, 0.70, 0.98]},
    }
    assert bench_variety.choose_scales([1.0, 1.1, 1.2], measured, 0.85, 0.02) == [1.2, 1.0, 1.0]
    # a class that never reaches the target within the drop gets the largest scale allowed (0); one that
    # reaches it further up moves there (2)
    assert bench_variety.choose_scales([1.0, 1.1, 1.2], measured, 0.95, 0.02) == [1.2, 1.0, 1.1]
