"""Each creator measured alike: the evidence its card holds and the Generation Agent chooses from.

For every checkpoint given (any kind: a GAN, a conditional GAN, a diffusion model): parameters; n samples
with the classes in turn (n / 10 of each) for a conditional creator; LeNet FID (+ bootstrap SE), KID (+ std),
precision/recall against the report split (the MNIST test set) next to the real-vs-real floor at the same n;
class conformance (the share of samples the project's classifier assigns to the requested class), per class
and overall; seconds per image on this device. For diffusion also: sampling images/s at 10/25/50/250 steps
and FID at ``--steps-n`` samples for 25 against 250 steps (DPM-Solver++ and DDPM ancestral).

Writes ``<ckpt stem>.card.json`` beside each checkpoint (or into ``--out``) and prints a table.

    python scripts/bench_creators.py src/artdirector/zoo/*.ckpt --n 10000        # on a GPU
    python scripts/bench_creators.py a.ckpt --n 500 --steps-n 100 --steps 2 4     # a quick CPU check
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from artdirector.creators import ADAPTERS
from artdirector.data import TorchvisionDataModule
from artdirector.evaluation import Evaluator, LeNetFeatures
from artdirector.io import save_grid, write_json
from artdirector.models.base import balanced_labels
from artdirector.models.checkpoint import checkpoint_kind, module_class, read_checkpoint


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(creator, labels, n, seed, device, **opts) -> tuple[torch.Tensor, float]:
    sync(device)
    t0 = time.perf_counter()
    images = creator.sample(n, condition=labels, seed=seed, **opts).images
    sync(device)
    return images, time.perf_counter() - t0


def conformance(pred: torch.Tensor, want: torch.Tensor, classes: int) -> dict:
    per = {str(c): float((pred[want == c] == c).float().mean()) for c in range(classes) if (want == c).any()}
    return {"overall": float((pred == want).float().mean()), "per_class": per}


def card_for(
    path: Path, ev: Evaluator, ev_steps: Evaluator, floor: tuple[float, float], args, device: torch.device
) -> dict:
    ckpt = read_checkpoint(path)  # read once: the model and the card's epoch/step both come from it
    kind = checkpoint_kind(ckpt)
    creator = ADAPTERS[kind](module_class(kind).from_loaded(ckpt, path, device), path)
    model, classes = creator.model, creator.num_classes
    labels = balanced_labels(args.n, classes) if classes else None
    params = sum(p.numel() for name, p in model.named_parameters() if not name.startswith("ema."))
    opts = {"steps": args.sample_steps} if kind == "diffusion" and args.sample_steps else {}
    timed(
        creator, labels[:8] if labels is not None else None, 8, 0, device, **opts
    )  # warm-up (kernels, allocator)
    images, seconds = timed(creator, labels, args.n, args.seed, device, **opts)
    save_grid(images[:100], (args.out or path.parent) / f"{path.stem}.grid.png", nrow=10)
    r = ev.evaluate(images)
    card = {
        "checkpoint": str(path),
        "kind": kind,
        "conditional": bool(classes),
        "parameters": params,
        "epoch": ckpt.get("epoch"),
        "global_step": ckpt.get("global_step"),
        "n": args.n,
        "split": "report",
        "features": ev.identity,
        "reference": ev.reference_key,
        "seed": args.seed,
        "metrics": {k: getattr(r, k) for k in ("fid", "fid_se", "kid", "kid_std", "precision", "recall")},
        "floor": {"fid": floor[0], "sd": floor[1], "n": args.n},
        "seconds_per_image": seconds / args.n,
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or "cpu",
        "torch": torch.__version__,
    }
    if classes:
        card["conformance"] = conformance(r.labels, labels, classes)
    if kind == "diffusion":
        card["sampler"] = {**model.defaults, **opts}
        card["sampling"] = sampling_sweep(creator, ev_steps, args, device)
    return card


def sampling_sweep(creator, ev: Evaluator, args, device: torch.device) -> list[dict]:
    """images/s per sampler and step count (timed on --time-n images); FID at --steps-n for 25 vs 250."""
    rows = []
    m = args.steps_n
    labels = balanced_labels(m, creator.num_classes)
    for sampler in ("dpm++", "ddpm"):
        for steps in args.steps:
            _, sec = timed(
                creator, labels[: args.time_n], args.time_n, args.seed, device, sampler=sampler, steps=steps
            )
            row = {"sampler": sampler, "steps": steps, "images_per_s": args.time_n / sec}
            if steps in args.fid_steps:
                images, _ = timed(creator, labels, m, args.seed, device, sampler=sampler, steps=steps)
                rep = ev.evaluate(images)
                row.update({"n": m, "fid": rep.fid, "fid_se": rep.fid_se, "kid": rep.kid})
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ckpts", type=Path, nargs="+")
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--steps", type=int, nargs="+", default=[10, 25, 50, 250])
    p.add_argument("--fid-steps", type=int, nargs="+", default=[25, 250])
    p.add_argument("--steps-n", type=int, default=2000, help="samples per FID in the step sweep")
    p.add_argument("--time-n", type=int, default=500, help="samples per timing in the step sweep")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--sample-steps",
        type=int,
        default=None,
        help="diffusion: steps of the main draw (default: the model's)",
    )
    p.add_argument("--data-root", default="data")
    p.add_argument(
        "--out", type=Path, default=None, help="where the cards go (default: beside each checkpoint)"
    )
    args = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = (
        True  # tf32 tensor cores for sampling (cuDNN convs use them already)
    )
    dm = TorchvisionDataModule("mnist", root=args.data_root, fallback_to_bundled=False)
    ev = Evaluator(LeNetFeatures("mnist"), name="lenet", cache_dir="outputs/cache/reference").to(device)
    ev.set_reference_from(dm, "report", args.n)
    floor = ev.floor(dm.real_images("train", 3 * args.n), args.n, draws=3)
    ev_steps = Evaluator(LeNetFeatures("mnist"), name="lenet", cache_dir="outputs/cache/reference").to(device)
    ev_steps.set_reference_from(dm, "report", args.steps_n)
    cards = []
    for path in args.ckpts:
        card = card_for(path, ev, ev_steps, floor, args, device)
        out = (args.out or path.parent) / f"{path.stem}.card.json"
        write_json(out, card)
        cards.append(card)
        print(json.dumps({k: card[k] for k in ("checkpoint", "metrics", "seconds_per_image")}), flush=True)
    print(
        f"\nreport split, n = {args.n}, LeNet features ({ev.identity}); real-vs-real floor {floor[0]:.1f} ± {floor[1]:.1f}\n"
    )
    print("| creator | kind | parameters | FID ± SE | KID | precision | recall | conformance | ms / image |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for c in cards:
        m = c["metrics"]
        conf = f"{100 * c['conformance']['overall']:.1f} %" if "conformance" in c else "n/a"
        print(
            f"| {Path(c['checkpoint']).stem} | {c['kind']} | {c['parameters'] / 1e6:.2f} M | {m['fid']:.1f} ± "
            f"{m['fid_se']:.1f} | {m['kid']:.1f} | {m['precision']:.3f} | {m['recall']:.3f} | {conf} | "
            f"{1000 * c['seconds_per_image']:.3f} |"
        )


if __name__ == "__main__":
    main()
