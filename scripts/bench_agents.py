"""Does the director help? FID of raw samples vs after each refinement action, and of each policy at the
same budget, all at the same sample count and feature network, with compute time.

    python scripts/bench_agents.py ckpt=outputs/full_mnist_dcgan/checkpoints/last.ckpt n=500 budget.steps=4

Arguments are agent.yaml overrides (evaluator=fid_inception on a GPU). Runs write under
outputs/bench_agents/<date>/<time>/<name>/ (each with its trace.json and report.md).
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from artdirector.agent import build
from artdirector.agents import Action
from artdirector.runtime import CONFIG_DIR

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "outputs" / "bench_agents" / datetime.now().strftime("%Y-%m-%d/%H-%M-%S")

ACTIONS = [
    ("drs", {}),
    ("langevin", {}),
    ("dot", {}),
    ("truncation", {"threshold": 1.0}),
    ("truncation", {"threshold": 0.5}),
    ("finetune", {}),
]


def cfg_for(name: str, overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        cfg = compose("agent", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.root_dir = str(ROOT)
        cfg.hydra.runtime.output_dir = str(OUT / name)
        cfg.paths.output_dir = str(OUT / name)
    HydraConfig().set_config(cfg)
    return cfg


def row(name, report, seconds, note=""):
    m = report.metrics()
    return (
        f"| {name} | {m['fid']:.3f} | {m['kid']:.4f} | {m['precision']:.3f} | {m['recall']:.3f} | "
        f"{m['mean_d_logit']:+.3f} | {seconds:.1f} | {note} |"
    )


def main() -> None:
    overrides = sys.argv[1:]
    rows = []
    # raw samples, then each action applied once to the same raw samples (same seed -> same latents)
    director, request, _ = build(cfg_for("raw", [*overrides, "request=generate new art", "policy=rule"]))
    t0 = time.perf_counter()
    source = director.gen.ckpt
    raw = director.gen.generate(request, director.n)
    raw_report = director.eval.evaluate(raw, director.gen.model)
    rows.append(row("raw samples", raw_report, time.perf_counter() - t0))
    for name, params in ACTIONS:
        director, request, _ = build(cfg_for(name, [*overrides, "request=generate new art", "policy=rule"]))
        samples = director.gen.generate(request, director.n)
        assert torch.equal(samples.latents, raw.latents)
        t0 = time.perf_counter()
        new = director.refiner.refine(samples, Action(name, params))
        seconds = time.perf_counter() - t0
        report = director.eval.evaluate(new, director.gen.model)
        label = name + (f" ({', '.join(f'{k}={v}' for k, v in params.items())})" if params else "")
        rows.append(row(f"action: {label}", report, seconds))
        print(rows[-1], flush=True)
    # policies at the same budget; the rule policy's 'refine' plan is applied to the raw samples
    raw_dir = OUT / "rule_input"
    director, request, _ = build(
        cfg_for("rule_input", [*overrides, "request=generate new art", "policy=rule"])
    )
    director.run(request)
    for policy, extra in (
        ("rule", ["request=refine these", f"input={raw_dir}"]),
        ("threshold", ["request=generate new art"]),
        ("bandit", ["request=generate new art"]),
    ):
        director, request, base = build(cfg_for(f"policy_{policy}", [*overrides, f"policy={policy}", *extra]))
        t0 = time.perf_counter()
        result = director.run(request, base=base)
        actions = " -> ".join(
            f"{s.action}{'' if s.accepted else ' (reverted)'}" for s in result.memory.refinements
        )
        rows.append(
            row(
                f"policy: {policy}",
                result.report,
                time.perf_counter() - t0,
                f"{actions or 'none'}; stop: {result.stop_reason}",
            )
        )
        print(rows[-1], flush=True)
    ev = director.eval.evaluator
    print(
        f"\n{director.n} samples vs {ev.reference_key['n']} real {ev.reference_key['dataset']}/"
        f"{ev.reference_key['split']}, features {ev.identity}, checkpoint {source}, "
        f"torch threads {torch.get_num_threads()}"
    )
    print("| method | FID | KID | precision | recall | mean D logit | seconds | notes |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
