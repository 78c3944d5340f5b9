"""A scene request stays light: what its process imports, and the light load paths drawing what the full ones do.

The imports are checked in the process a user runs (``python scripts/agent.py "..."``), read from
``sys.modules`` when it exits; the load paths (the creators' networks without their LightningModules, a
diffusion creator built at its first draw, torchvision's kernels without its package, boxes drawn with PIL)
are checked against the full ones on the shipped files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]

# what a scene request must not load: Lightning's trainer (and Lightning at all), diffusers (the fallback
# diffusion creator is built only if it draws), the Inception feature net's module, torchmetrics, torchvision
NOT_LOADED = (
    "lightning.pytorch.trainer",
    "lightning",
    "diffusers",
    "artdirector.evaluation.features",
    "torchmetrics",
    "torchvision",
)

# runs scripts/agent.py as ``python scripts/agent.py ...`` does, and writes at exit which modules it loaded
_PROBE = """
import atexit, json, os, runpy, sys
@atexit.register
def _loaded():
    with open(os.environ["LOADED_OUT"], "w") as f:
        json.dump(sorted(sys.modules), f)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_a_scene_request_loads_no_trainer_no_diffusers_no_inception(tmp_path: Path) -> None:
    """ "sharp" also takes the scene through the super-resolution net (``artdirector.models.superres``)."""
    out, loaded = tmp_path / "run", tmp_path / "loaded.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LOADED_OUT": str(loaded)}
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            _PROBE,
            str(REPO / "scripts" / "agent.py"),
            "a sharp 3 left of a 7",
            "scene.max_rounds=0",
            f"hydra.run.dir={out}",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode in (0, 1), r.stderr[-3000:]  # the request ran (1.0 or 0.0: pass or fail)
    assert (out / "trace.json").is_file() and (out / "annotated.png").is_file(), r.stderr[-3000:]
    modules = set(json.loads(loaded.read_text()))
    assert "artdirector.agents.scene" in modules  # the probe saw the scene director run
    assert not [m for m in NOT_LOADED if m in modules]


@pytest.fixture(scope="module")
def zoo() -> dict[str, Path]:
    from artdirector.creators import zoo_checkpoints

    return {Path(p).stem: Path(p) for p in zoo_checkpoints()}


def test_sampling_creators_state_what_the_full_ones_do(zoo) -> None:
    from artdirector.creators import load_creator, sampling_creator

    for name, path in zoo.items():
        light, full = sampling_creator(path), load_creator(path)
        assert light.describe() == full.describe(), name  # class, parameters, accepts, capabilities
        assert light.num_classes == full.num_classes and light.card == full.card, name


def test_a_gan_sampling_creator_draws_and_scores_what_its_module_does(zoo) -> None:
    from artdirector.creators import load_creator, sampling_creator
    from artdirector.models.gan_sampling import GANNets

    light, full = sampling_creator(zoo["cgan"]), load_creator(zoo["cgan"])
    assert isinstance(light.model, GANNets)
    labels = torch.tensor([3, 7, 7, 0])
    a, b = light.sample(4, condition=labels, seed=11), full.sample(4, condition=labels, seed=11)
    assert torch.equal(a.images, b.images) and torch.equal(a.latents, b.latents)
    assert torch.equal(light.critic_scores(a.images, labels), full.critic_scores(a.images, labels))
    full_state, light_state = full.model.state_dict(), light.model.state_dict()
    assert full_state.keys() == light_state.keys()
    assert all(torch.equal(full_state[k], light_state[k]) for k in full_state)


def test_a_diffusion_sampling_creator_is_built_at_its_first_draw_and_draws_the_same(zoo) -> None:
    from artdirector.creators import load_creator, sampling_creator

    light = sampling_creator(zoo["ddpm"])
    light.describe()
    assert light._model is None  # described, routed and listed without building it
    full = load_creator(zoo["ddpm"])
    a = light.sample(2, condition=torch.tensor([3, 7]), seed=5, steps=3)
    b = full.sample(2, condition=torch.tensor([3, 7]), seed=5, steps=3)
    assert light._model is not None
    assert torch.equal(a.images, b.images) and a.options == b.options


def test_torchvision_kernels_without_its_package_match_torchvision_ops() -> None:
    from torchvision.ops import nms as tv_nms
    from torchvision.ops import roi_align as tv_roi_align

    from artdirector.models.vision_ops import nms, roi_align

    g = torch.Generator().manual_seed(0)
    corner = torch.rand(300, 2, generator=g) * 100
    boxes = torch.cat([corner, corner + 1 + torch.rand(300, 2, generator=g) * 40], 1)
    scores = torch.rand(300, generator=g)
    assert torch.equal(nms(boxes, scores, 0.5), tv_nms(boxes, scores, 0.5))
    x = torch.randn(3, 1, 64, 64, generator=g)
    per_image = [boxes[:4] / 2, boxes[4:4] / 2, boxes[10:17] / 2]  # one image without boxes
    with torch.no_grad():
        got = roi_align(x, per_image, 32, 1.0, 2, True)
    assert torch.equal(got, tv_roi_align(x, per_image, 32, 1.0, 2, True))
    # with a gradient to carry, torchvision's own path (its backward is registered from Python)
    x.requires_grad_(True)
    roi_align(x, per_image, 32, 1.0, 2, True).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_torchvision_kernels_load_without_importing_torchvision() -> None:
    code = (
        "import sys, torch\n"
        "from artdirector.models.vision_ops import nms\n"
        "b = torch.tensor([[0., 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]])\n"
        "assert nms(b, torch.tensor([0.9, 0.8, 0.7]), 0.5).tolist() == [0, 2]\n"
        "assert 'torchvision' not in sys.modules, 'torchvision imported'\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]


def test_boxes_drawn_with_pil_are_torchvision_s_pixels() -> None:
    from torchvision.utils import draw_bounding_boxes

    from artdirector.scenes.draw import draw_boxes

    g = torch.Generator().manual_seed(1)
    for t in range(12):
        img = torch.randint(0, 256, (3, 256, 256), generator=g, dtype=torch.uint8)
        n = 1 + t % 5
        corner = torch.rand(n, 2, generator=g) * 200
        boxes = torch.cat([corner, corner + 1 + torch.rand(n, 2, generator=g) * 60], 1)
        labels = [f"seven: too small {i}" if i % 2 else "3 ok" for i in range(n)]
        colors = [("lime", "yellow", "red", "orange")[(i + t) % 4] for i in range(n)]
        want = draw_bounding_boxes(img, boxes, labels=labels, colors=colors, width=2)
        assert torch.equal(draw_boxes(img, boxes, labels, colors, width=2), want), t
