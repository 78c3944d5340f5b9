"""DiffAugment (Zhao et al. 2020) and the data card's decisions in training: conditional models need labels,
``model.diffaugment=auto`` follows the train split's size, and debug runs stay fast."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from artdirector.errors import ConfigError
from artdirector.models.diffaugment import POLICIES, diff_augment, parse_policy
from artdirector.models.gan import GANModule
from artdirector.train import train
from helpers import TINY, TINY_MODEL, fit_steps, straight_and_resumed


def _batch(n: int = 8, c: int = 1, size: int = 28, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, c, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# ---- the augmentation -----------------------------------------------------------------------------------
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("policy", [*POLICIES, "color,translation,cutout"])
def test_shapes_kept_and_translation_cutout_stay_in_range(policy, channels) -> None:
    x = _batch(c=channels)
    torch.manual_seed(0)
    out = diff_augment(x, policy)
    assert out.shape == x.shape and out.dtype == x.dtype and torch.isfinite(out).all()
    if "color" not in policy:  # zero padding and zeroed squares stay inside [-1, 1]
        assert out.min() >= -1 and out.max() <= 1


def test_colour_on_grey_is_a_per_image_affine_map_within_the_papers_bounds() -> None:
    x = _batch(n=16)
    torch.manual_seed(1)
    out = diff_augment(x, "color")
    for xi, oi in zip(x, out, strict=True):
        # brightness + contrast (no saturation for one channel): out = a * x + b, a in [0.5, 1.5]
        a = (oi - oi.mean()).flatten() @ (xi - xi.mean()).flatten() / (xi - xi.mean()).pow(2).sum()
        assert 0.5 - 1e-5 <= a <= 1.5 + 1e-5
        torch.testing.assert_close(oi, a * xi + (oi.mean() - a * xi.mean()), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("policy", [*POLICIES, "color,translation,cutout"])
def test_gradients_flow_through_every_policy(policy) -> None:
    x = _batch(c=3).requires_grad_(True)
    torch.manual_seed(2)
    diff_augment(x, policy).pow(2).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_same_seed_same_augmentation_and_the_global_rng_is_the_source() -> None:
    x = _batch(c=3)
    torch.manual_seed(3)
    a = diff_augment(x, "color,translation,cutout")
    torch.manual_seed(3)
    b = diff_augment(x, "color,translation,cutout")
    c = diff_augment(x, "color,translation,cutout")  # the RNG moved on: other draws
    assert torch.equal(a, b) and not torch.equal(a, c)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(
        diff_augment(x, "translation", generator=g1), diff_augment(x, "translation", generator=g2)
    )


def test_translation_and_cutout_change_images_as_the_paper_says() -> None:
    x = _batch(n=64)
    torch.manual_seed(4)
    shifted = diff_augment(x, "translation")
    assert (shifted != x).flatten(1).any(1).float().mean() > 0.9  # (the 1/81 unshifted draws aside)
    # a translated image is the original shifted by at most 28/8 = 4 pixels, zeros shifted in
    for xi, si in zip(x, shifted, strict=True):
        found = False
        for dy in range(-4, 5):
            for dx in range(-4, 5):
                padded = torch.nn.functional.pad(xi, [4, 4, 4, 4])
                if torch.equal(padded[:, 4 + dy : 32 + dy, 4 + dx : 32 + dx], si):
                    found = True
        assert found
    torch.manual_seed(5)
    cut = diff_augment(x, "cutout")
    zeroed = (cut == 0) & (x != 0)
    kept = cut == x
    assert (zeroed | kept).all()  # cutout only zeroes pixels
    per_image = zeroed.flatten(1).sum(1)
    assert per_image.min() > 0 and per_image.max() <= 14 * 14  # one square of half the side, maybe clipped
    assert per_image.float().mean() > 0.5 * 14 * 14


def test_the_empty_policy_is_the_identity_and_draws_nothing() -> None:
    x = _batch()
    state = torch.get_rng_state()
    assert diff_augment(x, "") is x and diff_augment(x, ()) is x
    assert torch.equal(torch.get_rng_state(), state)
    assert parse_policy(" color , cutout ") == ("color", "cutout") and parse_policy(None) == ()


def test_an_unknown_policy_is_a_config_error_naming_the_key(make_cfg) -> None:
    from hydra.utils import instantiate

    from artdirector.errors import find_user_error

    cfg = make_cfg("train", [*TINY, "model.diffaugment=colour"])
    with pytest.raises(Exception) as err:  # Hydra wraps it; the user error is its cause
        instantiate(cfg.model, _recursive_=False)
    user = find_user_error(err.value)
    assert isinstance(user, ConfigError) and "\n" not in str(user)
    assert "model.diffaugment" in str(user) and "'colour'" in str(user)


def test_the_gan_module_augments_real_and_fake_in_both_steps(make_cfg) -> None:
    """D sees augmented images in the D step and the G step (counted through a spy on D's input)."""
    from hydra.utils import instantiate

    for rule, d_calls in (("simultaneous", 2), ("alternating", 3)):
        cfg = make_cfg("train", [*TINY, f"model.update_rule={rule}", "model.diffaugment=cutout"])
        model: GANModule = instantiate(cfg.model, _recursive_=False)
        assert model.hparams.diffaugment == "cutout" and model.diffaugment == ("cutout",)
        seen: list[torch.Tensor] = []
        model.discriminator.register_forward_pre_hook(
            lambda _m, args, seen=seen: seen.append(args[0].detach())
        )
        fit_steps(model, instantiate(cfg.data), steps=2)
        assert len(seen) == d_calls
        for x in seen:  # every D input carries zeroed squares (cutout) in every image
            assert ((x == 0).flatten(1).sum(1) > 0).all()


# ---- training reads the data card -----------------------------------------------------------------------
def _flat_folder(root: Path, n: int = 30) -> Path:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (28, 28), dtype=np.uint8)).save(root / f"{i}.png")
    return root


def test_a_conditional_gan_on_unlabelled_images_is_one_line(make_cfg, tmp_path) -> None:
    folder = _flat_folder(tmp_path / "flat")
    overrides = [*TINY_MODEL, "model=cdcgan", "data=image_folder", f"data.path={folder}", "debug=fdr"]
    with pytest.raises(ConfigError, match=r"class-conditional.*no labels") as err:
        train(make_cfg("train", overrides))
    assert "\n" not in str(err.value) and "subfolder per class" in str(err.value)


def test_auto_turns_diffaugment_on_for_a_small_train_split_and_says_why(make_cfg, tmp_path) -> None:
    overrides = [*TINY, "model.diffaugment=auto", "trainer.max_epochs=1", "callbacks.fid.every_n_epochs=5"]
    train(make_cfg("train", overrides, out=tmp_path / "small"))
    run = json.loads((tmp_path / "small" / "run.json").read_text())
    aug = run["diffaugment"]
    assert aug["setting"] == "auto" and aug["on"] and aug["policy"] == "color,translation,cutout"
    assert aug["train_images"] == 128 and aug["threshold"] == 10000 and "fewer than" in aug["reason"]
    card = run["data_card"]
    assert card["mode"] == "full" and card["n_per_split"]["train"] == 128 and card["has_labels"]
    assert "mean" in card["fid_floor"] and (tmp_path / "small" / "data_card.json").is_file()
    ckpt = torch.load(
        tmp_path / "small" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False
    )
    assert ckpt["hyper_parameters"]["diffaugment"] == "color,translation,cutout"  # the decision, saved
    # above the threshold: off, and the card came from the cache (same data, same cache dir)
    train(make_cfg("train", [*overrides, "diffaugment_below=100"], out=tmp_path / "big"))
    run = json.loads((tmp_path / "big" / "run.json").read_text())
    assert not run["diffaugment"]["on"] and run["diffaugment"]["policy"] == ""
    assert "at least diffaugment_below=100" in run["diffaugment"]["reason"]


def test_the_card_leaves_the_rng_alone_so_the_seed_recipe_is_unchanged(make_cfg, tmp_path) -> None:
    weights = []
    for name, prepare in (("with", "true"), ("without", "false")):
        overrides = [*TINY, f"prepare={prepare}", "seed=5", "callbacks.fid.every_n_epochs=5"]
        train(make_cfg("train", overrides, out=tmp_path / name))
        ckpt = tmp_path / name / "checkpoints" / "last.ckpt"
        weights.append(torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"])
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    run = json.loads((tmp_path / "without" / "run.json").read_text())
    assert run["data_card"] is None and run["diffaugment"]["reason"] == "off in the config"


def test_debug_fdr_on_fake_data_uses_the_quick_card(make_cfg, tmp_path) -> None:
    train(make_cfg("train", [*TINY_MODEL, "data=fake", "data.batch_size=32", "debug=fdr"]))
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["global_step"] == 2
    assert run["data_card"]["mode"] == "quick" and "skipped" in run["data_card"]["fid_floor"]
    assert run["data_card"]["n_per_split"] == {"train": 512, "selection": 128, "report": 256}


def test_resume_with_diffaugment_is_exact(make_cfg, tmp_path) -> None:
    """The augmentations come from torch's RNG, whose state the checkpoint carries: 1 + 1 epochs = 2."""
    base = [*TINY, "model.diffaugment='color,translation,cutout'", "seed=3", "callbacks.fid.every_n_epochs=5"]
    straight_ckpt, _, resumed_ckpt = straight_and_resumed(make_cfg, base, tmp_path)
    straight, resumed = (
        torch.load(c, map_location="cpu", weights_only=False)["state_dict"]
        for c in (straight_ckpt, resumed_ckpt)
    )
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


# ---- the director reads the card --------------------------------------------------------------------------
def test_report_split_warnings_follow_the_request() -> None:
    from artdirector.agent import report_split_warnings

    card = {
        "splits": {"report": {"n": 1000}},
        "n_per_class_by_split": {"report": {str(c): 100 for c in range(10)}},
    }
    assert report_split_warnings(card, n=1000, n_real=1000) == []
    small = report_split_warnings(card, n=1000, n_real=5000)
    assert len(small) == 1 and "fewer than n_real=5,000" in small[0]
    seven = report_split_warnings(card, n=1000, n_real=1000, classes=(7,))
    assert len(seven) == 3 and all("classes 7" in w for w in seven) and "100 images (< 1,000)" in seven[2]


def test_the_director_puts_the_card_and_its_warnings_in_the_trace_config(make_cfg, tmp_path) -> None:
    from artdirector.agent import build

    cfg = make_cfg("agent", ["data=mnist5k", "n=300", "n_real=5000", "budget.steps=0", "device=cpu"])
    director, _, _ = build(cfg)
    entry = director.config["data_card"]
    assert entry["n_per_split"] == {"train": 3000, "selection": 1000, "report": 1000}
    assert entry["has_labels"] and entry["fid_floor"]["n"] == 1000 and "mean" in entry["fid_floor"]
    assert any("fewer than n_real=5,000" in w for w in entry["warnings"])
    json.dumps(director.config)  # trace.json takes it as it is
