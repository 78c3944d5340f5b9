"""The networks follow the data's shape: the seed DCGAN stays exactly the seed's at 28x28x1, the same
family builds at 32 and 64 pixels and 3 channels, the diffusion backbones take the data's shape, checkpoints
know their shape, and what only reads 28x28 grey says so in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from PIL import Image
from torch import nn

from artdirector.errors import ConfigError, InputError, find_user_error
from artdirector.evaluation import Evaluator, LeNetFeatures
from artdirector.models.checkpoint import load_module
from artdirector.models.nets import ConditionalGenerator, Discriminator, Generator, ProjectionDiscriminator
from artdirector.models.nets.dcgan import stages
from artdirector.train import train
from helpers import TINY_DIT, TINY_UNET, save_checkpoint

REPO = Path(__file__).resolve().parents[2]

# ---- the seed at 28x28x1, recorded before the networks learned other shapes ---------------------------
SEED_GENERATOR = {
    "project.0.weight": (12544, 100),
    "project.1.weight": (12544,),
    "project.1.bias": (12544,),
    "project.1.running_mean": (12544,),
    "project.1.running_var": (12544,),
    "project.1.num_batches_tracked": (),
    "upsample.0.weight": (256, 128, 5, 5),
    "upsample.1.weight": (128,),
    "upsample.1.bias": (128,),
    "upsample.1.running_mean": (128,),
    "upsample.1.running_var": (128,),
    "upsample.1.num_batches_tracked": (),
    "upsample.3.weight": (128, 64, 5, 5),
    "upsample.4.weight": (64,),
    "upsample.4.bias": (64,),
    "upsample.4.running_mean": (64,),
    "upsample.4.running_var": (64,),
    "upsample.4.num_batches_tracked": (),
    "upsample.6.weight": (64, 1, 5, 5),
}
SEED_DISCRIMINATOR = {
    "features.0.weight": (64, 1, 5, 5),
    "features.0.bias": (64,),
    "features.3.weight": (128, 64, 5, 5),
    "features.3.bias": (128,),
    "head.weight": (1, 6272),
    "head.bias": (1,),
}
SEED_CONDITIONAL_GENERATOR = {**SEED_GENERATOR, "project.0.weight": (12544, 150), "embed.weight": (10, 50)}
SEED_PROJECTION_DISCRIMINATOR = {**SEED_DISCRIMINATOR, "embed.weight": (10, 6272)}
SEED_PARAMETERS = {
    Generator: 2_305_472,
    Discriminator: 212_865,
    ConditionalGenerator: 2_933_172,
    ProjectionDiscriminator: 275_585,
}
SEED_SHAPES = {
    Generator: SEED_GENERATOR,
    Discriminator: SEED_DISCRIMINATOR,
    ConditionalGenerator: SEED_CONDITIONAL_GENERATOR,
    ProjectionDiscriminator: SEED_PROJECTION_DISCRIMINATOR,
}


def shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("cls", list(SEED_SHAPES))
def test_the_28x28x1_networks_are_the_seed_parameter_for_parameter(cls) -> None:
    for net in (cls(), cls(channels=1, image_size=28)):
        assert shapes(net) == SEED_SHAPES[cls]  # same keys, same order, same shapes
        assert n_params(net) == SEED_PARAMETERS[cls]


def test_the_28x28x1_forward_is_the_seed_layers() -> None:
    """The seed's layers written out by hand, loaded with the family's state dict: the same images."""
    slope = 0.3

    def bn(c, dims=2):
        return (nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d)(c, eps=1e-3, momentum=0.01)

    class SeedG(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.project = nn.Sequential(
                nn.Linear(100, 7 * 7 * 256, bias=False), bn(12544, 1), nn.LeakyReLU(slope)
            )
            self.upsample = nn.Sequential(
                nn.ConvTranspose2d(256, 128, 5, 1, 2, bias=False),
                bn(128),
                nn.LeakyReLU(slope),
                nn.ConvTranspose2d(128, 64, 5, 2, 2, 1, bias=False),
                bn(64),
                nn.LeakyReLU(slope),
                nn.ConvTranspose2d(64, 1, 5, 2, 2, 1, bias=False),
                nn.Tanh(),
            )

        def forward(self, z):
            return self.upsample(self.project(z).view(-1, 256, 7, 7))

    seed_d = nn.Sequential(
        nn.Conv2d(1, 64, 5, 2, 2),
        nn.LeakyReLU(slope),
        nn.Conv2d(64, 128, 5, 2, 2),
        nn.LeakyReLU(slope),
        nn.Flatten(),
    )
    torch.manual_seed(0)
    g, d = Generator().eval(), Discriminator().eval()
    ref_g = SeedG().eval()
    ref_g.load_state_dict(g.state_dict())
    z = torch.randn(6, 100)
    assert g(z).shape == (6, 1, 28, 28)
    torch.testing.assert_close(g(z), ref_g(z), rtol=1e-4, atol=1e-5)
    seed_d.load_state_dict({k.replace("3.", "2."): v for k, v in d.features.state_dict().items()})
    x = torch.rand(6, 1, 28, 28) * 2 - 1
    torch.testing.assert_close(d(x), d.head(seed_d(x)).squeeze(1), rtol=1e-4, atol=1e-5)


def test_model_configs_build_the_seed_on_mnist(make_cfg) -> None:
    for model in ("dcgan", "cdcgan"):
        cfg = make_cfg("train", [f"model={model}", "data=mnist5k"])
        gan = instantiate(cfg.model, _recursive_=False)
        cls_g, cls_d = type(gan.generator), type(gan.discriminator)
        assert shapes(gan.generator) == SEED_SHAPES[cls_g] and shapes(gan.discriminator) == SEED_SHAPES[cls_d]
        assert gan.image_shape == (1, 28, 28)


# ---- the same family at 32 and 64 pixels, grey and colour --------------------------------------------
@pytest.mark.parametrize(("size", "channels"), [(32, 1), (32, 3), (64, 3)])
@pytest.mark.parametrize("conditional", [False, True])
def test_the_family_builds_and_runs_at_other_shapes(size, channels, conditional) -> None:
    torch.manual_seed(0)
    kw = {"channels": channels, "image_size": size}
    if conditional:
        g = ConditionalGenerator(base_channels=32, **kw)
        d = ProjectionDiscriminator(base_channels=8, **kw)
        y = torch.tensor([0, 3, 9])
    else:
        g, d = Generator(base_channels=32, **kw), Discriminator(base_channels=8, **kw)
        y = None
    assert g.image_shape == d.image_shape == (channels, size, size)
    args = (y,) if conditional else ()
    x = g.eval()(torch.randn(3, 100) * 10, *args)  # large z: tanh still bounds it
    assert x.shape == (3, channels, size, size) and x.min() >= -1 and x.max() <= 1
    logits = d.train()(x, *args)
    assert logits.shape == (3,) and torch.isfinite(logits).all()
    logits.sum().backward()  # the gradient reaches G's first layer through D and the whole G
    assert g.project[0].weight.grad is not None and g.project[0].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=f"{size}, {size}"):
        d(torch.zeros(3, channels, 28, 28), *args)  # the seed's size is the wrong one here


@pytest.mark.parametrize(
    ("size", "start", "sizes"), [(28, 7, [7, 14, 28]), (32, 4, [4, 8, 16, 32]), (64, 4, [4, 8, 16, 32, 64])]
)
def test_one_more_stride_2_stage_per_doubling(size, start, sizes) -> None:
    """Radford et al.: 4 -> 8 -> 16 -> 32 -> 64; the seed's 7 -> 14 -> 28 at 28. Channels halve at every
    doubling down to base/4 before the image; D mirrors it, doubling from base."""
    g = Generator(channels=3, image_size=size, base_channels=64)
    assert stages(size) == (start, len(sizes) - 1)
    h = g.project(torch.randn(2, 100)).view(2, g.c, start, start)
    seen = [start]
    widths = [g.c]
    for m in g.upsample:
        h = m(h)
        if isinstance(m, nn.ConvTranspose2d):
            widths.append(h.shape[1])
            if h.shape[-1] != seen[-1]:
                seen.append(h.shape[-1])
    assert seen == sizes and widths[-1] == 3 and widths[-2] == 16  # base / 4 before the image
    assert widths[:2] == [64 * 2 ** (len(sizes) - 3), 32 * 2 ** (len(sizes) - 3)]  # stride-1 stage halves
    d = Discriminator(channels=3, image_size=size, base_channels=8)
    convs = [m for m in d.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8 * 2**i for i in range(len(sizes) - 1)]
    assert d.head.in_features == convs[-1].out_channels * start * start


@pytest.mark.parametrize("size", [8, 14, 30, 48, 100])
def test_sizes_the_family_cannot_build_are_one_line_config_errors(size) -> None:
    for cls in (Generator, Discriminator):
        with pytest.raises(ConfigError, match="image_size") as err:
            cls(image_size=size)
        assert "\n" not in str(err.value)


# ---- the configs take the shape from the data ----------------------------------------------------------
def _png(path: Path, rng: np.random.Generator, size=(40, 36)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """48 random RGB PNGs in two class folders (5 selection, 5 report images)."""
    root = tmp_path_factory.mktemp("shapes") / "imgs"
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        for i in range(24):
            _png(root / name / f"{i}.png", rng)
    return root


TINY_GAN = ["model.generator.base_channels=16", "model.discriminator.base_channels=8"]
TINY = {
    "dcgan": ["model=dcgan", *TINY_GAN],
    "cdcgan": ["model=cdcgan", *TINY_GAN],
    "ddpm": [*TINY_UNET, "model.steps=2"],
    "dit": [*TINY_DIT, "model.steps=2"],
}


def _folder_data(folder: Path, size: int, channels: int) -> list[str]:
    return [
        "data=image_folder",
        f"data.path={folder}",
        f"data.image_size={size}",
        f"data.channels={channels}",
    ]


@pytest.mark.parametrize("name", list(TINY))
def test_model_configs_follow_the_data(make_cfg, folder, name) -> None:
    cfg = make_cfg("train", [*TINY[name], *_folder_data(folder, 64, 3)])
    model = instantiate(cfg.model, _recursive_=False)
    assert tuple(model.image_shape) == (3, 64, 64)
    if name.endswith("gan"):
        images = model.sample(2)
        labels = model.default_labels(2)
        assert images.shape == (2, 3, 64, 64) and model.discriminate(images, labels).shape == (2,)
    else:
        backbone = model.backbone.config
        assert (backbone.sample_size, backbone.in_channels, backbone.out_channels) == (64, 3, 3)
        assert model.sample(2, steps=1).shape == (2, 3, 64, 64)


def _config_error(make_cfg, overrides: list[str]) -> str:
    """The one-line ConfigError that building the model raises (Hydra wraps it; the CLI prints it alone)."""
    with pytest.raises(Exception) as err:
        instantiate(make_cfg("train", overrides).model, _recursive_=False)
    user = find_user_error(err.value)
    assert isinstance(user, ConfigError), err.value
    assert "\n" not in str(user)
    return str(user)


def test_diffusion_backbones_that_do_not_fit_the_size_are_one_line(make_cfg, folder) -> None:
    dit = [*TINY_DIT, "model.backbone.patch_size=3", *_folder_data(folder, 32, 3)]
    assert "patch_size=3 must divide the image size 32" in _config_error(make_cfg, dit)
    unet = [*TINY_UNET, "model.backbone.block_out_channels=[8,8,8,8]", *_folder_data(folder, 28, 1)]
    assert "multiple of 8" in _config_error(make_cfg, unet)
    assert "sample_size=32" in _config_error(make_cfg, [*TINY_UNET, "model.backbone.sample_size=32"])


# ---- what reads only 28x28 grey says so ------------------------------------------------------------------
def test_the_lenet_evaluator_says_to_use_inception_for_other_shapes() -> None:
    ev = Evaluator(LeNetFeatures("mnist"), name="lenet", kid_subsets=2, kid_subset_size=10)
    for bad in (torch.zeros(4, 3, 32, 32), torch.zeros(4, 1, 32, 32), torch.zeros(4, 3, 28, 28)):
        with pytest.raises(InputError, match="evaluator=fid_inception") as err:
            ev.features(bad)
        assert "\n" not in str(err.value)


# ---- a 32x32x3 folder trains with every creator; checkpoints know their shape ------------------------------
# the Inception FID on 8 samples: no bootstrap replicates (each is a 2048-d matrix square root)
CHEAP_FID = [
    "evaluator=fid_inception",
    "callbacks.fid.n_samples=8",
    "evaluator.n_bootstrap=0",
    "evaluator.kid_subsets=2",
]


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "train.py"),
            *args,
            f"hydra.run.dir={cwd}",
            f"paths.cache_dir={cwd}/cache",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def test_dcgan_trains_on_a_32x32x3_folder_and_the_lenet_fid_is_one_line(folder, tmp_path) -> None:
    base = [*TINY["dcgan"], *_folder_data(folder, 32, 3), "trainer=cpu", "debug=fdr"]
    ok = _run(*base, *CHEAP_FID, cwd=tmp_path / "ok")
    assert ok.returncode == 0, ok.stderr[-3000:]
    grids = sorted((tmp_path / "ok" / "grids").glob("*.png"))
    assert grids and Image.open(grids[-1]).mode == "RGB"
    # the default evaluator (auto) follows the data; an explicit LeNet on RGB images is a one-line error
    bad = _run(*base, "evaluator=fid_lenet", "callbacks.fid.n_samples=8", cwd=tmp_path / "lenet")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr[-3000:]
    assert "evaluator=fid_inception" in bad.stderr and "3x32x32" in bad.stderr


@pytest.mark.parametrize("name", ["cdcgan", "ddpm", "dit"])
def test_every_creator_trains_on_a_32x32x3_folder(make_cfg, folder, tmp_path, name) -> None:
    """debug=fdr at 32x32x3, with the grid of fixed samples; the FID callback at this shape is the dcgan
    run's above (the Inception FID costs a minute on a busy CPU), so it is off here."""
    overrides = [*TINY[name], *_folder_data(folder, 32, 3), "trainer=cpu", "debug=fdr"]
    no_fid = ["callbacks.fid=null", "callbacks.best_checkpoint=null"]
    grid_now = ["callbacks.fixed_noise_grid.every_n_epochs=1", "+trainer.enable_progress_bar=false"]
    train(make_cfg("train", [*overrides, *no_fid, *grid_now]))
    grid = Image.open(tmp_path / "grids" / "last.png")
    assert grid.mode == "RGB" and grid.size[0] > 4 * 32  # 4 images of 32 pixels a row, with padding


@pytest.mark.parametrize("name", list(TINY))
def test_a_loaded_checkpoint_knows_its_shape(make_cfg, folder, tmp_path, name) -> None:
    cfg = make_cfg("train", [*TINY[name], *_folder_data(folder, 32, 3)])
    path = save_checkpoint(instantiate(cfg.model, _recursive_=False), tmp_path / f"{name}.ckpt")
    model = load_module(path)
    assert tuple(model.image_shape) == (3, 32, 32)
    images = model.sample(2) if name.endswith("gan") else model.sample(2, steps=1)
    assert images.shape == (2, 3, 32, 32)
