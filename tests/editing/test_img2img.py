"""Issue 11 in the agents: the ``style`` finishing action (prompt words and ``style=``), image-to-image inputs
of any size and mode (converted with notes), and SDEdit through the Generation Agent for a diffusion creator."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import torch
from PIL import Image

from artdirector.agents import Action, Director, RulePolicy, interpret
from artdirector.editing.inputs import read_images
from artdirector.errors import InputError
from helpers import TINY_UNET, build_model, save_checkpoint

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "src" / "artdirector" / "agents" / "trace_schema.json").read_text())


def _lenet_classify():
    from artdirector.evaluation import LeNetFeatures

    net = LeNetFeatures("mnist")
    return lambda x: net.logits_from_features(net(x)).argmax(1)


def test_the_director_finishes_with_a_style_edit_then_upscales(agents, tmp_path) -> None:
    gen, ev, ref = agents
    ref.classify = _lenet_classify()
    plan = RulePolicy(plans={"create": [], "variations": [], "refine": []})
    d = Director(
        gen,
        ev,
        ref,
        plan,
        tmp_path / "run",
        n=64,
        tensorboard=False,
        finish=[
            Action("style", {"attribute": "slant", "amount": "+15", "method": "auto"}),
            Action("upscale", {"factor": 2}),
        ],
    )
    res = d.run(interpret("generate new art", False))
    style, up = res.memory.steps[-2], res.memory.steps[-1]
    assert style.action == "style" and up.action == "upscale"
    c = style.check
    assert c["attribute"] == "slant" and isinstance(c["met"], bool) and c["n"] == 64
    # the tiny GAN's latents are tried first, then the pixel edit if they miss; the history says which
    assert "tried latent" in c["method"]
    assert abs(c["requested_change"]["mean"] - 15) < 1e-4
    if c["met"]:
        assert abs(c["achieved_change"]["mean"] - 15) <= 0.25 * 15
    assert res.finished.images.shape == (64, 1, 56, 56)  # the upscale worked on the styled images
    assert [link.action for link in res.chain if link.finishing] == ["style", "upscale"]
    held = res.verdict["finish"]
    assert [h["action"] for h in held] == ["style", "upscale"] and held[0]["split"] == "report"
    trace = json.loads((tmp_path / "run" / "trace.json").read_text())
    jsonschema.validate(trace, SCHEMA)


def test_style_comes_from_config_and_prompt_words(make_cfg) -> None:
    from artdirector.agent import finish_actions
    from artdirector.editing.targets import StyleError

    cfg = make_cfg("agent", ["ckpt=x", "+style={thickness: '+20%'}", "upscale=2"])
    acts = finish_actions(cfg, interpret("draw slanted thick sevens", False))
    assert [(a.name, a.params.get("attribute"), a.params.get("amount")) for a in acts] == [
        ("style", "thickness", "+20%"),  # the config's amount wins over the word's
        ("style", "slant", "+15"),
        ("upscale", None, None),
    ]
    (up,) = finish_actions(make_cfg("agent", ["ckpt=x"]), interpret("draw sharp sevens", False))
    assert up.name == "upscale" and up.params == {"factor": 4}
    with pytest.raises(StyleError, match="both ways"):
        finish_actions(make_cfg("agent", ["ckpt=x"]), interpret("draw thick thin sevens", False))
    with pytest.raises(StyleError, match="editable are"):
        finish_actions(make_cfg("agent", ["ckpt=x", "+style={colour: '+5'}"]), None)


def test_translation_prompts_are_variations_of_the_input_under_the_target_class() -> None:
    r = interpret("make this 3 look like an 8", True)
    assert r.task == "variations" and r.classes == (8,) and not r.scene and "image-to-image" in r.understood


# ---- inputs of any size and mode ------------------------------------------------------------------
def test_images_of_any_size_and_mode_are_converted_with_notes(tmp_path) -> None:
    rgba = Image.new("RGBA", (64, 48), (0, 0, 0, 0))
    for x in range(28, 36):  # a white vertical bar, opaque
        for y in range(8, 40):
            rgba.putpixel((x, y), (255, 255, 255, 255))
    rgba.save(tmp_path / "bar.png")
    x, notes = read_images(tmp_path / "bar.png")
    assert x.shape == (1, 1, 28, 28) and x.min() >= -1 and x.max() <= 1
    assert any("alpha" in n for n in notes) and any("64x48 -> 28x28" in n for n in notes)
    assert x[0, 0, 14, 14] > 0.5 and x[0, 0, 0, 0] < -0.9  # the bar is ink, the corner background
    Image.new("L", (100, 100), 255).save(tmp_path / "white.png")  # dark ink on white: inverted
    (tmp_path / "dir").mkdir()
    for i in range(3):
        Image.new("RGB", (30, 30), (250, 250, 250)).save(tmp_path / "dir" / f"{i}.png")
    y, notes = read_images(tmp_path / "dir")
    assert (
        y.shape == (3, 1, 28, 28) and any("inverted" in n for n in notes) and notes[0].startswith("3 images")
    )
    torch.save(torch.rand(2, 3, 40, 40), tmp_path / "t.pt")
    z, notes = read_images(tmp_path / "t.pt")
    assert (
        z.shape == (2, 1, 28, 28)
        and any("[0, 1]" in n for n in notes)
        and any("RGB -> grey" in n for n in notes)
    )
    torch.save({"not": "images"}, tmp_path / "bad.pt")
    for bad, match in (
        ("bad.pt", "not a tensor"),
        ("missing.png", "not found"),
        ("t.txt", "expected an image"),
    ):
        if bad == "t.txt":
            (tmp_path / bad).write_text("x")
        with pytest.raises(InputError, match=match) as err:
            read_images(tmp_path / bad)
        assert "\n" not in str(err.value)


# ---- SDEdit through the Generation Agent -------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_ddpm_ckpt(tmp_path_factory) -> Path:
    from conftest import compose_cfg

    out = tmp_path_factory.mktemp("ddpm")
    cfg = compose_cfg("train", ["data=fake", *TINY_UNET, "model.steps=4"], out)
    torch.manual_seed(0)
    return save_checkpoint(build_model(lambda *_: cfg, []), out / "ddpm.ckpt")


def test_variations_of_an_image_with_a_diffusion_creator_are_sdedit(tiny_ddpm_ckpt, tmp_path) -> None:
    from artdirector.agents import GenerationAgent, load_input

    Image.new("L", (56, 56), 0).save(tmp_path / "in.png")
    request = interpret("make this 3 look like an 8", True)
    gen = GenerationAgent(str(tiny_ddpm_ckpt), seed=0, request=request, strength=0.5)
    base = load_input(tmp_path / "in.png", gen)
    assert base.latents is None and any("56x56 -> 28x28" in h for h in base.history)
    out = gen.generate(request, 4, base=base)
    assert out.images.shape == (4, 1, 28, 28) and torch.equal(out.labels, torch.full((4,), 8))
    assert out.options["strength"] == 0.5 and out.source.shape == (4, 1, 28, 28)
    assert out.history[-1] == "sdedit(strength=0.5)"
    again = gen.resample(out, "replay")  # the same edit of the same input
    assert torch.equal(again.images, out.images)
    assert not torch.equal(gen.resample(out, "more steps", steps=8).images, out.images)
    with pytest.raises(ValueError, match="strength must be in"):
        GenerationAgent(str(tiny_ddpm_ckpt), strength=2.0)


def test_refinements_of_sdedit_samples_redo_the_edit(tiny_ddpm_ckpt, data, tmp_path) -> None:
    """guidance, steps and finetune of image-to-image samples edit the same input again (never a fresh sample,
    and never an option the creator does not know)."""
    from artdirector.agents import Action, GenerationAgent, RefinementAgent

    request = interpret("make this 3 look like an 8", True)
    gen = GenerationAgent(str(tiny_ddpm_ckpt), seed=0, request=request, strength=0.5)
    base = load_base(gen, tmp_path)
    out = gen.generate(request, 4, base=base)
    ref = RefinementAgent(gen, datamodule=data, output_dir=tmp_path)
    for action in (Action("guidance", {"scale": 3.0}), Action("finetune", {"steps": 2})):
        cand = ref.refine(out, action)
        assert cand.samples.source is out.source and cand.samples.images.shape == out.images.shape
        assert cand.samples.options["strength"] == 0.5


def load_base(gen, tmp_path):
    from artdirector.agents import load_input

    Image.new("L", (28, 28), 0).save(tmp_path / "in.png")
    return load_input(tmp_path / "in.png", gen)
