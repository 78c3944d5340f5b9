"""The agents: each action moves what it targets, policies decide as specified, the Director stops for the
right reason and writes a valid trace, and the CLI runs end to end from a tiny checkpoint."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import torch
from hydra.utils import instantiate

from artdirector.agents import (
    Action,
    BanditPolicy,
    Candidate,
    Director,
    GenerationAgent,
    Memory,
    RequestError,
    RulePolicy,
    State,
    Step,
    Stop,
    ThresholdPolicy,
    interpret,
    load_input,
)
from artdirector.agents.refiners.drs import calibrated_logits
from artdirector.models.checkpoint import CheckpointError
from artdirector.prompts import PromptError
from helpers import run_script

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "src" / "artdirector" / "agents" / "trace_schema.json").read_text())


# ---- requests -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "task"),
    [
        ("generate new art", "create"),
        ("please refine these", "refine"),
        ("Improve the last batch", "refine"),
        ("more like this", "variations"),
        ("variations on a theme", "variations"),
    ],
)
def test_requests_map_to_tasks_and_say_why(text, task) -> None:
    req = interpret(text, has_input=True)
    assert req.task == task and "->" in req.understood


def test_unmatched_request_is_variations_of_an_input_else_an_error() -> None:
    assert interpret("more please", has_input=True).task == "variations"
    with pytest.raises(RequestError, match="could not tell"):
        interpret("more please", has_input=False)
    with pytest.raises(PromptError, match="'zzz'"):  # an unknown word is named, never dropped
        interpret("zzz", has_input=True)
    for empty in ("", "   ", None):
        with pytest.raises(RequestError, match="empty request"):
            interpret(empty, has_input=False)


# ---- actions --------------------------------------------------------------------------------------
def _fresh(gen, n=64):
    return gen.from_latents(gen.latents(n))


def test_drs_keeps_samples_the_discriminator_rates_higher(agents) -> None:
    gen, _, ref = agents
    before = _fresh(gen)
    after = ref.refine(before, Action("drs", {"gamma_percentile": 90})).samples
    assert len(after) == len(before) and after.history[-1].startswith("drs")
    assert calibrated_logits(ref, after.images).mean() > calibrated_logits(ref, before.images).mean()
    assert torch.allclose(
        gen.creator.model.sample(z=after.latents), after.images, atol=1e-5
    )  # latents match images


def _k_eff(history: str) -> float:
    return float(re.search(r"k_eff=([\d.]+(?:e[-+]?\d+)?)", history).group(1))


def test_langevin_drift_descends_the_energy_and_its_noise_is_seeded(agents) -> None:
    """The tiny GAN's critic barely varies, so what Langevin does to its mean score over 20 noisy steps is
    chance; its stationary distribution is checked where it is known (test_techniques). Here: without noise
    the update is gradient descent on E(z) = ||z||^2 / 2 - d(G(z)), so every sample's energy falls; with
    noise the chain is the seeded generator's, and latents, images and inputs stay consistent."""
    gen, _, ref = agents
    m = gen.creator.model
    before = _fresh(gen)
    kept_images, kept_latents = before.images.clone(), before.latents.clone()

    def energy(z):
        with torch.no_grad():
            return 0.5 * z.pow(2).sum(1) - m.discriminate(m.generate(z))

    drift = ref.refine(before, Action("langevin", {"steps": 20, "step_size": 0.01, "noise": 0.0})).samples
    assert (energy(drift.latents) < energy(before.latents)).all()
    chains = []
    for _ in range(2):
        gen.reseed(7)
        chains.append(ref.refine(before, Action("langevin", {"steps": 5, "noise": 1.0})).samples)
    assert torch.equal(chains[0].latents, chains[1].latents) and not torch.equal(
        chains[0].latents, kept_latents
    )
    assert torch.allclose(m.sample(z=chains[0].latents), chains[0].images, atol=1e-5)
    assert torch.equal(before.images, kept_images) and torch.equal(before.latents, kept_latents)


def test_dot_never_lowers_the_critic_and_raises_it_where_its_gradient_beats_k_eff(agents) -> None:
    """DOT keeps each sample's best iterate of ||z - z0|| - d(G(z)) / k_eff, so d(G(z)) >= d(G(z0)) +
    k_eff ||z - z0|| for every sample on any machine; where |grad d| > k_eff at z0 the objective falls away
    from z0 and the score rises strictly (how many samples that is depends on the tiny GAN's training)."""
    gen, _, ref = agents
    m = gen.creator.model
    before = _fresh(gen)
    kept_images, kept_latents = before.images.clone(), before.latents.clone()
    dot = ref.refine(before, Action("dot", {"steps": 20})).samples
    k_eff = _k_eff(dot.history[-1])
    with torch.no_grad():
        d0, d1 = m.discriminate(before.images), m.discriminate(dot.images)
    moved = (dot.latents - before.latents).norm(dim=1)
    assert (d1 >= d0).all(), f"{int((d1 < d0).sum())} samples scored lower after DOT"
    assert (d1 - d0 >= 0.999 * k_eff * moved - 1e-6).all()
    z = before.latents.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(m.discriminate(m.generate(z)).sum(), z)
    steep = grad.norm(dim=1) > 1.5 * k_eff
    assert (d1[steep] > d0[steep]).all() and (moved[steep] > 0).all()
    still = moved == 0  # a sample that stays keeps its image exactly
    assert torch.equal(dot.images[still], before.images[still])
    assert torch.allclose(m.sample(z=dot.latents), dot.images, atol=1e-5)
    assert torch.equal(before.images, kept_images) and torch.equal(before.latents, kept_latents)


def test_truncation_lowers_latent_norm_and_sample_variance(agents) -> None:
    gen, _, ref = agents
    before = _fresh(gen, 256)
    after = ref.refine(before, Action("truncation", {"threshold": 0.5})).samples
    assert after.latents.abs().max() <= 0.5
    assert after.latents.norm(dim=1).mean() < before.latents.norm(dim=1).mean()
    assert after.images.var(dim=0).mean() < before.images.var(dim=0).mean()


def test_finetune_writes_a_new_checkpoint_and_never_touches_the_source(agents, tiny_ckpt, tmp_path) -> None:
    gen, _, ref = agents
    source = tiny_ckpt.read_bytes()
    before = _fresh(gen, 16)
    cand = ref.refine(before, Action("finetune", {"steps": 3}))
    after = cand.samples
    new_ckpt = tmp_path / "checkpoints" / "finetune_01.ckpt"
    assert new_ckpt.is_file() and after.model == str(new_ckpt) and cand.model_path == str(new_ckpt)
    assert gen.ckpt == tiny_ckpt  # a candidate: the Generation Agent stays on its model until it is kept
    assert tiny_ckpt.read_bytes() == source
    old_step = torch.load(tiny_ckpt, weights_only=False)["global_step"]
    assert torch.load(new_ckpt, weights_only=False)["global_step"] == old_step + 6  # 3 batches x (D, G)
    assert torch.equal(after.latents, before.latents) and not torch.equal(after.images, before.images)


def test_finetune_repeats_bit_for_bit_with_the_same_seed(tiny_ckpt, data, tmp_path) -> None:
    """Two runs with the run seed 0 finetune to the same weights (batches and noise from the run's seed), and
    finetuning leaves the global RNG as it found it."""
    from artdirector.agents import GenerationAgent, RefinementAgent

    weights = []
    for i in range(2):
        gen = GenerationAgent(str(tiny_ckpt), seed=0)
        ref = RefinementAgent(gen, datamodule=data, output_dir=tmp_path / f"run{i}")
        torch.manual_seed(100 + i)  # whatever else the process drew before must not matter
        state = torch.get_rng_state()
        ref.refine(_fresh(gen, 4), Action("finetune", {"steps": 3}))
        assert torch.equal(torch.get_rng_state(), state)
        weights.append(
            torch.load(tmp_path / f"run{i}" / "checkpoints" / "finetune_01.ckpt", weights_only=False)
        )
    a, b = (w["state_dict"] for w in weights)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_inversion_reconstructs_generated_images(agents, tmp_path) -> None:
    gen, _, _ = agents
    target = _fresh(gen, 4)
    torch.save(target.images, tmp_path / "images.pt")
    inverted = load_input(tmp_path / "images.pt", gen, invert_steps=150)
    assert inverted.latents.shape == (4, gen.latent_dim)
    mse = (inverted.images - target.images).pow(2).mean()
    assert mse < 0.5 * (_fresh(gen, 4).images - target.images).pow(2).mean()


# ---- policies -------------------------------------------------------------------------------------
def _step(i, action, before, after, seconds=1.0):
    m = lambda f: {"fid": f}  # noqa: E731
    return Step(i, action, {}, m(before), m(after), after < before, seconds, gain=before - after)


def _state(fid=10.0, task="create"):
    return State(task, fid, 1.0, 0, True)


def test_threshold_tries_each_action_once_then_the_best_then_stops_without_gain() -> None:
    pol = ThresholdPolicy(actions=["drs", "langevin", "truncation"])
    mem = Memory([Step(0, "generate", {}, None, {"fid": 10}, True, 1)])
    order = []
    for fake_after in (9.0, 9.5, 10.5):  # drs gains 1, langevin 0.5, truncation -0.5
        d = pol.decide(_state(), mem)
        order.append(d.name)
        mem.record(_step(len(mem.steps), d.name, 10.0, fake_after))
    assert order == ["drs", "langevin", "truncation"]
    assert pol.decide(_state(), mem).name == "drs"
    mem = Memory([_step(1, a, 10.0, 10.2) for a in ("drs", "langevin", "truncation")])
    decision = pol.decide(_state(), mem)
    assert isinstance(decision, Stop) and "no action helps" in decision.reason


def test_bandit_pulls_each_arm_then_prefers_gain_per_second() -> None:
    pol = BanditPolicy(actions=["drs", "finetune"], exploration=0.1)
    mem = Memory()
    assert pol.decide(_state(), mem).name == "drs"
    mem.record(_step(1, "drs", 10, 9, seconds=1.0))  # 1 FID/s
    assert pol.decide(_state(), mem).name == "finetune"
    mem.record(_step(2, "finetune", 9, 7, seconds=100.0))  # 0.02 FID/s: bigger gain, far slower
    assert pol.decide(_state(), mem).name == "drs"
    worse = Memory([_step(1, "drs", 10, 11), _step(2, "finetune", 10, 10.5)])
    assert isinstance(pol.decide(_state(), worse), Stop)


def test_rule_policy_plans_per_task_and_skips_latent_actions_without_latents() -> None:
    pol = RulePolicy()
    assert isinstance(pol.decide(_state(task="create"), Memory()), Stop)
    assert pol.decide(_state(task="refine"), Memory()).name == "drs"
    mem = Memory([_step(1, "drs", 10, 9)])
    assert pol.decide(_state(task="refine"), mem).name == "langevin"
    assert isinstance(pol.decide(State("refine", 9, 1, 1, False), mem), Stop)  # no latents: no langevin


@pytest.mark.parametrize(
    ("policy", "cls"), [("rule", RulePolicy), ("threshold", ThresholdPolicy), ("bandit", BanditPolicy)]
)
def test_policy_is_chosen_by_config(make_cfg, policy, cls) -> None:
    cfg = make_cfg("agent", [f"policy={policy}", "ckpt=x.ckpt"])
    assert isinstance(instantiate(cfg.policy), cls)


# ---- the Director ---------------------------------------------------------------------------------
def _director(agents, tmp_path, policy, **kw) -> Director:
    gen, ev, ref = agents
    return Director(gen, ev, ref, policy, tmp_path / "run", n=kw.pop("n", 48), tensorboard=False, **kw)


def test_director_stops_on_target(agents, tmp_path) -> None:
    res = _director(agents, tmp_path, ThresholdPolicy(), target_fid=1e9).run(interpret("new", False))
    assert res.target_met and res.stop_reason.startswith("target met") and len(res.memory.steps) == 1


def test_director_stops_on_budget_and_says_the_target_was_not_reached(agents, tmp_path) -> None:
    pol = ThresholdPolicy(actions=["truncation", "langevin", "drs"])
    res = _director(agents, tmp_path, pol, target_fid=0.0, max_steps=2).run(interpret("new", False))
    assert (
        not res.target_met
        and "budget spent (2 steps)" in res.stop_reason
        and "unreachable" in res.stop_reason
    )
    assert [s.action for s in res.memory.steps] == ["generate", "truncation", "langevin"]
    trace = json.loads((tmp_path / "run" / "trace.json").read_text())
    jsonschema.validate(trace, SCHEMA)
    # the final metrics are those of the last kept step
    kept = [s for s in trace["steps"] if s["accepted"]][-1]
    assert trace["final"]["metrics"]["fid"] == pytest.approx(kept["metrics_after"]["fid"])
    out = tmp_path / "run"
    assert len(list((out / "final").glob("*.png"))) == 48 and (out / "grid.png").is_file()
    assert "| 1 | truncation |" in (out / "report.md").read_text()


def test_director_stops_when_no_action_helps(agents, tmp_path, monkeypatch) -> None:
    gen, _, ref = agents

    def noise(samples, action):  # every "refinement" returns noise: nothing can help
        return Candidate(
            samples.derived(torch.rand_like(samples.images) * 2 - 1, samples.latents, action.name)
        )

    monkeypatch.setattr(ref, "refine", noise)
    res = _director(agents, tmp_path, ThresholdPolicy(actions=["drs", "langevin"]), max_steps=10).run(
        interpret("new", False)
    )
    assert "no action helps" in res.stop_reason
    assert [s.accepted for s in res.memory.refinements] == [False, False]
    assert torch.equal(
        res.samples.images, gen.creator.model.sample(z=res.samples.latents)
    )  # the original samples


def test_variations_of_an_earlier_run(agents, tmp_path) -> None:
    first = _director(agents, tmp_path / "a", RulePolicy()).run(interpret("new", False))
    gen = agents[0]
    base = load_input(first.output_dir, gen)
    res = _director(agents, tmp_path / "b", RulePolicy(), n=16).run(interpret("variations", True), base=base)
    z_dist = torch.cdist(res.samples.latents, base.latents).min(1).values.mean()
    assert len(res.samples) == 16 and z_dist < torch.cdist(gen.latents(16), base.latents).min(1).values.mean()


# ---- the CLI --------------------------------------------------------------------------------------
FAST = [
    "data=mnist5k",
    "n=32",
    "n_real=300",
    "evaluator.kid_subsets=5",
    "evaluator.kid_subset_size=30",
    "refinement.drs.burn_in=200",
    "refinement.drs.max_candidates=1000",
    "refinement.finetune.steps=2",
    "refinement.langevin.steps=5",
    f"paths.cache_dir={REPO / 'outputs' / 'cache'}",
]


def test_cli_end_to_end(tiny_ckpt, tmp_path) -> None:
    source = tiny_ckpt.read_bytes()
    res = run_script(
        "agent.py",
        f"ckpt={tiny_ckpt}",
        "request=generate new art",
        "policy=threshold",
        "policy.actions=[drs,langevin,truncation,finetune]",
        "budget.steps=4",
        *FAST,
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    out = tmp_path / "run"
    trace = json.loads((out / "trace.json").read_text())
    jsonschema.validate(trace, SCHEMA)
    assert [s["action"] for s in trace["steps"]] == ["generate", "drs", "langevin", "truncation", "finetune"]
    assert trace["request"]["task"] == "create" and "budget spent" in trace["stop"]["reason"]
    assert len(list((out / "final").glob("*.png"))) == 32
    assert trace["verdict"]["split"] == "report" and (out / "report.html").is_file()
    report = (out / "report.md").read_text()
    assert "generate new art" in report and "![final](grid.png)" in report
    assert all((out / "steps" / f"{s['index']:02d}_{s['action']}.png").is_file() for s in trace["steps"])
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert tiny_ckpt.read_bytes() == source  # never overwrites its inputs


def test_unknown_policy_is_a_composition_error(make_cfg) -> None:
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException, match="greedy"):
        make_cfg("agent", ["policy=greedy", "ckpt=x"])


def test_checkpoint_errors_surface_from_the_generation_agent(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        GenerationAgent(str(tmp_path / "none.ckpt"))
