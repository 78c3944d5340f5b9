"""The real-vs-real FID floors the docs cite, and the evaluator's feature-pass throughput.

    python scripts/bench_eval.py floors --json outputs/floors.json          # the floors table (LeNet, CPU)
    python scripts/bench_eval.py floors --features inception --datasets fashion_mnist --device cpu
    python scripts/bench_eval.py throughput --features lenet inception --n 2000 --device cpu

``floors``: for each (data set, n, reference split, reference n) in ``FLOORS`` (every floor that
docs/benchmarks.md, docs/data.md, docs/evaluation.md and docs/zoo.md state), ``Evaluator.floor_from``:
``FLOOR_DRAWS`` seeded draws of n train-split images against the first ``reference n`` images of the
reference split, in the shipped LeNet of that data set; mean, sd and each draw. The train split's features
come from the reference cache (shared with scripts/evaluate.py), so a second run costs no feature pass.
``--features inception``: the standard FID Inception at the zoo cards' n, ``INCEPTION_FLOORS``: one draw, the
first ``INCEPTION_POOL`` train-split images against the 10,000 report images (a feature pass over all 55,000
train images takes about 3 CPU-hours; one 10k pass about 31 CPU-minutes). The sd of one draw is not
defined; the row states the FID's bootstrap SE instead.

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
# the Inception floors beside the zoo cards' Inception FIDs (n = 10,000 against the 10,000 test images)
INCEPTION_FLOORS = [("mnist", 10000, "report", 10000), ("fashion_mnist", 10000, "report", 10000)]
INCEPTION_POOL = 10000


def datamodule(name: str, root: str):
    if name == "mnist5k":
        dm = Mnist5kDataModule()
    else:
        dm = TorchvisionDataModule(dataset=name, root=root, download=False, fallback_to_bundled=False)
    dm.prepare_data()
    dm.setup()
    return dm


def floor_evaluator(features: str, dataset: str, args) -> Evaluator:
    if features == "inception":
        ev = Evaluator(InceptionFeatures(), name="inception", cache_dir=args.cache_dir)
    else:
        ev = Evaluator(
            LeNetFeatures("mnist" if dataset == "mnist5k" else dataset),
            name="lenet",
            cache_dir=args.cache_dir,
        )
    return ev.to(args.device)


def floors(args) -> None:
    if len(args.features) != 1:
        raise SystemExit("floors: give one --features (lenet or inception); run twice for both")
    features = args.features[0]
    inception = features == "inception"
    table = INCEPTION_FLOORS if inception else FLOORS
    rows, evaluators, modules = [], {}, {}
    for dataset, n, split, ref_n in table:
        if args.datasets and dataset not in args.datasets:
            continue
        weights = "mnist" if dataset == "mnist5k" else dataset
        if weights not in evaluators:
            evaluators[weights] = floor_evaluator(features, dataset, args)
        if dataset not in modules:
            modules[dataset] = datamodule(dataset, args.data_root)
        ev, dm = evaluators[weights], modules[dataset]
        t0 = time.perf_counter()
        ev.set_reference_from(dm, split, ref_n)
        if inception:  # one draw of a 10k pool: its FID's bootstrap SE stands in for the sd over draws
            f = ev.floor_from(dm, n, draws=1, seed=args.seed, pool=INCEPTION_POOL)
            pool_feats, _ = ev.split_features(dm, "train", INCEPTION_POOL)  # cached by floor_from
            f["sd"] = ev.evaluate_features(pool_feats).fid_se
            f["sd_kind"] = "bootstrap SE of the one draw"
        else:
            f = ev.floor_from(dm, n, draws=args.draws, seed=args.seed)
            f["sd_kind"] = "sd over draws"
        f["seconds"] = time.perf_counter() - t0
        rows.append({"dataset": dataset, **f})
        print(
            f"{dataset} n={n} vs {split} {ref_n}: {f['mean']:.2f} ± {f['sd']:.2f} "
            f"({f['draws']} {'disjoint' if f['disjoint'] else 'overlapping'} draws of {f['pool']}; "
            f"{f['seconds']:.0f} s)",
            flush=True,
        )
    print(
        f"\n{features} features; seed {args.seed}; torch {torch.__version__}, threads {torch.get_num_threads()}"
    )
    print("| data set | n | reference | floor (mean ± sd) | draws | feature network |")
    print("|---|---:|---|---:|---|---|")
    for r in rows:
        ref = r["reference"]
        kind = "disjoint" if r["disjoint"] else f"overlapping, of {r['pool']:,}"
        if r["draws"] == 1:
            kind = f"one, {r['drawn_from']}; ± is its bootstrap SE"
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
