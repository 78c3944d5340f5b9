"""Style edits (artdirector.editing.style) and SDEdit (DiffusionModule.sdedit): targets, each technique on
images whose attributes are known, class kept by the shipped LeNet on real digits, shapes, ranges, replay."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from artdirector.editing import attributes as formulas
from artdirector.editing.guidance import attribute_guidance, soft_attribute
from artdirector.editing.latent import fit_direction, latent_edit
from artdirector.editing.measure import measure_edit
from artdirector.editing.morpho import morpho_edit
from artdirector.editing.style import candidates
from artdirector.editing.targets import (
    StyleError,
    StyleTarget,
    measure_attribute,
    target_for_word,
    targets_from_config,
)
from helpers import TINY_UNET


def bar(width: int, height: int = 16, size: int = 28) -> torch.Tensor:
    """A vertical white bar on black, centred, in [-1, 1]: thickness = width, slant 0."""
    x = -torch.ones(1, 1, size, size)
    top, left = (size - height) // 2, (size - width) // 2
    x[..., top : top + height, left : left + width] = 1.0
    return x


def test_targets_parse_and_say_what_they_are() -> None:
    assert StyleTarget.parse("thickness", "+50%") == StyleTarget("thickness", "relative", 0.5)
    assert StyleTarget.parse("slant", "+15") == StyleTarget("slant", "delta", 15.0)
    assert StyleTarget.parse("slant", "=0") == StyleTarget("slant", "value", 0.0)
    assert StyleTarget.parse("size", -0.1) == StyleTarget("size", "delta", -0.1)
    t = StyleTarget.parse("thickness", "-33%")
    assert torch.allclose(t.goal(torch.tensor([3.0])), torch.tensor([2.01]))
    assert t.describe() == "thickness -33%"
    assert target_for_word("Bold") == StyleTarget("thickness", "relative", 0.5)
    assert [t.attribute for t in targets_from_config({"thickness": "+50%", "slant": "+10"})] == [
        "thickness",
        "slant",
    ]
    for attribute, amount in (("colour", "+5"), ("thickness", "lots"), ("thickness", "-100%")):
        with pytest.raises(StyleError):
            StyleTarget.parse(attribute, amount)
    with pytest.raises(StyleError, match="mapping"):
        targets_from_config("+50%")


def test_the_pixel_edit_reaches_known_thickness_slant_and_size() -> None:
    x = torch.cat([bar(3), bar(4, 18)])
    assert torch.allclose(formulas.thickness(x), torch.tensor([3.0, 4.0]))
    thick, _ = morpho_edit(x, StyleTarget.parse("thickness", "+50%"))
    assert torch.allclose(formulas.thickness(thick), torch.tensor([4.5, 6.0]), atol=0.6)
    slanted, _ = morpho_edit(x, StyleTarget.parse("slant", "+20"))
    assert torch.allclose(formulas.slant(slanted), torch.tensor([20.0, 20.0]), atol=1.5)
    upright, _ = morpho_edit(slanted, StyleTarget.parse("slant", "=0"))
    assert formulas.slant(upright).abs().max() < 1.5
    small, _ = morpho_edit(x, StyleTarget.parse("size", "-25%"))
    assert torch.allclose(formulas.measure(small)["size"], 0.75 * formulas.measure(x)["size"], atol=0.05)
    for out in (thick, slanted, small):
        assert out.shape == x.shape and out.min() >= -1 and out.max() <= 1
    again, _ = morpho_edit(x, StyleTarget.parse("thickness", "+50%"))
    assert torch.equal(again, thick)  # deterministic


def test_soft_attributes_agree_with_the_formulas_on_clean_strokes() -> None:
    x = torch.cat([bar(2), bar(3), bar(5)])
    for name in ("thickness", "slant", "brightness"):
        assert torch.allclose(soft_attribute(x, name), measure_attribute(x, name), atol=0.15), name
    with pytest.raises(StyleError):
        soft_attribute(x, "size")


def test_attribute_guidance_gradient_points_to_the_goal() -> None:
    x = bar(3).repeat(2, 1, 1, 1)
    goal = torch.tensor([5.0, 1.0])  # thicker, thinner
    g = attribute_guidance("thickness", goal, scale=1.0)(x, slice(0, 2))
    step = x - 0.5 * g / g.flatten(1).norm(dim=1).view(-1, 1, 1, 1)  # gradient descent on the loss
    t0, t1 = soft_attribute(x, "thickness"), soft_attribute(step, "thickness")
    assert t1[0] > t0[0] and t1[1] < t0[1]


def test_interfacegan_finds_a_planted_direction_and_moves_along_it() -> None:
    """A toy generator whose bar width is linear in z . u: the fitted normal is u, and the edit hits the
    goal within the clip."""
    u = torch.nn.functional.normalize(torch.randn(8, generator=torch.Generator().manual_seed(1)), dim=0)

    def render(z: torch.Tensor, labels=None) -> torch.Tensor:
        width = (6 + 1.5 * (z @ u)).clamp(1, 12)
        cols = torch.arange(28).float()
        on = ((cols - 14).abs() < width.view(-1, 1) / 2).float()  # (N, 28): soft edges -> exact widths
        img = on.view(-1, 1, 1, 28).expand(-1, 1, 28, 28).clone()
        img[..., :6, :] = 0
        img[..., 22:, :] = 0
        return img * 2 - 1

    d = fit_direction(render, 8, "thickness", n=400)
    assert float(d.normal @ u) > 0.95 and d.r2 > 0.8
    z = 0.5 * torch.randn(64, 8, generator=torch.Generator().manual_seed(2))
    x = render(z)
    target = StyleTarget.parse("thickness", "+2")
    a0 = measure_attribute(x, "thickness")
    z2, info = latent_edit(z, a0, target.goal(a0), d, max_alpha=3.0)
    result = measure_edit(x, render(z2), target)
    assert result["met"], result["summary"]
    assert info["clipped"] == 0.0
    # a request beyond the clip is not met, and says so
    z3, info = latent_edit(z, a0, a0 + 50, d, max_alpha=1.0)
    assert info["clipped"] == 1.0
    assert not measure_edit(x, render(z3), StyleTarget.parse("thickness", "+50"))["met"]


@pytest.fixture(scope="module")
def real_digits() -> tuple[torch.Tensor, torch.Tensor]:
    from importlib.resources import files

    data = np.load(str(files("artdirector.data") / "mnist5k.npz"))
    pick = np.arange(0, len(data["labels"]), 16)[:300]  # the file is sorted by class: every 16th digit
    x = torch.tensor(data["images"][pick]).float().view(-1, 1, 28, 28) / 127.5 - 1
    return x, torch.tensor(data["labels"][pick]).long()


def test_style_edits_keep_the_class_of_real_digits(real_digits) -> None:
    """On a trained model (the shipped LeNet) the pixel edits move the attribute as asked and keep the class:
    within 3 points at this n = 300 (1 point is 3 images). With the LeNet retrained on the train split only,
    slanting +15 degrees loses 7 of 300 (98.7 -> 96.3 %), so the action's own check, at 1 point, can fail;
    the independent judge reads the edits differently again (thick -2.3, large -4.4 points)."""
    from artdirector.evaluation.features import LeNetFeatures

    lenet = LeNetFeatures("mnist")

    def classify(images: torch.Tensor) -> torch.Tensor:
        return lenet.logits_from_features(lenet(images)).argmax(1)

    x, y = real_digits
    for word in ("thick", "slanted", "large"):
        target = target_for_word(word)
        out, _ = morpho_edit(x, target)
        r = measure_edit(x, out, target, classify, labels=y)
        assert r["moved"], r["summary"]
        assert r["conformance"]["before"] > 0.97
        assert r["conformance"]["after"] >= r["conformance"]["before"] - 0.03, r["summary"]


def test_a_class_change_is_caught(real_digits) -> None:
    x, y = real_digits
    target = StyleTarget.parse("brightness", "-5%")
    answers = iter([y, torch.where(torch.arange(len(y)) < 10, (y + 1) % 10, y)])  # 10 of 300 change
    r = measure_edit(x, x, target, classify=lambda im: next(answers), labels=y)
    assert r["conformance"]["before"] - r["conformance"]["after"] == pytest.approx(10 / 300)
    assert not r["class_kept"] and not r["met"]


def test_a_drop_of_exactly_the_limit_keeps_the_class() -> None:
    """5 of 500 images changing class is a drop of exactly 1 point: within max_conformance_drop=0.01, however
    the rates round (in float32, 0.998 - 0.988 reads 0.0100000501)."""
    x = torch.full((500, 1, 28, 28), -1.0)
    x[:, :, 10:18, 12:16] = 1.0
    y = torch.zeros(500, dtype=torch.long)
    before, after = y.clone(), y.clone()
    before[:1], after[:6] = 1, 1  # 499 -> 494 of 500 right
    r = measure_edit(x, x, StyleTarget.parse("brightness", "-5%"), labels=y, predicted=(before, after))
    assert r["conformance"]["before"] - r["conformance"]["after"] == pytest.approx(0.01)
    assert r["class_kept"]


def test_candidates_follow_the_creators_capabilities() -> None:
    assert candidates({"latent", "critic"}, "thickness") == ["latent", "morpho"]
    assert candidates({"guidance", "steps"}, "thickness") == ["guidance", "morpho"]
    assert candidates({"guidance", "steps"}, "size") == ["morpho"]
    assert candidates(set(), "slant", "morpho") == ["morpho"]
    with pytest.raises(StyleError, match="cannot move size"):
        candidates({"guidance"}, "size", "guidance")


# ---- diffusion: SDEdit and attribute guidance on a tiny UNet -------------------------------------------
@pytest.fixture(scope="module")
def tiny_diffusion(tmp_path_factory):
    from hydra.utils import instantiate

    from conftest import compose_cfg

    cfg = compose_cfg("train", ["data=fake", *TINY_UNET, "model.steps=4"], tmp_path_factory.mktemp("ddpm"))
    torch.manual_seed(0)
    model = instantiate(cfg.model, _recursive_=False)
    with torch.no_grad():
        for p in model.backbone.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.ema.module.load_state_dict(model.backbone.state_dict())
    return model.eval()


def test_sdedit_at_strength_zero_returns_the_input_and_replays(tiny_diffusion) -> None:
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    labels = torch.tensor([0, 1, 2, 3])
    assert torch.equal(tiny_diffusion.sdedit(x, labels, strength=0.0), x)
    a = tiny_diffusion.sdedit(x, labels, strength=0.5, seed=3, steps=4)
    b = tiny_diffusion.sdedit(x, labels, strength=0.5, seed=3, steps=4)
    assert torch.equal(a, b) and a.shape == x.shape and a.min() >= -1 and a.max() <= 1
    assert not torch.equal(a, x)
    # more strength: further from the input
    weak = tiny_diffusion.sdedit(x, labels, strength=0.25, seed=3, steps=4)
    strong = tiny_diffusion.sdedit(x, labels, strength=1.0, seed=3, steps=4)
    assert (weak - x).pow(2).mean() < (strong - x).pow(2).mean()
    with pytest.raises(ValueError, match=r"strength must be in \[0, 1\]"):
        tiny_diffusion.sdedit(x, labels, strength=1.5)


def test_attribute_guidance_in_sampling_is_paired_and_moves_the_attribute(tiny_diffusion) -> None:
    labels = torch.arange(6) % 10
    plain = tiny_diffusion.sample(labels=labels, seed=0, steps=4, sampler="ddim")
    goal = torch.full((6,), 1.0)  # brighter ink
    guided = tiny_diffusion.sample(
        labels=labels, seed=0, steps=4, sampler="ddim", x0_grad=attribute_guidance("brightness", goal, 50.0)
    )
    again = tiny_diffusion.sample(
        labels=labels, seed=0, steps=4, sampler="ddim", x0_grad=attribute_guidance("brightness", goal, 50.0)
    )
    assert torch.equal(guided, again) and guided.shape == plain.shape
    b0 = soft_attribute(plain, "brightness").mean()
    b1 = soft_attribute(guided, "brightness").mean()
    assert not math.isnan(float(b1)) and b1 > b0
