"""DiffAugment on or off, at equal steps: LeNet FID on the report split for each training-set size and seed.

Trains the seed DCGAN (``model=dcgan``: its networks, Adam 1e-4, the simultaneous update rule) on the first
``size`` digits of the MNIST train split (``data=mnist data.limit_train=size``), once without DiffAugment and
once per ``--policy`` (Zhao et al. 2020), for ``--steps`` batches (one D and one G update each) from the same
seed, then scores ``--n-eval`` samples (fixed latents per seed, generator in eval mode) against the report
split (the MNIST test set, all 10,000) with the project's LeNet features. Prints one row per (size, policy):
FID mean +- sd over seeds, each seed's FID, and the real-vs-real floor at the same n (``--n-eval`` train
digits against the same reference, 3 disjoint draws). Each run's result is written to
``--out/<size>_<policy>_<seed>.json`` as it finishes and reused on a rerun, so an interrupted
benchmark resumes; ``--out/results.json`` holds the table.

    # the run in docs/data.md ("DiffAugment"): 12 runs, ~45 min on one busy CPU thread
    OMP_NUM_THREADS=1 python scripts/bench_diffaugment.py --steps 120 --batch-size 64 --sizes 1000 5000 \\
        --seeds 1 2 3 --n-eval 2000 --data-dir data --out outputs/bench_diffaugment

The seed recipe trains on batches of 256; ``--batch-size`` lets a CPU run take more updates in the same time
(equal steps and batch size for both arms, so the comparison stays fair).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from artdirector.data import TorchvisionDataModule
from artdirector.evaluation import Evaluator, LeNetFeatures, floor_pair
from artdirector.io import write_json
from artdirector.models.gan import GANModule
from artdirector.runtime import CONFIG_DIR

OFF = "none"


def seed_model_config(policy: str, batch_size: int) -> dict:
    """``model=dcgan`` as composed by train.py, with ``diffaugment`` set."""
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=["model=dcgan", f"data.batch_size={batch_size}"])
    model = OmegaConf.to_container(cfg.model, resolve=True)
    model["diffaugment"] = "" if policy == OFF else policy
    return model


def train_one(size: int, policy: str, seed: int, args) -> GANModule:
    L.seed_everything(seed, workers=True)
    dm = TorchvisionDataModule(
        "mnist",
        root=args.data_dir,
        download=False,
        fallback_to_bundled=False,
        batch_size=args.batch_size,
        limit_train=size,
    )
    model = instantiate(seed_model_config(policy, args.batch_size), _recursive_=False)
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=2 * args.steps,  # one batch = a D and a G optimiser step
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(model, datamodule=dm)
    return model


def fid_of(model: GANModule, evaluator: Evaluator, n: int, seed: int) -> float:
    z = torch.randn(n, model.latent_dim, generator=torch.Generator().manual_seed(10_000 + seed))
    return evaluator.frechet(evaluator.features(model.sample(z=z)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=150, help="batches per run (a D and a G update each)")
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000], help="training digits")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--n-eval", type=int, default=2000, help="samples scored per run (and the floor's n)")
    p.add_argument("--policy", nargs="+", default=["color,translation,cutout"], help="DiffAugment policies")
    p.add_argument("--batch-size", type=int, default=256, help="the seed's: 256")
    p.add_argument("--data-dir", default="data", help="holds MNIST/raw (the idx files)")
    p.add_argument("--out", type=Path, default=Path("outputs/bench_diffaugment"))
    args = p.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))

    ref_dm = TorchvisionDataModule("mnist", root=args.data_dir, download=False, fallback_to_bundled=False)
    evaluator = Evaluator(LeNetFeatures(weights="mnist"), name="lenet", cache_dir=str(args.out / "reference"))
    evaluator.set_reference_from(ref_dm, "report")
    floor_mean, floor_sd = floor_pair(evaluator.floor_from(ref_dm, args.n_eval))
    print(f"floor at n={args.n_eval}: {floor_mean:.2f} +- {floor_sd:.2f}", flush=True)

    policies = [OFF, *args.policy]
    rows = []
    for size in args.sizes:
        for policy in policies:
            fids, secs = [], []
            for seed in args.seeds:
                slug = policy.replace(",", "+")
                path = args.out / f"{size}_{slug}_{seed}_{args.steps}steps_{args.n_eval}.json"
                if path.is_file():
                    run = json.loads(path.read_text())
                else:
                    start = time.perf_counter()
                    model = train_one(size, policy, seed, args)
                    train_s = time.perf_counter() - start
                    run = {"fid": fid_of(model, evaluator, args.n_eval, seed), "train_s": round(train_s, 1)}
                    write_json(
                        path, {"size": size, "policy": policy, "seed": seed, "steps": args.steps, **run}
                    )
                print(
                    f"size {size} policy {policy} seed {seed}: FID {run['fid']:.1f} ({run['train_s']} s)",
                    flush=True,
                )
                fids.append(run["fid"])
                secs.append(run["train_s"])
            rows.append(
                {
                    "size": size,
                    "policy": policy,
                    "seeds": args.seeds,
                    "fids": fids,
                    "mean": statistics.mean(fids),
                    "sd": statistics.stdev(fids) if len(fids) > 1 else float("nan"),
                    "train_s_mean": statistics.mean(secs),
                }
            )

    lines = [
        f"{args.steps} batches of {args.batch_size} per run; FID of {args.n_eval} samples vs the MNIST report split "
        f"(10,000, LeNet); floor {floor_mean:.2f} +- {floor_sd:.2f} at n={args.n_eval}",
        "",
        "| train digits | DiffAugment | seeds | FID mean ± sd | per seed | floor (same n) | s/run |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['size']:,} | {r['policy']} | {len(r['seeds'])} | {r['mean']:.1f} ± {r['sd']:.1f} | "
            f"{', '.join(f'{f:.1f}' for f in r['fids'])} | {floor_mean:.2f} ± {floor_sd:.2f} | {r['train_s_mean']:.0f} |"
        )
    table = "\n".join(lines)
    print(table, flush=True)
    write_json(
        args.out / "results.json",
        {
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "floor": {"mean": floor_mean, "sd": floor_sd, "n": args.n_eval},
            "rows": rows,
            "table": table,
            "machine": f"{platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}",
            "torch": torch.__version__,
        },
    )


if __name__ == "__main__":
    main()
