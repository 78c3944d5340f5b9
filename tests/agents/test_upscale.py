"""The ``upscale`` finishing action (issue 11): x2/x4 super-resolution, the LeNet evaluator at multiples of
28 px, the Director's finishing stage with its consistency check, and the config's ``upscale=``."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import torch
import torch.nn.functional as F

from artdirector.agents import Action, Director, RulePolicy, interpret
from artdirector.agents.refiners import Upscale
from artdirector.evaluation import LeNetFeatures
from artdirector.models.superres import area_downsample, check_factor, upscale

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "src" / "artdirector" / "agents" / "trace_schema.json").read_text())


def _digits(n: int = 6) -> torch.Tensor:
    from artdirector.data.datamodules import load_mnist5k

    images, _ = load_mnist5k()
    return images[:n].float().div(127.5).sub(1)[:, None]


@pytest.mark.parametrize("factor", [2, 4])
def test_upscale_shapes_range_and_determinism(factor) -> None:
    x = _digits()
    big = upscale(x, factor)
    assert big.shape == (6, 1, 28 * factor, 28 * factor) and big.dtype == torch.float32
    assert big.min() >= -1 and big.max() <= 1
    assert torch.equal(big, upscale(x, factor))  # deterministic
    # the x2 images are the x4 images area-averaged 2x2; both come back near the input when downsampled
    if factor == 2:
        assert torch.allclose(big, F.avg_pool2d(upscale(x, 4), 2))
    assert (area_downsample(big, 28) - x).abs().mean() < 0.05


@pytest.mark.parametrize("bad", [3, 1, 8, 2.5, True, "4"])
def test_a_bad_factor_is_a_one_line_error(bad) -> None:
    with pytest.raises(ValueError, match=r"^upscale factor must be 2 or 4, got .*$"):
        check_factor(bad)
    with pytest.raises(ValueError, match="must be 2 or 4"):
        upscale(_digits(2), bad)


@pytest.mark.parametrize("side", [56, 112])
def test_lenet_reads_multiples_of_28_through_an_area_downsampled_copy(side) -> None:
    net = LeNetFeatures("mnist")
    torch.manual_seed(0)
    big = torch.rand(4, 1, side, side) * 2 - 1
    small = F.interpolate(big, size=(28, 28), mode="area")
    assert torch.allclose(net(big), net(small), atol=1e-5)
    assert torch.allclose(net.logits_from_features(net(big)), net.logits_from_features(net(small)), atol=1e-5)
    blocky = _digits(4).repeat_interleave(side // 28, -1).repeat_interleave(side // 28, -2)
    assert torch.allclose(net(blocky), net(_digits(4)), atol=1e-5)  # exactly the 28 px digits, read back


@pytest.mark.parametrize("shape", [(32, 32), (56, 28), (42, 42)])
def test_lenet_still_rejects_other_sizes_in_one_line(shape) -> None:
    with pytest.raises(ValueError, match="28x28") as err:
        LeNetFeatures("mnist")(torch.zeros(2, 1, *shape))
    assert "\n" not in str(err.value)


def test_the_director_finishes_with_upscale_checks_it_and_replays_it(agents, tmp_path) -> None:
    gen, ev, ref = agents
    seen = []

    def copy_check(images, feats, grid):  # the copy grid gets images of the training images' size
        seen.append(tuple(images.shape[-2:]))
        return {"copy_rate": 0.0, "se": 0.0, "n_samples": len(images), "n_train": 1, "quantile": 0.01}

    plan = RulePolicy(plans={"create": ["truncation"], "variations": [], "refine": []})
    d = Director(
        gen,
        ev,
        ref,
        plan,
        tmp_path / "run",
        n=64,
        z=0.0,
        tensorboard=False,
        copy_check=copy_check,
        finish=[Action("upscale", {"factor": 2})],
    )
    res = d.run(interpret("generate new art", False))
    step = res.memory.steps[-1]
    assert step.action == "upscale" and step.accepted and step.params == {"factor": 2}
    c = step.check
    assert isinstance(c["met"], bool) and "consistency" in c["summary"] and c["split"] == "selection"
    assert c["fid_input"] == res.report.fid and c["fid_upscaled"] == res.finished_report.fid
    assert c["fid_difference_se"] > 0 and c["psnr_downsampled_vs_input"] > 20
    # the tolerance is 2 paired SEs of the difference, whatever the input's FID (hundreds for the tiny GAN)
    assert c["tolerance"] == pytest.approx(2 * c["fid_difference_se"])
    assert c["met"] == (abs(c["fid_difference"]) <= c["tolerance"])
    assert res.samples.images.shape[-1] == 28 and res.finished.images.shape == (64, 1, 56, 56)
    assert res.finished.history[-1].startswith("upscale(x2")
    assert res.chain[-1].action == "upscale" and res.chain[-1].finishing
    v = res.verdict  # the held-out replay applies it too, and checks it on the report split
    assert v["chain"][-1] == "upscale" and v["images"]["directed"].shape[-1] == 56
    (held,) = v["finish"]
    assert held["split"] == "report" and held["n"] == 64 and isinstance(held["met"], bool)
    assert seen == [(28, 28)]
    out = tmp_path / "run"
    trace = json.loads((out / "trace.json").read_text())
    jsonschema.validate(trace, SCHEMA)
    assert trace["steps"][-1]["check"]["met"] == c["met"] and trace["steps"][-1]["finishing"]
    assert trace["finish"]["outputs"]["grid"] == "grid_x2.png" and trace["finish"]["size"] == [56, 56]
    assert (out / "grid_x2.png").is_file() and (out / "final_x2" / "0000.png").is_file()
    assert torch.load(out / "final_x2" / "images.pt").shape == (64, 1, 56, 56)
    assert torch.load(out / "final" / "images.pt").shape == (64, 1, 28, 28)  # the loop's own result
    md = (out / "report.md").read_text()
    assert "**Finishing:**" in md and "paired bootstrap SE" in md and "![finished](grid_x2.png)" in md
    assert ("CHECK FAILED" in md) == (not c["met"] or not held["met"])
    assert "Finishing" in (out / "report.html").read_text()


def test_a_failed_check_is_stated_and_the_output_kept(agents, tmp_path, monkeypatch) -> None:
    gen, ev, ref = agents
    monkeypatch.setattr(Upscale, "CONSISTENCY_Z", -1.0)  # a bar no upscale can meet
    plan = RulePolicy(plans={"create": [], "variations": [], "refine": []})
    d = Director(
        gen,
        ev,
        ref,
        plan,
        tmp_path / "run",
        n=64,
        tensorboard=False,
        replay=False,
        finish=[Action("upscale")],
    )
    res = d.run(interpret("generate new art", False))
    assert not res.finish[0]["met"] and res.finished.images.shape[-1] == 112
    assert "check FAILED" in res.memory.steps[-1].decision
    assert "CHECK FAILED (output kept as asked)" in (tmp_path / "run" / "report.md").read_text()


class _Shift:
    """An evaluator whose paired FID difference is given: FID(input) - FID(upscaled) = -shift ± se."""

    def __init__(self, shift: float, se: float) -> None:
        self.shift, self.se = shift, se

    def fid_difference(self, before, after, paired):
        assert paired  # image i of the upscaled set is input i upscaled
        return -self.shift, self.se


@pytest.mark.parametrize(
    ("fid_input", "shift", "se", "met"),
    [
        (600.0, 8.5, 0.27, False),  # 31 SE on a bad model: 2 % of its FID (12) must not hide it
        (600.0, 0.5, 0.27, True),  # within 2 SE
        (600.0, -0.6, 0.27, False),  # beyond 2 SE the other way
        (12.0, 2.6, 1.73, True),  # real digits at n = 1,000 (docs/benchmarks.md): 1.5 SE
        (26.0, 5.6, 2.37, False),  # real digits at n = 500: 2.4 SE
        (600.0, 0.0, float("nan"), False),  # no bootstrap: not judged, never met by default
    ],
)
def test_the_consistency_rule_is_two_paired_ses_whatever_the_fid(fid_input, shift, se, met) -> None:
    from types import SimpleNamespace

    from artdirector.agents import Samples

    x = _digits(4)
    before = Samples(images=x, latents=None, model="m")
    after = Samples(images=upscale(x, 2), latents=None, model="m")

    def report(fid):
        return SimpleNamespace(fid=fid, features=torch.zeros(4, 2), split="selection")

    c = Upscale().check(before, after, report(fid_input), report(fid_input + shift), _Shift(shift, se), 2)
    assert c["met"] is met and c["fid_difference"] == pytest.approx(shift)
    assert ("consistency met" if met else "consistency NOT met") in c["summary"]
    if se == se:  # finite SE: the tolerance is stated and is 2 SE
        assert c["tolerance"] == pytest.approx(2 * se) and f"{2 * se:.3f}" in c["summary"]
    else:
        assert c["tolerance"] is None and "not judged" in c["summary"]


def test_only_finishing_actions_may_finish(agents, tmp_path) -> None:
    gen, ev, ref = agents
    with pytest.raises(ValueError, match="not a finishing action"):
        Director(gen, ev, ref, RulePolicy(plans={}), tmp_path, tensorboard=False, finish=[Action("drs")])


def test_the_config_turns_upscale_into_the_finishing_action(make_cfg) -> None:
    from artdirector.agent import finish_actions
    from artdirector.errors import ConfigError

    assert finish_actions(make_cfg("agent", ["ckpt=x"])) == []
    (a,) = finish_actions(make_cfg("agent", ["ckpt=x", "upscale=4"]))
    assert a.name == "upscale" and a.params == {"factor": 4}
    with pytest.raises(ConfigError, match=r"upscale must be 2 or 4 \(or null: no upscaling\), got 3"):
        finish_actions(make_cfg("agent", ["ckpt=x", "upscale=3"]))
