"""How long the agent takes: the entry point's import, a scene request from the shell, and each technique of
the default batch request per 1,000 images (with the whole default request end to end unless --quick).

    python scripts/bench_latency.py                  # everything (the default batch request: minutes)
    python scripts/bench_latency.py --quick          # a few minutes: no end-to-end batch request, n=250
    python scripts/bench_latency.py --json out.json  # also the numbers (and each technique's fingerprint)

Every time is wall seconds and CPU seconds (user + system, all threads): on a loaded machine the CPU seconds
are the steadier of the two. The scene request and the batch request run as a user runs them
(``python scripts/agent.py ...`` in a fresh process, warm: one unmeasured run first builds the caches); the
techniques run in one process on the default request's samples (``request="generate new art"``, the
creator the zoo routes it to), each applied once to the same generated batch and evaluated on the selection
split, as a Director step does. A technique's fingerprint (sums of its output latents and images, and the
selection FID) shows whether a change to the code changed what it produces. Run it from the repository root
(the data and the caches are found from the working directory, as for every script).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
SCENE = "a 3 left of a 7"
BATCH = "generate new art"
TECHNIQUES = ("drs", "langevin", "dot", "truncation", "finetune")
# what a scene request should not load (the goal: no Lightning trainer, no diffusers, no Inception) and what
# else is heavy at import
WATCH = (
    "lightning.pytorch.trainer.trainer",
    "diffusers",
    "artdirector.evaluation.features",
    "lightning",
    "torchmetrics",
    "torchvision",
    "scipy",
)
# runs scripts/agent.py (or an import) and reports, at exit, this process's CPU seconds and what it loaded
_PROBE = """
import atexit, json, os, runpy, sys, time
_c, _w = time.process_time(), time.perf_counter()
@atexit.register
def _done():
    print("BENCH " + json.dumps({"cpu": time.process_time() - _c, "wall": time.perf_counter() - _w,
          "loaded": [m for m in json.loads(os.environ["BENCH_WATCH"]) if m in sys.modules]}), file=sys.stderr)
if sys.argv[1] == "--import":
    import artdirector.agent
else:
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _child(args: list[str], cwd: Path) -> dict:
    """Run the probe in a fresh interpreter; wall seconds around it and what the probe says."""
    env = {**os.environ, "BENCH_WATCH": json.dumps(WATCH), "PYTHONWARNINGS": "ignore"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-c", _PROBE, *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if res.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({res.returncode}):\n{res.stderr[-3000:]}")
    probe = next(json.loads(x[6:]) for x in res.stderr.splitlines() if x.startswith("BENCH "))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "loaded": probe["loaded"], "import_cpu": probe["cpu"]}


def _median(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def bench_import(repeats: int) -> dict:
    """``import artdirector.agent`` (the entry point's module) in a fresh interpreter."""
    rows = [_child(["--import"], Path.cwd()) for _ in range(repeats)]
    return {"wall": _median(rows, "wall"), "cpu": _median(rows, "cpu"), "loaded": rows[-1]["loaded"]}


def bench_scene(repeats: int, out: Path) -> dict:
    """``python scripts/agent.py request="a 3 left of a 7"``, warm (one unmeasured run first)."""

    def once(i: int) -> dict:
        return _child(
            [str(REPO / "scripts" / "agent.py"), f"request={SCENE}", f"hydra.run.dir={out}/scene{i}"],
            Path.cwd(),
        )

    once(0)
    rows = [once(i + 1) for i in range(repeats)]
    return {
        "wall": _median(rows, "wall"),
        "cpu": _median(rows, "cpu"),
        "loaded": rows[-1]["loaded"],
        "runs": rows,
    }


def _timed(fn):
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def bench_techniques(n: int, out: Path, overrides: list[str]) -> dict:
    """Each technique of the default batch request once on the same n generated images, then evaluated."""
    from artdirector.agent import build
    from artdirector.agents import Action
    from artdirector.agents.refiners import REFINERS
    from bench_agents import cfg_for

    (director, request, _), wall, cpu = _timed(
        lambda: build(cfg_for(out, "techniques", [f"request={BATCH}", f"n={n}", "replay=false", *overrides]))
    )
    rows = {"build": {"wall": wall, "cpu": cpu, "per_1000": False}}
    samples, wall, cpu = _timed(lambda: director.gen.generate(request, n))
    rows["generate"] = {"wall": wall, "cpu": cpu, "per_1000": True}
    report, wall, cpu = _timed(lambda: director._evaluate(samples))
    rows["evaluate"] = {"wall": wall, "cpu": cpu, "per_1000": True, "fid": report.fid}
    for name in TECHNIQUES:
        # e.g. no latents: a diffusion creator
        if not REFINERS[name].requires <= set(director.gen.capabilities):
            continue
        cand, wall, cpu = _timed(lambda name=name: director.refiner.refine(samples, Action(name, {})))
        rep = director._evaluate(cand.samples, cand.creator)
        s = cand.samples
        rows[name] = {
            "wall": wall,
            "cpu": cpu,
            # DRS's burn-in and calibration and finetune's batches cost the same at any n: not scaled
            "per_1000": name in ("langevin", "dot", "truncation"),
            "fid": rep.fid,
            "fingerprint": [
                float(s.latents.double().sum()) if s.latents is not None else None,
                float(s.images.double().sum()),
            ],
            "history": s.history[-1],
        }
        print(f"  {name}: {wall:.1f} s wall, {cpu:.1f} s CPU; selection FID {rep.fid:.3f}", flush=True)
    return {"n": n, "creator": director.gen.why, "rows": rows}


def bench_batch(out: Path, overrides: list[str]) -> dict:
    """The default batch request end to end from the shell (n=1,000, budget.steps=6), with no time budget so
    that all six steps run; its trace's per-step seconds."""
    run = out / "batch"
    r = _child(
        [
            str(REPO / "scripts" / "agent.py"),
            f"request={BATCH}",
            "budget.seconds=1000000",
            f"hydra.run.dir={run}",
            *overrides,
        ],
        Path.cwd(),
    )
    trace = json.loads((run / "trace.json").read_text())
    r["steps"] = [
        {
            "action": s["action"],
            "seconds": s["seconds"],
            "accepted": s["accepted"],
            "fid": s["metrics_after"]["fid"],
        }
        for s in trace["steps"]
    ]
    r["verdict_seconds"] = (trace.get("verdict") or {}).get("seconds")
    r["trace_seconds"] = trace["seconds"]
    return r


def table(res: dict) -> str:
    lines = ["| what | wall s | CPU s | notes |", "|---|---:|---:|---|"]
    if "import" in res:
        r = res["import"]
        lines.append(
            f"| `import artdirector.agent` | {r['wall']:.2f} | {r['cpu']:.2f} | loads: {', '.join(r['loaded']) or 'none of the watched'} |"
        )
    if "scene" in res:
        r = res["scene"]
        lines.append(
            f"| scene request `{SCENE}`, warm, median of {len(r['runs'])} | {r['wall']:.2f} | {r['cpu']:.2f} | "
            f"loads: {', '.join(r['loaded']) or 'none of the watched'} |"
        )
    if "techniques" in res:
        t = res["techniques"]
        scale = 1000 / t["n"]
        for name, r in t["rows"].items():
            per = r["per_1000"]
            what = f"{name}, s per 1,000 images" if per else f"{name}, s at n={t['n']}"
            k = scale if per else 1.0
            note = f"measured at n={t['n']}" + (f"; selection FID {r['fid']:.2f}" if "fid" in r else "")
            lines.append(f"| {what} | {k * r['wall']:.1f} | {k * r['cpu']:.1f} | {note} |")
    if "batch" in res:
        r = res["batch"]
        steps = ", ".join(f"{s['action']} {s['seconds']:.0f}" for s in r["steps"])
        lines.append(
            f"| default batch request `{BATCH}` (n=1,000, 6 steps) end to end | {r['wall']:.0f} | {r['cpu']:.0f} | "
            f"steps (s): {steps}; verdict {r['verdict_seconds'] or 0:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--quick", action="store_true", help="n=250 techniques, 2 scene runs, no end-to-end batch run"
    )
    p.add_argument(
        "--n", type=int, default=None, help="images for the techniques (default 1,000; --quick 250)"
    )
    p.add_argument("--repeats", type=int, default=None, help="scene and import runs (default 3; --quick 2)")
    p.add_argument("--skip", nargs="*", default=[], choices=["import", "scene", "techniques", "batch"])
    p.add_argument("--json", type=Path, default=None, help="write the numbers here")
    p.add_argument("--label", default="", help="a name for this sitting in the JSON (e.g. before/after)")
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    args = p.parse_args(argv[:cut])
    overrides = argv[cut + 1 :]  # agent.yaml overrides for the techniques and the batch request
    n = args.n or (250 if args.quick else 1000)
    repeats = args.repeats or (2 if args.quick else 3)
    skip = set(args.skip) | ({"batch"} if args.quick else set())
    res: dict = {
        "label": args.label,
        "threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "loadavg_start": os.getloadavg(),
        "cpus": os.cpu_count(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        if "import" not in skip:
            res["import"] = bench_import(repeats)
            print(f"import: {res['import']['wall']:.2f} s wall, {res['import']['cpu']:.2f} s CPU", flush=True)
        if "scene" not in skip:
            res["scene"] = bench_scene(repeats, out)
            print(f"scene: {res['scene']['wall']:.2f} s wall, {res['scene']['cpu']:.2f} s CPU", flush=True)
        if "techniques" not in skip:
            print(f"techniques at n={n}:", flush=True)
            res["techniques"] = bench_techniques(n, out, overrides)
        if "batch" not in skip:
            res["batch"] = bench_batch(out, overrides)
    res["loadavg_end"] = os.getloadavg()
    print(
        f"\n{os.cpu_count()} CPUs, torch threads {res['threads']}, load average {res['loadavg_start'][0]:.1f} at the "
        f"start and {res['loadavg_end'][0]:.1f} at the end; torch {torch.__version__}\n"
    )
    print(table(res))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
