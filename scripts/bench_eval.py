"""The real-vs-real FID floors the docs cite, and the evaluator's feature-pass throughput.

    python scripts/bench_eval.py floors --json outputs/floors.json          # the floors table (LeNet, CPU)
    python scripts/bench_eval.py throughput --features lenet inception --n 2000 --device cpu

``floors``: for each (data set, n, reference split, reference n) in ``FLOORS`` (every floor that
docs/benchmarks.md, docs/data.md, docs/evaluation.md and docs/zoo.md state), ``Evaluator.floor_from``:
``FLOOR_DRAWS`` seeded draws of n train-split images against the first ``reference n`` images of the
reference split, in the shipped LeNet of that data set; mean, sd and each draw. The train split's features
come from the reference cache (shared with scripts/evaluate.py), so a second run costs no feature pass.

``throughput``: images/s of the feature pass per feature network, and the floor at n vs n on the report split.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from artdirector.data import Mnist5kDataModule, TorchvisionDataModule
from artdirector.evaluation import Evaluator, InceptionFeatures, LeNetFeatures
from artdirector.evaluation.floor import FLOOR_DRAWS
from artdirector.io import write_json

# (data set, n, reference split, reference n): the floors the docs state
FLOORS = [
    ("mnist", 10000, "report", 10000),
    ("mnist", 2000, "report", 10000),
    ("mnist", 2000, "report", 2000),
    ("mnist", 1000, "report", 5000),
    ("mnist", 1000, "report", 1000),
    ("mnist", 1000, "selection", 1000),
    ("mnist", 500, "report", 10000),
    ("mnist", 200, "report", 10000),
    ("mnist", 100, "report", 10000),
    ("mnist5k", 1000, "report", 1000),
    ("fashion_mnist", 10000, "report", 10000),
    ("fashion_mnist", 1000, "selection", 1000),
]


def datamodule(name: str, root: str):
    if name == "mnist5k":
        dm = Mnist5kDataModule()
    else:
        dm = TorchvisionDataModule(dataset=name, root=root, download=False, fallback_to_bundled=False)
    dm.prepare_data()
    dm.setup()
    return dm


def floors(args) -> None:
    rows, evaluators, modules = [], {}, {}
    for dataset, n, split, ref_n in FLOORS:
        if args.datasets and dataset not in args.datasets:
            continue
        weights = "mnist" if dataset == "mnist5k" else dataset
        if weights not in evaluators:
            evaluators[weights] = Evaluator(LeNetFeatures(weights), name="lenet", cache_dir=args.cache_dir)
        if dataset not in modules:
            modules[dataset] = datamodule(dataset, args.data_root)
        ev, dm = evaluators[weights], modules[dataset]
        ev.set_reference_from(dm, split, ref_n)
        f = ev.floor_from(dm, n, draws=args.draws, seed=args.seed)
        rows.append({"dataset": dataset, **f})
        print(
            f"{dataset} n={n} vs {split} {ref_n}: {f['mean']:.2f} ± {f['sd']:.2f} "
            f"({f['draws']} {'disjoint' if f['disjoint'] else 'overlapping'} draws of {f['pool']})",
            flush=True,
        )
    print(f"\nLeNet features; seed {args.seed}; torch {torch.__version__}, threads {torch.get_num_threads()}")
    print("| data set | n | reference | floor (mean ± sd) | draws | feature network |")
    print("|---|---:|---|---:|---|---|")
    for r in rows:
        ref = r["reference"]
        kind = "disjoint" if r["disjoint"] else f"overlapping, of {r['pool']:,}"
        print(
            f"| {r['dataset']} | {r['n']:,} | {ref['split']}, first {ref['n']:,} | {r['mean']:.2f} ± "
            f"{r['sd']:.2f} | {r['draws']} ({kind}) | `{r['feature_network']}` |"
        )
    if args.json:
        write_json(
            Path(args.json), {"seed": args.seed, "floors": rows, "versions": {"torch": torch.__version__}}
        )


def throughput(args) -> None:
    dm = datamodule("mnist", args.data_root)
    train = dm.real_images("train", args.n)
    rows = []
    for name in args.features:
        net = LeNetFeatures("mnist") if name == "lenet" else InceptionFeatures()
        ev = Evaluator(net, name=name, batch_size=args.batch_size, cache_dir=args.cache_dir).to(args.device)
        ev.features(train[: args.batch_size])  # warm-up (TorchScript profiling, cuDNN autotune)
        if args.device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        ev.features(train)  # the timed feature pass
        if args.device == "cuda":
            torch.cuda.synchronize()
        ips = args.n / (time.perf_counter() - t0)
        ev.set_reference_from(dm, "report", args.n)
        f = ev.floor_from(dm, args.n, draws=args.draws, seed=args.seed)
        rows.append((name, args.device, ips, f))
        print(f"{name}: {ips:.1f} images/s, floor {f['mean']:.3f} ± {f['sd']:.3f}", flush=True)

    print(f"\nMNIST; torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"| features | device | feature pass images/s | floor at n = {args.n:,} vs report {args.n:,} |")
    print("|---|---|---:|---:|")
    for name, dev, ips, f in rows:
        print(f"| {name} | {dev} | {ips:,.1f} | {f['mean']:.3f} ± {f['sd']:.3f} ({f['draws']} draws) |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["floors", "throughput"])
    p.add_argument("--datasets", nargs="*", help="floors: only these data sets (default: every row)")
    p.add_argument("--features", nargs="+", default=["lenet"], choices=["lenet", "inception"])
    p.add_argument("--n", type=int, default=2000, help="throughput: images timed, and the floor's n")
    p.add_argument("--draws", type=int, default=FLOOR_DRAWS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--data-root", default="data")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--json", help="floors: write the rows (every draw included) here")
    p.add_argument(
        "--cache-dir",
        default="outputs/cache/reference",
        help="shared with scripts/evaluate.py: each split's features are computed once",
    )
    args = p.parse_args()
    if args.mode == "floors":
        floors(args)
    else:
        throughput(args)


if __name__ == "__main__":
    main()
