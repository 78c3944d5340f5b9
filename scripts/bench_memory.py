"""Does the memory across runs save time? One fixed sequence of requests on the shipped zoo, run twice with
the same seeds: with ``memory=false`` and with the memory on, starting from an empty memory file, so that
runs 2..N of the memory arm read what runs 1..N-1 stored.

Per request and arm: the seconds of the Director's run (decisions, verdict, storing the run; the set-up
before it, loading the creators and the references, is timed apart and is the same work in both arms), the
actions tried, the held-out verdict (report split, fresh latents) and what the trace's ``memory`` block says
the memory suggested and whether the run followed it. The two arms of one request run back to back, first
one then the other in turn, so that a busy machine slows both alike.

Prints the per-request table and the totals, writes every row to ``--out``/rows.json.

    OMP_NUM_THREADS=1 python scripts/bench_memory.py --policies threshold bandit
    python scripts/bench_memory.py --requests "draw sevens" "generate new art" --seed 0 -- n=500

Arguments after ``--`` are agent.yaml overrides, added after the script's small-CPU defaults (``SMALL``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from artdirector.agent import build
from artdirector.agents.store import FILENAME, creator_key, remember
from artdirector.errors import ConfigError, report_user_errors
from artdirector.io import write_json
from artdirector.runtime import CONFIG_DIR

# Class requests go to the class-conditional creators, "new art" to all of them, as routing picks; the
# memory is kept per creator and request kind, so the sequence comes back to each kind several times.
REQUESTS = (
    "draw sevens",
    "generate new art",
    "threes and fives",
    "draw some 1s",
    "generate new art",
    "draw fours",
    "sevens and nines",
    "generate new art",
    "draw some 2s",
    "draw eights",
    "generate new art",
    "draw sixes",
)
# Small enough for one CPU thread; the same for both arms.
SMALL = (
    "n=200",
    "n_real=1000",
    "budget.steps=3",
    "budget.seconds=3600",
    "device=cpu",
    "copying.enabled=false",
    "refinement.drs.burn_in=500",
    "refinement.drs.max_candidates=4000",
    "refinement.langevin.steps=10",
    "refinement.dot.steps=10",
    "refinement.finetune.steps=20",
)
ARMS = ("off", "on")


def compose_agent(out: Path, overrides: Sequence[str]):
    """The agent config as ``scripts/agent.py`` composes it, writing its run into ``out``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        cfg = compose("agent", overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.root_dir = str(Path.cwd())
        cfg.hydra.runtime.output_dir = str(out)
        cfg.paths.output_dir = str(out)
    HydraConfig().set_config(cfg)
    return cfg


def memory_effect(block: dict[str, Any] | None) -> tuple[str, bool]:
    """(what the memory suggested, in words; whether it changed a decision): it did when it suggested
    skipping an action, a first action or stopping at once, and the run followed that."""
    if not block or not block.get("suggested"):
        return "-", False
    s = block["suggested"]
    if s["use"] == "skip":
        said = f"skip {', '.join(s['skip'])}" if s["skip"] else "nothing to skip"
        acted = bool(s["skip"])
    elif s.get("stop"):
        said, acted = "stop at once", True
    elif s.get("start") is not None:
        said, acted = f"start with {s['start']}", True
    else:
        said, acted = "no remembered winner", False
    return said, acted and block.get("followed") is True


def run_one(out: Path, request: str, seed: int, policy: str, memory: Path | None, overrides: Sequence[str]):
    """One Director run as ``scripts/agent.py`` does it (build, run, store in the memory); its row."""
    mem = [f"memory.path={memory}"] if memory is not None else ["memory=false"]
    t0 = time.perf_counter()
    cfg = compose_agent(out, [*overrides, f"request={request}", f"seed={seed}", f"policy={policy}", *mem])
    director, req, base = build(cfg)
    creator = creator_key(director.gen.creator.path)  # as the memory names it, before a finetune swaps it
    setup = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    result = director.run(req, base=base)
    run_id = remember(cfg.get("memory"), director.output_dir)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    trace = json.loads((director.output_dir / "trace.json").read_text())
    block = trace.get("memory")
    suggested, changed = memory_effect(block)
    v = result.verdict
    steps = [s for s in trace["steps"][1:] if not s.get("finishing")]
    return {
        "request": request,
        "seed": seed,
        "policy": policy,
        "creator": creator,
        "classes": list(req.classes) if req.classes else None,
        "setup_seconds": setup,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "actions": [s["action"] for s in steps],
        "steps": [
            {k: s[k] for k in ("action", "gain", "gain_se", "accepted", "seconds", "decision")} for s in steps
        ],
        "kept": [s["action"] for s in steps if s["accepted"]],
        "stop": result.stop_reason,
        "verdict": (
            {
                "split": "report",
                "raw_fid": v["raw"]["fid"],
                "directed_fid": v["directed"]["fid"],
                "directed_fid_se": v["directed"]["fid_se"],
                "gain": v["gain"],
                "gain_se": v["gain_se"],
                "chain": list(v["chain"]),
            }
            if v
            else None
        ),
        # what the memory held for this creator and kind when the run started: tries per action
        "prior_tries": {a: p["tries"] for a, p in (block or {}).get("prior", {}).items()},
        "suggested": suggested,
        "suggestion": (block or {}).get("suggested"),  # the trace's own record of it
        "followed": (block or {}).get("followed"),
        "memory_changed_decision": changed,
        "stored_run_id": run_id,
        "n": director.n,
        "features": director.eval.report.identity,
    }


def same_verdict(off: dict, on: dict) -> bool:
    """The same held-out verdict: the same kept chain replayed on the same fresh latents gives the same
    report-split FID (to 1e-6 of it); two runs without a verdict agree."""
    a, b = off["verdict"], on["verdict"]
    if a is None or b is None:
        return a is b
    return a["chain"] == b["chain"] and abs(a["directed_fid"] - b["directed_fid"]) <= 1e-6 * max(
        1.0, abs(a["directed_fid"])
    )


def run_sequence(
    out: Path,
    requests: Sequence[str],
    seeds: Sequence[int],
    policy: str,
    overrides: Sequence[str],
    after_each: Callable[[list[dict]], None] | None = None,
) -> list[dict]:
    """Both arms over the sequence; the memory arm's file starts empty. One row per request: the two arms'
    rows and their comparison; ``after_each`` is given the rows so far after each request."""
    memory = out / policy / "memory" / FILENAME
    if memory.exists():
        raise ConfigError(
            f"{memory} already exists: the memory arm starts from an empty file; use a new --out"
        )
    rows = []
    for i, (request, seed) in enumerate(zip(requests, seeds, strict=True)):
        arms = {}
        # the two arms back to back, the first in turn, so that a change in the machine's load hits both
        for arm in ARMS if i % 2 == 0 else ARMS[::-1]:
            run_dir = out / policy / arm / f"{i:02d}"
            arms[arm] = run_one(run_dir, request, seed, policy, memory if arm == "on" else None, overrides)
        off, on = arms["off"], arms["on"]
        rows.append(
            {
                "index": i,
                "request": request,
                "seed": seed,
                "policy": policy,
                "off": off,
                "on": on,
                "same_actions": off["actions"] == on["actions"],
                "same_verdict": same_verdict(off, on),
            }
        )
        print(row_line(rows[-1]), flush=True)
        if after_each is not None:
            after_each(rows)
    return rows


def _fid(r: dict) -> str:
    v = r["verdict"]
    return "-" if v is None else f"{v['directed_fid']:.2f} ± {v['directed_fid_se']:.2f}"


def row_line(row: dict) -> str:
    off, on = row["off"], row["on"]
    return (
        f"{row['policy']} #{row['index']} {row['request']!r} ({on['creator']}): off {off['seconds']:.1f} s "
        f"{'+'.join(off['actions']) or 'no action'}, on {on['seconds']:.1f} s "
        f"{'+'.join(on['actions']) or 'no action'}; memory: {on['suggested']}"
    )


def table(rows: list[dict]) -> str:
    lines = [
        "| # | request | creator | wall s off | wall s on | CPU s off | CPU s on | actions off | actions on "
        "| memory suggested | changed a decision | held-out FID off | held-out FID on | same verdict |",
        "|---:|---|---|---:|---:|---:|---:|---|---|---|---|---:|---:|---|",
    ]
    for r in rows:
        off, on = r["off"], r["on"]
        lines.append(
            f"| {r['index'] + 1} | {r['request']} | {on['creator']} | {off['seconds']:.1f} | "
            f"{on['seconds']:.1f} | {off['cpu_seconds']:.1f} | {on['cpu_seconds']:.1f} | "
            f"{', '.join(off['actions']) or '-'} | {', '.join(on['actions']) or '-'} | {on['suggested']} | "
            f"{'yes' if on['memory_changed_decision'] else 'no'} | {_fid(off)} | {_fid(on)} | "
            f"{'yes' if r['same_verdict'] else 'no'} |"
        )
    t = totals(rows)
    lines.append(
        f"| all | {t['requests']} requests | | {t['seconds_off']:.1f} | {t['seconds_on']:.1f} | "
        f"{t['cpu_seconds_off']:.1f} | {t['cpu_seconds_on']:.1f} | {t['actions_off']} actions | "
        f"{t['actions_on']} actions | | {t['changed']} | | | {t['same_verdict']} of {t['requests']} |"
    )
    return "\n".join(lines)


def totals(rows: list[dict]) -> dict[str, Any]:
    out: dict[str, Any] = {"requests": len(rows)}
    for arm in ARMS:
        for key in ("seconds", "cpu_seconds", "setup_seconds"):
            out[f"{key}_{arm}"] = sum(r[arm][key] for r in rows)
        out[f"actions_{arm}"] = sum(len(r[arm]["actions"]) for r in rows)
    for key in ("seconds", "cpu_seconds"):
        off = out[f"{key}_off"]
        out[f"{key}_saved"] = (off - out[f"{key}_on"]) / off if off else float("nan")
    out["changed"] = sum(r["on"]["memory_changed_decision"] for r in rows)
    out["same_verdict"] = sum(r["same_verdict"] for r in rows)
    return out


@report_user_errors
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", nargs="+", default=list(REQUESTS), help="the sequence (default: REQUESTS)")
    p.add_argument("--seed", type=int, default=0, help="request i runs with seed + i in both arms")
    p.add_argument("--policies", nargs="+", choices=("threshold", "bandit"), default=["threshold"])
    p.add_argument(
        "--out",
        type=Path,
        default=Path("outputs/bench_memory") / datetime.now().strftime("%Y-%m-%d/%H-%M-%S"),
    )
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    args = p.parse_args(argv[:cut])
    overrides = [*SMALL, *argv[cut + 1 :]]
    seeds = [args.seed + i for i in range(len(args.requests))]
    results = {"requests": args.requests, "seeds": seeds, "overrides": overrides, "rows": [], "totals": {}}
    for policy in args.policies:
        done = list(results["rows"])

        def save(rows: list[dict], policy: str = policy, done: list[dict] = done) -> None:
            # after every request, so that a run cut short still leaves its rows
            results["rows"] = done + rows
            results["totals"][policy] = totals(rows)
            write_json(args.out / "rows.json", results)

        run_sequence(args.out, args.requests, seeds, policy, overrides, after_each=save)
    r0 = results["rows"][0]["on"]
    print(
        f"\nn={r0['n']} per batch; held-out verdicts on the report split (fresh latents); decisions and the "
        f"memory's prior on the selection split; features {r0['features']}; seeds {seeds[0]}..{seeds[-1]}; "
        f"torch threads {torch.get_num_threads()}; overrides {' '.join(overrides)}"
    )
    for policy in args.policies:
        t = results["totals"][policy]
        print(f"\n### {policy}\n")
        print(table([r for r in results["rows"] if r["policy"] == policy]))
        print(
            f"\nrun seconds: wall {t['seconds_off']:.1f} without memory, {t['seconds_on']:.1f} with "
            f"({100 * t['seconds_saved']:+.1f} % saved); CPU {t['cpu_seconds_off']:.1f} / "
            f"{t['cpu_seconds_on']:.1f} ({100 * t['cpu_seconds_saved']:+.1f} % saved); set-up (not in these) "
            f"{t['setup_seconds_off']:.1f} / {t['setup_seconds_on']:.1f} s wall"
        )
    print(f"\nrows: {args.out / 'rows.json'}; memory files: {args.out}/<policy>/memory/{FILENAME}")


if __name__ == "__main__":
    main()
