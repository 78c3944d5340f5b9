"""The honest director: decisions on the selection split that respect noise, rollback of samples and model,
the held-out replay on the report split, the floor, and a report.html people can open."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from types import SimpleNamespace

import jsonschema
import pytest
import torch

from artdirector.agents import Candidate, Director, RulePolicy, ThresholdPolicy, interpret
from artdirector.agents.refiners import REFINERS
from artdirector.creators.routing import read_evidence, route
from helpers import HTMLPage

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "src" / "artdirector" / "agents" / "trace_schema.json").read_text())


def _director(agents, out, policy, **kw) -> Director:
    gen, ev, ref = agents
    kw.setdefault("n", 64)
    return Director(gen, ev, ref, policy, out, tensorboard=False, **kw)


def _plan(*actions: str) -> RulePolicy:
    return RulePolicy(plans={"create": list(actions), "variations": [], "refine": []})


def test_a_rejected_finetune_restores_samples_and_model(agents, tiny_ckpt, tmp_path) -> None:
    gen, _, ref = agents
    ref.defaults["finetune"] = {"steps": 2}
    creator = gen.creator
    res = _director(agents, tmp_path / "run", _plan("finetune"), z=1e9, replay=False).run(
        interpret("new", False)
    )
    (step,) = res.memory.refinements
    assert step.action == "finetune" and not step.accepted and "rejected" in step.decision
    assert (tmp_path / "checkpoints" / "finetune_01.ckpt").is_file()  # the candidate was made ...
    assert gen.creator is creator and gen.ckpt == tiny_ckpt  # ... and neither it nor its samples were kept
    assert torch.equal(res.samples.images, creator.from_latents(res.samples.latents))
    trace = json.loads((tmp_path / "run" / "trace.json").read_text())
    assert trace["final"]["model"] == str(tiny_ckpt) and trace["chain"] == []


def test_an_accepted_finetune_switches_the_model_and_the_trace_names_it(
    agents, tmp_path, monkeypatch
) -> None:
    gen, _, ref = agents
    ref.defaults["finetune"] = {"steps": 2}
    real = ref.real_images[:64]
    original = REFINERS["finetune"].apply

    # a real finetune whose samples are replaced by real digits: kept
    def finetune_to_real(samples, ctx, **kw):
        cand = original(samples, ctx, **kw)
        cand.samples = cand.samples.derived(real, cand.samples.latents, "finetune", model=cand.model_path)
        return cand

    monkeypatch.setattr(REFINERS["finetune"], "apply", finetune_to_real)
    res = _director(agents, tmp_path / "run", _plan("finetune"), replay=False).run(interpret("new", False))
    assert res.memory.refinements[0].accepted
    assert str(gen.ckpt).endswith("finetune_01.ckpt") and gen.model_version >= 1
    trace = json.loads((tmp_path / "run" / "trace.json").read_text())
    assert trace["final"]["model"].endswith("finetune_01.ckpt")
    assert trace["chain"][0]["model"].endswith("finetune_01.ckpt")


def test_a_gain_within_noise_is_rejected_and_a_real_gain_is_kept(agents, tmp_path, monkeypatch) -> None:
    _gen, _, ref = agents
    real = ref.real_images

    def refine(samples, action):
        # drs: one image of 64 made a real digit, judged unpaired: a gain inside the noise
        if action.name == "drs":
            images = torch.cat([real[:1], samples.images[1:]])
            return Candidate(samples.derived(images, samples.latents, action.name), paired=False)
        return Candidate(samples.derived(real[: len(samples)], samples.latents, action.name))  # real digits

    monkeypatch.setattr(ref, "refine", refine)
    res = _director(agents, tmp_path / "run", _plan("drs", "langevin"), z=2.0, replay=False).run(
        interpret("new", False)
    )
    noise, better = res.memory.refinements
    assert not noise.accepted and abs(noise.gain) <= 2 * noise.gain_se
    assert better.accepted and better.gain > 2 * better.gain_se > 0
    trace = json.loads((tmp_path / "run" / "trace.json").read_text())
    assert "bootstrap standard error" in trace["decision_rule"]
    assert all("SE" in s["decision"] for s in trace["steps"][1:])


def test_the_verdict_replays_the_chain_on_fresh_latents_against_the_report_split(agents, tmp_path) -> None:
    gen, _, _ = agents
    seen = []
    generate = gen.generate

    def spy(request, n, base=None, **kw):
        s = generate(request, n, base=base, **kw)
        seen.append(s.latents.clone())
        return s

    gen.generate = spy
    pol = ThresholdPolicy(actions=["truncation"])
    res = _director(agents, tmp_path / "run", pol, max_steps=1, z=0.0).run(interpret("new", False))
    decision_z, replay_z = seen  # one draw for the decisions, one fresh draw for the verdict
    assert not torch.equal(decision_z, replay_z)
    v = res.verdict
    assert v["split"] == "report" and v["held_out"] and v["chain"] == [s.action for s in res.chain]
    assert v["raw"]["n_fake"] == v["directed"]["n_fake"] == 64
    trace = json.loads((tmp_path / "run" / "trace.json").read_text())
    jsonschema.validate(trace, SCHEMA)
    assert trace["evaluator"]["reference"]["split"] == "selection"
    assert trace["evaluator"]["report_reference"]["split"] == "report"
    assert (tmp_path / "run" / "verdict" / "raw.png").is_file()
    if res.chain:  # an accepted truncation is replayed: the directed latents are truncated
        assert v["directed"]["fid"] != v["raw"]["fid"] and v["gain_se"] > 0
    else:  # nothing kept: the directed samples are the raw ones
        assert v["gain"] == 0 and v["directed"]["fid"] == v["raw"]["fid"]


def test_floor_and_a_target_relative_to_it(agents, data, tmp_path) -> None:
    res = _director(
        agents,
        tmp_path / "run",
        _plan(),
        target_fid_over_floor=1.5,
        floor_images=data.real_images("train", 192),
        replay=False,
    ).run(interpret("new", False))
    trace = json.loads((tmp_path / "run" / "trace.json").read_text())
    floor = trace["floor"]
    assert floor["n"] == 64 and floor["selection"]["fid"] > 0 and floor["selection"]["sd"] >= 0
    assert trace["target"]["fid"] == pytest.approx(1.5 * floor["selection"]["fid"])
    assert "real vs real at n=64" in (tmp_path / "run" / "report.md").read_text()
    assert res.stop_reason


def test_report_html_is_self_contained_well_formed_and_names_every_image(agents, tmp_path) -> None:
    pol = ThresholdPolicy(actions=["truncation", "langevin"])
    _director(agents, tmp_path / "run", pol, max_steps=2, z=0.0).run(interpret("generate new art", False))
    page = (tmp_path / "run" / "report.html").read_text()
    checker = HTMLPage(page)
    assert not checker.errors and checker.stack == [], (checker.errors, checker.stack)
    # before/after, the two verdict grids and one per step (3 steps): every image inline, named, captioned
    assert len(checker.images) == 2 + 2 + 3 == checker.captions
    for img in checker.images:
        assert img["alt"].strip() and img["src"].startswith("data:image/png;base64,")
        assert base64.b64decode(img["src"].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert checker.svgs == 2  # the class histogram and the FID-against-seconds curve
    for needle in ("generate new art", "Decision rule", "Floor", "Held-out verdict", "gain ± SE", "class"):
        assert needle in page


def test_catalogue_compares_only_like_with_like(tmp_path) -> None:
    from artdirector.io import file_sha256

    a, b = tmp_path / "a.ckpt", tmp_path / "b.ckpt"
    a.write_bytes(b"model a")
    b.write_bytes(b"model b")

    def entry(ckpt, fid, n=1000, feats="lenet:1", split="report", sha=None, tag=""):
        path = ckpt.with_name(f"{ckpt.stem}.lenet-{n}{tag}.metrics.json")
        path.write_text(
            json.dumps(
                {
                    "n_samples": n,
                    "feature_network": feats,
                    "reference": {"split": split},
                    "metrics": {"fid": fid},
                    "checkpoint_sha256": sha or file_sha256(ckpt),
                }
            )
        )

    entry(a, 50.0)
    entry(b, 40.0)
    entry(a, 1.0, n=64)  # a smaller n: not comparable with b's n=1000
    entry(a, 2.0, tag="x", split="selection")  # another split, which only a was measured on
    entry(b, 100.0, tag="y", sha="0" * 64)  # written for other bytes: stale

    def creator(path):
        return SimpleNamespace(name=path.stem, path=path, accepts=frozenset({"nothing"}), card=None)

    r = route([read_evidence(creator(a)), read_evidence(creator(b))])
    assert r.chosen == 1 and r.key == (1000, "lenet:1", "report")
    assert (
        "n=1000" in r.why and "report split" in r.why and "no selection-split evidence was recorded" in r.why
    )
    assert [row["fid"] for row in r.table] == [50.0, 40.0]


@pytest.mark.parametrize("action", ["langevin", "finetune"])
def test_a_budget_that_ends_during_a_long_action_stops_it_and_the_trace_says_so(
    agents, tmp_path, monkeypatch, action
) -> None:
    """Hours of work asked for, and the budget runs out one second into it: the action stops at its next look
    at the clock, its partial result is judged as usual, nothing else starts (no further step, no held-out
    replay), and the trace says the budget stopped it. The agents' clock is moved on at the action's start
    (to one second before the deadline), so that what runs before it, however slow, spends none of it."""
    from artdirector.agents import director as director_module
    from artdirector.agents import refinement as refinement_module

    _gen, _ev, ref = agents
    ref.defaults[action] = {"steps": 1_000_000}
    offset = {"s": 0.0}
    clock = SimpleNamespace(perf_counter=lambda: time.perf_counter() + offset["s"])
    monkeypatch.setattr(director_module, "time", clock)
    monkeypatch.setattr(refinement_module, "time", clock)
    run_action = REFINERS[action].apply

    def late(samples, ctx, **params):
        offset["s"] = ref.deadline - 1.0 - time.perf_counter()
        return run_action(samples, ctx, **params)

    monkeypatch.setattr(REFINERS[action], "apply", late)
    t0 = time.perf_counter()
    res = _director(agents, tmp_path / "run", _plan(action, "truncation"), max_seconds=1000).run(
        interpret("new", False)
    )
    assert time.perf_counter() - t0 < 600  # not the million steps
    trace = json.loads((tmp_path / "run" / "trace.json").read_text())
    jsonschema.validate(trace, SCHEMA)
    assert [s["action"] for s in trace["steps"]] == ["generate", action]
    (step,) = res.memory.refinements
    done = int(step.decision.split("stopped at the budget after ")[1].split()[0])
    assert 0 < done < 1_000_000 and "of 1000000" in step.decision
    reason = trace["stop"]["reason"]
    assert "budget spent" in reason and f"({action}) stopped at the budget" in reason
    assert "held-out verdict not measured" in reason and trace["verdict"] == {}
