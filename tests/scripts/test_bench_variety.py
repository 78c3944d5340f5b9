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
