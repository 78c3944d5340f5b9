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
    python scripts/bench_parity.py --epochs 50 --seeds 1 2 3 trainer=gpu             # on a GPU
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


def train(out: Path, rule: str, seed: int, epochs: int, extra: list[str]) -> Path:
    """Train (or finish training) one run; return its last checkpoint."""
    d = run_dir(out, rule, seed)
    last = d / "checkpoints" / "last.ckpt"
    done = epochs_done(last)
    if done >= epochs:
        return last
    cmd = [
        sys.executable,
        str(SCRIPT),
        "model=dcgan",
        "data=mnist",
        "data.fallback_to_bundled=false",
        "trainer=cpu",
        f"trainer.max_epochs={epochs}",
        f"model.update_rule={rule}",
        f"seed={seed}",
        "callbacks.model_checkpoint.every_n_epochs=1",
        "+trainer.enable_progress_bar=false",
        f"hydra.run.dir={d}",
        *extra,
    ]
    if done:
        cmd.append(f"ckpt_path={last}")
    print(f"[{time.strftime('%H:%M:%S')}] training {d.name} from epoch {done} to {epochs}", flush=True)
    subprocess.run(cmd, check=True)
    return last


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
    p.add_argument("overrides", nargs="*", help="extra train.py overrides (e.g. trainer=gpu)")
    args = p.parse_args()

    if not args.report_only:
        for seed in args.seeds:  # seed-major: a stopped sweep still has both rules for the first seeds
            for rule in args.rules:
                train(args.out, rule, seed, args.epochs, args.overrides)

    dm = TorchvisionDataModule("mnist", root=args.data_root, fallback_to_bundled=False)
    ev = Evaluator(LeNetFeatures("mnist"), name="lenet", cache_dir=str(args.out / "cache"))
    ev.set_reference_from(dm, "report", args.n)
    results = []
    for rule in args.rules:
        for seed in args.seeds:
            last = run_dir(args.out, rule, seed) / "checkpoints" / "last.ckpt"
            if epochs_done(last) < args.epochs:
                print(f"skipping {last.parent.parent.name}: {epochs_done(last)} of {args.epochs} epochs")
                continue
            model = GANModule.from_checkpoint(last)
            for bn in ("eval", "train"):
                images = sample(model, args.n, seed=0, bn=bn)
                if bn == "eval":
                    save_grid(images[:64], args.out / f"grid_{rule}_seed{seed}.png")
                results.append({"rule": rule, "seed": seed, "bn": bn, **score(ev, images)})
                print(json.dumps(results[-1]), flush=True)
    write_json(
        args.out / "results.json",
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
            col = {k: [r[k] for r in rows] for k in rows[0] if k not in ("rule", "bn", "class_counts")}
            print(
                f"| {rule} | {bn} | {len(rows)} | {fmt(col['fid'], 1)} | {fmt(col['kid'], 1)} | "
                f"{fmt(col['precision'], 3)} | {fmt(col['recall'], 3)} | {fmt(col['recognised'], 3)} | "
                f"{fmt(col['class_max_min'], 2)} |"
            )


if __name__ == "__main__":
    main()
