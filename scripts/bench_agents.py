"""Does the director help? Held-out numbers, several seeds, equal n, and what the same seconds buy otherwise.

For each seed, on the **report** split (the test set) and on latents no decision saw:

- raw samples;
- each refinement action applied once to those raw samples;
- each policy (rule: its DRS-then-Langevin plan; threshold; bandit): a full Director run (decisions on the selection split), whose
  accepted chain is replayed on the fresh latents (the run's own held-out verdict);
- the equal-compute baseline: best-of-k by the discriminator (draw k x n samples, keep the n that D rates
  highest), for the k whose time is closest to the policies' median time.

Prints per-seed rows and a mean ± sd table, writes ``results.json`` and the plot of FID (± SE) against
cumulative seconds per policy (selection split, the decisions' view, with the held-out verdict at the end).

    python scripts/bench_agents.py ckpt=PATH --seeds 0 1 2 -- n=1000 budget.steps=6 device=cpu
    python scripts/bench_agents.py ckpt=PATH --plot docs/images/director_fid_vs_seconds.png -- evaluator=fid_inception
    # seeds in parallel (one process each, same --out), then one table and plot:
    python scripts/bench_agents.py PATH --seeds 0 --out D -- device=cuda & ... ; wait
    python scripts/bench_agents.py PATH --seeds 0 1 2 --out D --merge --plot D/plot.png

Arguments after ``--`` are agent.yaml overrides.
"""

from __future__ import annotations

import argparse
import json
import statistics
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
from artdirector.io import write_json
from artdirector.runtime import CONFIG_DIR

ACTIONS = [
    ("drs", {}),
    ("langevin", {}),
    ("dot", {}),
    ("truncation", {"threshold": 1.0}),
    ("finetune", {}),
]
POLICIES = ("rule", "threshold", "bandit")
BEST_OF = (2, 4, 8, 16)


def cfg_for(out: Path, name: str, overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        cfg = compose("agent", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.root_dir = str(Path.cwd())
        cfg.hydra.runtime.output_dir = str(out / name)
        cfg.paths.output_dir = str(out / name)
    HydraConfig().set_config(cfg)
    return cfg


def metrics(report) -> dict[str, float]:
    m = report.metrics()
    return {k: m[k] for k in ("fid", "fid_se", "kid", "kid_std", "precision", "recall")}


@torch.no_grad()
def best_of_k(director, k: int, seed: int):
    """n samples: the highest-D of k x n fresh ones (the equal-compute baseline)."""
    gen = director.gen
    gen.reseed(seed)
    pool = gen.from_latents(gen.latents(k * director.n))
    logits = gen.critic(pool.images)
    keep = logits.topk(director.n).indices
    return pool.derived(pool.images[keep], pool.latents[keep], f"best_of_{k}")


# The policies are compared at the same step budget; a budget in seconds would cut them where the machine
# happens to be slow (and leave no held-out verdict), so it is set out of reach unless given after ``--``.
NO_TIME_LIMIT = "budget.seconds=1000000"


def run_seed(out: Path, seed: int, overrides: list[str]) -> dict:
    rows, curves = {}, {}
    base = [NO_TIME_LIMIT, *overrides, f"seed={seed}", "request=generate new art"]
    # raw and each action on the fresh (replay) latents, measured on the report split
    director, request, _ = build(cfg_for(out, f"seed{seed}/actions", [*base, "policy=rule", "replay=false"]))
    replay_seed = director.replay_seed
    director.gen.reseed(replay_seed)
    t0 = time.perf_counter()
    raw = director.gen.generate(request, director.n)
    raw_seconds = time.perf_counter() - t0
    raw_report = director.eval.evaluate(raw, director.gen.creator, split="report")
    rows["raw samples"] = {**metrics(raw_report), "seconds": raw_seconds}
    for name, params in ACTIONS:
        t0 = time.perf_counter()
        cand = director.refiner.refine(raw, Action(name, dict(params)))
        seconds = raw_seconds + time.perf_counter() - t0
        report = director.eval.evaluate(cand.samples, cand.creator or director.gen.creator, split="report")
        label = name + "".join(f" {k}={v}" for k, v in params.items())
        rows[f"action: {label}"] = {**metrics(report), "seconds": seconds}
        print(
            f"seed {seed} {label}: FID {report.fid:.2f} ± {report.report.fid_se:.2f} ({seconds:.0f} s)",
            flush=True,
        )
    # the policies: full runs, the held-out verdict of each
    for policy in POLICIES:
        # the rule policy's fixed plan (its 'refine' plan: DRS then Langevin) on new samples
        extra = ["policy.plans.create=[drs,langevin]"] if policy == "rule" else []
        director, request, b = build(
            cfg_for(out, f"seed{seed}/policy_{policy}", [*base, f"policy={policy}", *extra])
        )
        t0 = time.perf_counter()
        result = director.run(request, base=b)
        seconds = time.perf_counter() - t0
        v = result.verdict
        if not v:
            sys.exit(
                f"seed {seed}, policy {policy}: no held-out verdict ({result.stop_reason}); rerun with a "
                "larger budget.seconds after --, or replay=true"
            )
        chain = " -> ".join(v["chain"]) or "none kept"
        rows[f"policy: {policy}"] = {
            **{k: v["directed"][k] for k in metrics_keys()},
            "seconds": seconds,
            "raw_fid": v["raw"]["fid"],
            "gain": v["gain"],
            "gain_se": v["gain_se"],
            "chain": chain,
            "stop": result.stop_reason,
        }
        curves[policy] = {
            "elapsed": [s.elapsed for s in result.memory.steps],
            "fid": [s.metrics_after["fid"] for s in result.memory.steps],
            "fid_se": [s.metrics_after["fid_se"] for s in result.memory.steps],
            "accepted": [s.accepted for s in result.memory.steps],
            "verdict": [seconds, v["directed"]["fid"], v["directed"]["fid_se"]],
        }
        print(
            f"seed {seed} policy {policy}: held-out FID {v['raw']['fid']:.2f} -> {v['directed']['fid']:.2f} "
            f"± {v['directed']['fid_se']:.2f} ({chain}; {seconds:.0f} s)",
            flush=True,
        )
    # equal compute: best-of-k by D, for the k whose time is closest to the policies' median time
    budget = statistics.median(rows[f"policy: {p}"]["seconds"] for p in POLICIES)
    timed = {}
    for k in BEST_OF:
        t0 = time.perf_counter()
        s = best_of_k(director, k, replay_seed)
        timed[k] = (time.perf_counter() - t0, s)
        if timed[k][0] > budget:
            break
    k = min(timed, key=lambda kk: abs(timed[kk][0] - budget))
    seconds, samples = timed[k]
    report = director.eval.evaluate(samples, director.gen.creator, split="report")
    rows["equal compute: best-of-k by D"] = {**metrics(report), "seconds": seconds, "k": k}
    return {
        "seed": seed,
        "rows": rows,
        "curves": curves,
        "n": director.n,
        "reference": director.eval.report.reference_key,
        "features": director.eval.report.identity,
    }


def metrics_keys() -> tuple[str, ...]:
    return ("fid", "fid_se", "kid", "kid_std", "precision", "recall")


def table(results: list[dict]) -> str:
    names = list(results[0]["rows"])
    raw = [r["rows"]["raw samples"]["fid"] for r in results]
    lines = [
        "| method | report FID (mean ± sd over seeds) | vs raw | precision | recall | seconds | notes |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name in names:
        rs = [r["rows"][name] for r in results]
        fid = [x["fid"] for x in rs]
        rel = [100 * (f - r0) / r0 for f, r0 in zip(fid, raw, strict=True)]

        def ms(vals, d=2):
            sd = statistics.stdev(vals) if len(vals) > 1 else float("nan")
            return f"{statistics.fmean(vals):.{d}f} ± {sd:.{d}f}"

        notes = "; ".join(sorted({x.get("chain", "") for x in rs} - {""}))
        if "k" in rs[0]:
            notes = f"k = {', '.join(str(x['k']) for x in rs)}"
        lines.append(
            f"| {name} | {ms(fid)} | {ms(rel, 1)} % | {ms([x['precision'] for x in rs], 3)} | "
            f"{ms([x['recall'] for x in rs], 3)} | {ms([x['seconds'] for x in rs], 0)} | {notes} |"
        )
    return "\n".join(lines)


def plot(results: list[dict], path: Path) -> None:
    """FID relative to the raw samples of the same split (so that the decisions' selection-split curve and
    the held-out report-split verdict share one axis), ± bootstrap SE, against cumulative seconds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for i, policy in enumerate(POLICIES):
        colour = f"C{i}"
        for j, r in enumerate(results):
            c = r["curves"][policy]
            best = []  # the kept samples' FID after each step
            for f, se, acc in zip(c["fid"], c["fid_se"], c["accepted"], strict=True):
                best.append((f, se) if acc or not best else best[-1])
            f0 = best[0][0]
            ax.errorbar(
                c["elapsed"],
                [100 * b[0] / f0 for b in best],
                yerr=[100 * b[1] / f0 for b in best],
                color=colour,
                alpha=0.5,
                marker="o",
                ms=3,
                capsize=2,
                label=f"{policy}: decisions (selection split)" if j == 0 else None,
            )
            t, f, se = c["verdict"]
            raw = r["rows"][f"policy: {policy}"]["raw_fid"]
            ax.errorbar(
                [t],
                [100 * f / raw],
                yerr=[100 * se / raw],
                color=colour,
                marker="*",
                ms=11,
                capsize=3,
                label=f"{policy}: held-out verdict (report split)" if j == 0 else None,
            )
    ax.axhline(100, color="grey", ls="--", lw=1, label="raw samples")
    ax.axhline(70, color="grey", ls=":", lw=1, label="goal: 30 % lower")
    ax.set_xlabel("cumulative seconds")
    ax.set_ylabel("FID, % of the raw samples' (± bootstrap SE)")
    r0 = results[0]
    ax.set_title(f"The director over time: n={r0['n']}, LeNet features, {len(results)} seeds", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ckpt")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument(
        "--out",
        type=Path,
        default=Path("outputs/bench_agents") / datetime.now().strftime("%Y-%m-%d/%H-%M-%S"),
    )
    p.add_argument("--plot", type=Path, default=None, help="where to write the FID-against-seconds PNG")
    p.add_argument(
        "--merge",
        action="store_true",
        help="run nothing: tabulate the seed<N>.json that earlier (e.g. parallel, one seed each) runs left in --out",
    )
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    args = p.parse_args(argv[:cut])
    args.overrides = argv[cut + 1 :]
    ckpt = args.ckpt if args.ckpt.startswith("ckpt=") else f"ckpt={args.ckpt}"
    if args.merge:
        found = [args.out / f"seed{s}.json" for s in args.seeds if (args.out / f"seed{s}.json").is_file()]
        if not found:
            sys.exit(f"no seed<N>.json for seeds {args.seeds} in {args.out}")
        results = [json.loads(f.read_text()) for f in found]
    else:
        results = []
        for s in args.seeds:
            results.append(run_seed(args.out, s, [ckpt, *args.overrides]))
            write_json(args.out / f"seed{s}.json", results[-1])
    write_json(args.out / "results.json", results)
    r0 = results[0]
    print(
        f"\n{r0['n']} generated vs {r0['reference']['n']} real {r0['reference']['dataset']} images of the report "
        f"split; features {r0['features']}; seeds {args.seeds}; {ckpt}; torch threads {torch.get_num_threads()}\n"
    )
    print(table(results))
    if args.plot:
        plot(results, args.plot)
        print(f"\nplot: {args.plot}")


if __name__ == "__main__":
    main()
