"""The variety / conformance trade-off of class-conditional GAN checkpoints, on the selection split.

For choosing between checkpoints (or a recipe change) without touching the report split or the judge: per
class, the within-class variety against real selection images (``evaluation.judge.within_class_variety``,
``--n-per-class`` of each) and the share of samples the dataset's LeNet (the FID's feature network, a
classifier trained by this project) reads as the class asked for. The independent judge stays out: it grades
the report split once a choice is made (``scripts/bench_creators.py``). ``--scales`` draws the latents from
N(0, s^2 I) as well as the prior (s = 1), to place a checkpoint on the curve that the sampling temperature
traces (s < 1 is the truncation side).

    python scripts/bench_variety.py <run>/checkpoints/last.ckpt src/artdirector/zoo/cgan_fashion.ckpt \
        --dataset fashion_mnist --scales 1.0 1.25
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from artdirector.creators import wrap
from artdirector.data.datamodules import TorchvisionDataModule
from artdirector.errors import InputError, report_user_errors
from artdirector.evaluation import LeNetFeatures
from artdirector.evaluation.judge import within_class_variety
from artdirector.models.checkpoint import checkpoint_kind, module_class, read_checkpoint


def measure(creator, lenet, real_x, real_y, scale: float, n_per_class: int, seed: int) -> dict:
    """Variety and LeNet-read conformance of ``n_per_class`` samples of each class at latent scale ``scale``."""
    classes = creator.num_classes
    labels = torch.arange(classes).repeat_interleave(n_per_class)
    z = torch.randn(len(labels), creator.latent_dim, generator=torch.Generator().manual_seed(seed))
    images = creator.from_latents(z * scale, labels)
    with torch.no_grad():
        pred = lenet.logits_from_features(lenet(images)).argmax(1)
    variety = within_class_variety(images, labels, real_x, real_y, n_per_class, seed=seed, n_bootstrap=0)
    conf = [float((pred[labels == c] == c).float().mean()) for c in range(classes)]
    return {
        "variety": [variety["per_class"][str(c)]["ratio"] for c in range(classes)],
        "conformance": conf,
    }


@report_user_errors
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ckpts", type=Path, nargs="+", help="class-conditional GAN checkpoints (run or zoo)")
    p.add_argument("--dataset", default="mnist", choices=["mnist", "fashion_mnist"])
    p.add_argument("--data-root", default="data")
    p.add_argument("--scales", type=float, nargs="+", default=[1.0], help="latent scales s: z ~ N(0, s^2 I)")
    p.add_argument("--n-per-class", type=int, default=200)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dm = TorchvisionDataModule(args.dataset, root=args.data_root, fallback_to_bundled=False)
    real_x, real_y = dm.labelled("selection")
    lenet = LeNetFeatures(args.dataset)
    rows = []
    for path in args.ckpts:
        ckpt = read_checkpoint(path)  # read once: the creator and its epoch
        kind = checkpoint_kind(ckpt)
        creator = wrap(module_class(kind).from_loaded(ckpt, path), path) if kind == "gan" else None
        if creator is None or not creator.num_classes:
            raise InputError(f"{path} is not a class-conditional GAN: give the checkpoint of one")
        epoch = ckpt.get("epoch")
        for s in args.scales:
            m = measure(creator, lenet, real_x, real_y, s, args.n_per_class, args.seed)
            rows.append((path, epoch, s, m))
    print(
        f"\nselection split, {args.n_per_class} per class, seed {args.seed}; variety = generated / real mean "
        f"pairwise pixel L2; conformance = share read as the class by {lenet.identity}\n"
    )
    print(
        "| checkpoint | epoch index | z scale | variety worst (class) | variety mean | conformance per class | "
        "conformance mean |"
    )
    print("|---|---:|---:|---:|---:|---|---:|")
    for path, epoch, s, m in rows:
        v, c = m["variety"], m["conformance"]
        worst = min(range(len(v)), key=v.__getitem__)
        print(
            f"| {path} | {epoch} | {s:g} | {v[worst]:.3f} ({worst}) | {sum(v) / len(v):.3f} | "
            f"{' '.join(f'{x:.2f}' for x in c)} | {sum(c) / len(c):.3f} |"
        )


if __name__ == "__main__":
    main()
