"""The scene verifier's detector on the fixed test scenes: how often the verifier itself is wrong.

    python scripts/bench_detector.py                          # the shipped weights/detector_scenes.pt
    python scripts/bench_detector.py --weights outputs/.../detector.pt --data-root data --json bench.json

Composes the test scenes of ``data=scenes`` (``SceneDataModule`` with its defaults: 128x128 canvases,
MNIST + FashionMNIST report (test) images, ``--n`` 2,000 scenes of scene seed ``--seed`` 0: exactly the set the
training run's export measured) and prints a markdown table: count accuracy, class accuracy, scene
exact-match and mAP@0.5 (definitions in ``artdirector.models.detector``) for all scenes, per domain
(MNIST-only, Fashion-only, mixed), per layout, per size bucket (scenes whose cells are all small < 26 px,
normal 26-39 px, or large >= 40 px), the empty scenes, and per-object class accuracy by size; then the
detector's CPU time per canvas (batches of 64, and one canvas at a time).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import torch

from artdirector.data.scenes import SceneDataModule, collate_scenes, size_word
from artdirector.models.detection.inference import load_detector
from artdirector.models.detection.metrics import SceneMetrics, match

REPO = Path(__file__).resolve().parents[1]


def _fmt(v: float) -> str:
    return "–" if v != v else f"{v:.3f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default=None, help="a detector.pt (default: the shipped weights)")
    p.add_argument("--data-root", default=str(REPO / "data"))
    p.add_argument("--n", type=int, default=2000, help="test scenes (the export measured 2,000)")
    p.add_argument("--seed", type=int, default=0, help="data.seed of the scene sets (the recipe's: 0)")
    p.add_argument("--threshold", type=float, default=0.3)
    p.add_argument("--threads", type=int, default=1, help="torch threads for the timing")
    p.add_argument("--json", default=None, help="also write the numbers here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    detector = load_detector(args.weights)
    dm = SceneDataModule(
        root=args.data_root, download=False, n_test=args.n, seed=args.seed, n_val=1, n_train=1
    )
    ds = dm.scene_set("test")
    scenes = [ds.scene(i) for i in range(len(ds))]
    x, targets = collate_scenes([(s.canvas, s.target()) for s in scenes])

    detector.predict(x[:64], threshold=0.01)  # warm-up
    t0 = time.perf_counter()
    dets = detector.predict(x, threshold=0.01)
    per_canvas = (time.perf_counter() - t0) / len(x)
    t0 = time.perf_counter()
    for i in range(100):
        detector.detect(x[i : i + 1], threshold=args.threshold)
    per_single = (time.perf_counter() - t0) / 100

    groups: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(scenes):
        groups["all"].append(i)
        if not s.objects:
            groups["empty scenes"].append(i)
            continue
        groups[f"domain: {s.domain}"].append(i)
        groups[f"layout: {s.layout}"].append(i)
        sizes = {size_word(c[2] - c[0]) for c in s.cells}
        if len(sizes) == 1:
            groups[f"size: all {sizes.pop()}"].append(i)
        groups[f"{len(s.objects)} object{'s' if len(s.objects) > 1 else ''}"].append(i)
    order = [
        "all",
        "domain: mnist",
        "domain: fashion_mnist",
        "domain: mixed",
        "empty scenes",
        *[f"{k} object{'s' if k > 1 else ''}" for k in range(1, 6)],
        *[f"layout: {k}" for k in ("row", "column", "grid", "scatter")],
        *[f"size: all {k}" for k in ("small", "normal", "large")],
    ]
    results = {}
    for name in order:
        idx = groups.get(name, [])
        if not idx:
            continue
        m = SceneMetrics(threshold=args.threshold)
        m.update([dets[i] for i in idx], [targets[i] for i in idx])
        results[name] = m.compute()

    # per object: class accuracy by the size of its cell, over all scenes
    per_size: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for s, d, t in zip(scenes, dets, targets, strict=True):
        keep = d["scores"] >= args.threshold
        pairs = dict(match(d["boxes"][keep], d["labels"][keep], t["boxes"], t["labels"]))
        for j, cell in enumerate(s.cells):
            word = size_word(cell[2] - cell[0])
            per_size[word][1] += 1
            per_size[word][0] += int(j in pairs and int(d["labels"][keep][pairs[j]]) == int(t["labels"][j]))

    info = detector.info
    print(
        f"\nScene detector {info.get('path')} on {len(scenes):,} test scenes (data=scenes, seed {args.seed}: "
        f"MNIST + FashionMNIST report images, {dm.hparams.canvas_size}x{dm.hparams.canvas_size}), "
        f"threshold {args.threshold}; torch {torch.__version__}, {torch.get_num_threads()} thread(s)\n"
    )
    print("| scenes | n scenes | objects | count acc | class acc | scene exact-match | mAP@0.5 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        print(
            f"| {name} | {int(r['scenes'])} | {int(r['objects'])} | {_fmt(r['count_acc'])} | "
            f"{_fmt(r['class_acc'])} | {_fmt(r['exact'])} | {_fmt(r['map50'])} |"
        )
    print("\n| object cell | objects | class acc |")
    print("|---|---:|---:|")
    for word in ("small", "normal", "large"):
        right, n = per_size[word]
        print(f"| {word} | {n} | {_fmt(right / n if n else float('nan'))} |")
    print(
        f"\nCPU time per canvas: {per_canvas * 1000:.2f} ms in batches of 64 ({1 / per_canvas:.0f} canvases/s), "
        f"{per_single * 1000:.2f} ms one at a time"
    )
    if args.json:
        from artdirector.io import write_json

        write_json(
            args.json,
            {
                "weights": info.get("path"),
                "n": len(scenes),
                "seed": args.seed,
                "threshold": args.threshold,
                "threads": torch.get_num_threads(),
                "groups": results,
                "class_acc_by_size": {k: v[0] / v[1] for k, v in per_size.items() if v[1]},
                "seconds_per_canvas": {"batch64": per_canvas, "single": per_single},
            },
        )
        print(json.dumps({"written": args.json}))


if __name__ == "__main__":
    main()
