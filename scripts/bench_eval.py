"""Evaluator throughput per feature network, and the FID floor: real MNIST train vs real test images.

    python scripts/bench_eval.py --features lenet inception --n 2000 --device cpu
    python scripts/bench_eval.py --features inception --n 10000 --device cuda

Prints a table: feature network, device, images/s of the feature pass, and FID/KID/precision/recall of
n train images against n test images (the best a perfect generator could score at this sample count).
"""

from __future__ import annotations

import argparse
import time

import torch

from artdirector.data import TorchvisionDataModule
from artdirector.evaluation import Evaluator, InceptionFeatures, LeNetFeatures


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--features", nargs="+", default=["lenet", "inception"], choices=["lenet", "inception"])
    p.add_argument("--n", type=int, default=2000, help="train images vs the same number of test images")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--data-root", default="data")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument(
        "--cache-dir",
        default="outputs/cache/reference",
        help="shared with scripts/evaluate.py: the test-split features are reused there",
    )
    args = p.parse_args()

    dm = TorchvisionDataModule(root=args.data_root, download=True, fallback_to_bundled=False)
    dm.prepare_data()
    dm.setup()
    train, test = dm.real_images("train", args.n), dm.real_images("report", args.n)
    rows = []
    for name in args.features:
        net = LeNetFeatures("mnist") if name == "lenet" else InceptionFeatures()
        ev = Evaluator(net, name=name, batch_size=args.batch_size, cache_dir=args.cache_dir).to(args.device)
        ev.features(test[: args.batch_size])  # warm-up (TorchScript profiling, cuDNN autotune)
        if args.device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fake = ev.features(train)  # the timed feature pass
        if args.device == "cuda":
            torch.cuda.synchronize()
        ips = args.n / (time.perf_counter() - t0)
        ev.set_reference_from(dm, "report", args.n)  # test-split features, from the cache when present
        r = ev.evaluate_features(fake)
        rows.append((name, args.device, ips, r))
        print(f"{name}: {ips:.1f} images/s, floor FID {r.fid:.3f}", flush=True)

    print(
        f"\nMNIST train ({args.n}) vs test ({args.n}); torch {torch.__version__}, threads {torch.get_num_threads()}"
    )
    print("| features | device | feature pass images/s | FID | KID | precision | recall | metrics s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name, dev, ips, r in rows:
        print(
            f"| {name} | {dev} | {ips:,.1f} | {r.fid:.3f} | {r.kid:.5f} | {r.precision:.3f} | {r.recall:.3f} | "
            f"{r.seconds:.1f} |"
        )


if __name__ == "__main__":
    main()
