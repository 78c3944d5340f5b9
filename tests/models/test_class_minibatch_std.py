"""The within-class minibatch standard deviation map (models/nets/class_minibatch_std.py) and the conditional
discriminator that reads it: each image gets the spread of its own class in the batch, nothing from other
classes, and the cgan recipe trains with it in both update rules."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from artdirector.models.nets import SNProjectionDiscriminator
from artdirector.models.nets.class_minibatch_std import class_minibatch_std
from helpers import TINY_CGAN, fit_steps

EPS = 1e-8


def test_each_image_gets_the_spread_of_its_own_class() -> None:
    h = torch.zeros(5, 2, 3, 3)
    h[0], h[1] = 0.0, 2.0  # class 0: mean 1, every feature 1 away: std 1
    h[2], h[3] = 5.0, 5.0  # class 1: two identical images: no spread
    h[4] = 7.0  # class 2 once: nothing to spread over
    y = torch.tensor([0, 0, 1, 1, 2])
    out = class_minibatch_std(h, y, num_classes=4)
    assert out.shape == (5, 3, 3, 3)
    assert torch.equal(out[:, :2], h)  # the features pass through
    stat = out[:, 2]
    assert torch.allclose(stat[:2], torch.ones(2, 3, 3))
    assert torch.allclose(stat[2:], torch.full((3, 3, 3), EPS**0.5))


def test_collapse_within_a_class_is_visible_where_a_mixed_batch_hides_it() -> None:
    """Two batches with the same spread over the whole batch: in one, each class varies; in the other, each
    class is one image repeated. The within-class map tells them apart."""
    torch.manual_seed(0)
    varied = torch.randn(8, 4, 2, 2)
    y = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    collapsed = torch.cat([varied[:1].expand(4, -1, -1, -1), varied[4:5].expand(4, -1, -1, -1)])
    spread_varied = class_minibatch_std(varied, y, 2)[:, -1].mean()
    spread_collapsed = class_minibatch_std(collapsed, y, 2)[:, -1].mean()
    assert spread_collapsed < 1e-3 < 0.5 < spread_varied


def _d(minibatch_std: bool) -> SNProjectionDiscriminator:
    torch.manual_seed(0)
    return SNProjectionDiscriminator(base_channels=8, minibatch_std=minibatch_std).eval()


def test_the_discriminator_reads_its_own_class_and_no_other() -> None:
    torch.manual_seed(1)
    x = torch.rand(6, 1, 28, 28) * 2 - 1
    y = torch.tensor([0, 0, 0, 1, 1, 1])
    other_class, same_class = x.clone(), x.clone()
    other_class[4] = -other_class[4]  # an image of class 1 changes
    same_class[1] = -same_class[1]  # an image of class 0 changes
    with torch.no_grad():
        d = _d(minibatch_std=True)
        base = d(x, y)
        assert torch.equal(d(other_class, y)[0], base[0])  # image 0 (class 0): unmoved by class 1
        assert not torch.allclose(d(same_class, y)[0], base[0])  # moved by its own class
        plain = _d(minibatch_std=False)
        assert torch.equal(plain(same_class, y)[0], plain(x, y)[0])  # off: each image on its own


def test_features_without_labels_is_a_one_line_error() -> None:
    with pytest.raises(ValueError, match=r"minibatch_std reads the labels: call features\(x, labels\)"):
        _d(minibatch_std=True).features(torch.zeros(2, 1, 28, 28))


@pytest.mark.parametrize("rule", ["alternating", "simultaneous"])
def test_the_cgan_recipe_trains_with_it(make_cfg, rule) -> None:
    """Both update rules, and mode seeking in D's feature space (which then passes the labels on)."""
    cfg = make_cfg(
        "train",
        [
            *TINY_CGAN,
            "model.discriminator.minibatch_std=true",
            f"model.update_rule={rule}",
            "model.mode_seeking=1",
            "model.mode_seeking_space=critic",
        ],
    )
    model = instantiate(cfg.model, _recursive_=False)
    assert model.discriminator.minibatch_std
    trainer = fit_steps(model, instantiate(cfg.data), steps=4)
    metrics = trainer.callback_metrics
    assert all(torch.isfinite(metrics[k]) for k in ("train/d_loss", "train/g_loss", "train/mode_seeking"))
    assert model.discriminator.convs[-1].in_channels == 4 * 8 + 1
