"""The seed DCGAN under both update rules: the seed recipe for E epochs, several seeds, measured alike.

For each rule (``simultaneous``: the seed's train_step; ``alternating``: pytorch/examples') and seed, trains
``python scripts/train.py model=dcgan data=mnist`` for ``--epochs`` (resuming a run that was interrupted),
then scores ``--n`` samples of its last checkpoint against the report split (the MNIST test set) with the
project's LeNet features: FID, KID, precision/recall, the classifier's confidence, the share of samples it
recognises (max softmax >= 0.9) and the class histogram's largest/smallest ratio. Samples are drawn with the
generator's BatchNorm in eval mode (running statistics, as the original samples with ``training=False``) and
in train mode (batch statistics, batches of 256). Prints per-seed rows and mean +- sd over seeds; writes
``results.json`` under ``--out``.

    OMP_NUM_THREADS=1 python scripts/bench_parity.py --epochs 10 --seeds 1 2 3      # CPU, in the background
    python scripts/bench_parity.py --epochs 50 --trainer gpu --jobs 6 --ckpt-every 5  # on one GPU, 6 runs at once
    python scripts/bench_parity.py --report-only --out outputs/parity               # score finished runs
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from artdirector.data import TorchvisionDataModule
from artdirector.evaluation import Evaluator, LeNetFeatures
from artdirector.io import save_grid, write_json
from artdirector.models.checkpoint import read_checkpoint
from artdirector.models.gan import GANModule

RULES = ("simultaneous", "alternating")
SCRIPT = Path(__file__).with_name("train.py")


def run_dir(out: Path, rule: str, seed: int) -> Path:
    return out / f"{rule}_seed{seed}"


def epochs_done(ckpt: Path) -> int:
    return int(read_checkpoint(ckpt)["epoch"]) + 1 if ckpt.is_file() else 0


def train_command(
    out: Path, rule: str, seed: int, epochs: int, extra: list[str], trainer: str = "cpu", ckpt_every: int = 1
) -> list[str] | None:
    """The train.py command that trains (or finishes training) one run; None when it is done."""
    d = run_dir(out, rule, seed)
    last = d / "checkpoints" / "last.ckpt"
    done = epochs_done(last)
    if done >= epochs:
        return None
    cmd = [
        sys.executable,
        str(SCRIPT),
        "model=dcgan",
        "data=mnist",
        "data.fallback_to_bundled=false",
        f"trainer={trainer}",
        f"trainer.max_epochs={epochs}",
        f"model.update_rule={rule}",
        f"seed={seed}",
        f"callbacks.model_checkpoint.every_n_epochs={ckpt_every}",
        "+trainer.enable_progress_bar=false",
        f"hydra.run.dir={d}",
        *extra,
    ]
    if done:
        cmd.append(f"ckpt_path={last}")
    print(f"[{time.strftime('%H:%M:%S')}] training {d.name} from epoch {done} to {epochs}", flush=True)
    return cmd


def train_all(args) -> None:
    """Seed-major order (a stopped sweep still has both rules for the first seeds), ``--jobs`` at a time."""
    cmds = [
        train_command(args.out, rule, seed, args.epochs, args.overrides, args.trainer, args.ckpt_every)
        for seed in args.seeds
        for rule in args.rules
    ]
    queue = [c for c in cmds if c is not None]
    running: list[subprocess.Popen] = []
    failed = 0
    while queue or running:
        while queue and len(running) < args.jobs:
            cmd = queue.pop(0)
            running.append(subprocess.Popen(cmd) if args.jobs == 1 else _quiet(cmd))
        time.sleep(1)
        for proc in [p for p in running if p.poll() is not None]:
            running.remove(proc)
            failed += proc.returncode != 0
    if failed:
        sys.exit(f"{failed} training run(s) failed: see their train.log under {args.out}")


def _quiet(cmd: list[str]) -> subprocess.Popen:
    """Parallel runs write their output to <run dir>/train.log instead of interleaving on the console."""
    run = next(c.split("=", 1)[1] for c in cmd if c.startswith("hydra.run.dir="))
    Path(run).mkdir(parents=True, exist_ok=True)
    with open(Path(run) / "train.log", "a") as f:
        return subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT)


@torch.no_grad()
def sample(model: GANModule, n: int, seed: int, bn: str, batch: int = 256) -> torch.Tensor:
    z = torch.randn(n, model.latent_dim, generator=torch.Generator().manual_seed(seed))
    if bn == "eval":
        return model.sample(z=z, batch_size=batch).cpu()
    g = copy.deepcopy(model.generator).train()  # batch statistics; the copy's running stats are discarded
    return torch.cat([g(c.to(model.device)).cpu() for c in z.split(batch)])


def score(ev: Evaluator, images: torch.Tensor) -> dict[str, float]:
    r = ev.evaluate(images)
    counts = torch.bincount(r.labels, minlength=10).float()
    return {
        "fid": r.fid,
        "kid": r.kid,
        "kid_std": r.kid_std,
        "precision": r.precision,
        "recall": r.recall,
        "mean_confidence": float(r.confidence.mean()),
        "recognised": float((r.confidence >= 0.9).float().mean()),
        "class_max_min": float(counts.max() / counts.min().clamp_min(1)),
        "class_counts": counts.int().tolist(),
    }


def fmt(values: list[float], digits: int) -> str:
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else float("nan")
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--rules", nargs="+", default=list(RULES), choices=RULES)
    p.add_argument("--n", type=int, default=10_000, help="generated samples (and report images) per score")
    p.add_argument("--out", type=Path, default=Path("outputs/parity"))
    p.add_argument("--report-only", action="store_true", help="score the finished runs, train nothing")
    p.add_argument("--data-root", default="data")
    p.add_argument("--trainer", default="cpu", help="trainer config: cpu, gpu, ...")
    p.add_argument("--jobs", type=int, default=1, help="training runs at once (several fit one GPU)")
    p.add_argument("--ckpt-every", type=int, default=1, help="keep a checkpoint every this many epochs")
    p.add_argument("--train-only", action="store_true", help="train, score nothing")
    p.add_argument("--results", default="results.json", help="file name (under --out) of the scores")
    p.add_argument(
        "--accept-fewer",
        action="store_true",
        help="score runs that stopped short of --epochs (each row says its epochs)",
    )
    p.add_argument("overrides", nargs="*", help="extra train.py overrides (e.g. trainer=gpu)")
    args = p.parse_args()

    if not args.report_only:
        train_all(args)
    if args.train_only:
        return

    dm = TorchvisionDataModule("mnist", root=args.data_root, fallback_to_bundled=False)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    ev = Evaluator(LeNetFeatures("mnist"), name="lenet", cache_dir=str(args.out / "cache")).to(device)
    ev.set_reference_from(dm, "report", args.n)
    results = []
    for rule in args.rules:
        for seed in args.seeds:
            last = run_dir(args.out, rule, seed) / "checkpoints" / "last.ckpt"
            done = epochs_done(last)
            if done == 0 or (done < args.epochs and not args.accept_fewer):
                print(f"skipping {last.parent.parent.name}: {done} of {args.epochs} epochs")
                continue
            model = GANModule.from_checkpoint(last).to(device)
            for bn in ("eval", "train"):
                images = sample(model, args.n, seed=0, bn=bn)
                if bn == "eval":
                    save_grid(images[:64], args.out / f"grid_{rule}_seed{seed}.png")
                results.append({"rule": rule, "seed": seed, "epochs": done, "bn": bn, **score(ev, images)})
                print(json.dumps(results[-1]), flush=True)
    write_json(
        args.out / args.results,
        {"epochs": args.epochs, "n": args.n, "reference": ev.reference_key, "runs": results},
    )

    print(
        f"\nLeNet features ({ev.identity}), {args.n:,} samples vs {ev.reference_key['n']:,} report (MNIST "
        f"test) images; {args.epochs} epochs of the seed recipe; mean ± sd over seeds {args.seeds}\n"
    )
    print("| rule | BN at sampling | seeds | FID | KID | precision | recall | recognised | max/min class |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for rule in args.rules:
        for bn in ("eval", "train"):
            rows = [r for r in results if r["rule"] == rule and r["bn"] == bn]
            if not rows:
                continue
            col = {
                k: [r[k] for r in rows] for k in rows[0] if k not in ("rule", "bn", "class_counts", "epochs")
            }
            print(
                f"| {rule} | {bn} | {len(rows)} | {fmt(col['fid'], 1)} | {fmt(col['kid'], 1)} | "
                f"{fmt(col['precision'], 3)} | {fmt(col['recall'], 3)} | {fmt(col['recognised'], 3)} | "
                f"{fmt(col['class_max_min'], 2)} |"
            )


if __name__ == "__main__":
    main()
