"""The variety / conformance trade-off of class-conditional GAN checkpoints, on the selection split.

For choosing between checkpoints (or a recipe change) without touching the report split or the judge: per
class, the within-class variety against real selection images (``evaluation.judge.within_class_variety``,
``--n-per-class`` of each) and the share of samples the dataset's LeNet (the FID's feature network, a
classifier trained by this project) reads as the class asked for. The independent judge stays out: it grades
the report split once a choice is made (``scripts/bench_creators.py``). ``--scales`` draws the latents from
N(0, s^2 I) as well as the prior (s = 1), to place a checkpoint on the curve that the sampling temperature
traces (s < 1 is the truncation side); the scales multiply any ``latent_scale`` the checkpoint already has.

``--target-variety V`` chooses a per-class sampling temperature from those scales, the rule fixed before it is
run: for each class, the smallest scale whose variety reaches V among those whose LeNet-read conformance is
within ``--max-conformance-drop`` of the class's at s = 1 (the largest such scale when none reaches V; s = 1
when the class already reaches V). It prints the ``--hp latent_scale=[...]`` that
``scripts/export_zoo.py`` takes. Everything here is the selection split; the report split and the judge grade
the exported model afterwards.

    python scripts/bench_variety.py <run>/checkpoints/last.ckpt src/artdirector/zoo/cgan_fashion.ckpt \
        --dataset fashion_mnist --scales 1.0 1.25
    python scripts/bench_variety.py <run>/checkpoints/best.ckpt --dataset fashion_mnist \
        --scales 1.0 1.1 1.2 1.3 1.4 --target-variety 0.85
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


def choose_scales(
    scales: list[float], measured: dict[float, dict], target: float, max_drop: float
) -> list[float]:
    """Per class, the smallest scale reaching ``target`` variety among those whose conformance is within
    ``max_drop`` of the class's at s = 1 (the largest such scale when none reaches it)."""
    base = measured[1.0]
    chosen = []
    for c in range(len(base["variety"])):
        allowed = [
            s for s in sorted(scales) if measured[s]["conformance"][c] >= base["conformance"][c] - max_drop
        ]
        reaching = [s for s in allowed if measured[s]["variety"][c] >= target]
        chosen.append(reaching[0] if reaching else max(allowed))
    return chosen


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
    p.add_argument(
        "--target-variety", type=float, default=None, help="choose a latent scale per class (see above)"
    )
    p.add_argument("--max-conformance-drop", type=float, default=0.02)
    args = p.parse_args()
    if args.target_variety is not None and (1.0 not in args.scales or len(args.ckpts) != 1):
        raise InputError(
            "--target-variety needs one checkpoint and 1.0 among --scales (the class's baseline)"
        )
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
        "| checkpoint | epoch index | z scale | variety worst (class) | variety mean | variety per class | "
        "conformance per class | conformance mean |"
    )
    print("|---|---:|---:|---:|---:|---|---|---:|")
    for path, epoch, s, m in rows:
        v, c = m["variety"], m["conformance"]
        worst = min(range(len(v)), key=v.__getitem__)
        print(
            f"| {path} | {epoch} | {s:g} | {v[worst]:.3f} ({worst}) | {sum(v) / len(v):.3f} | "
            f"{' '.join(f'{x:.2f}' for x in v)} | {' '.join(f'{x:.2f}' for x in c)} | {sum(c) / len(c):.3f} |"
        )
    if args.target_variety is not None:
        measured = {s: m for _, _, s, m in rows}
        chosen = choose_scales(args.scales, measured, args.target_variety, args.max_conformance_drop)
        print(
            f"\nper-class latent scale for variety >= {args.target_variety} within "
            f"{args.max_conformance_drop} of each class's conformance at s = 1:\n"
            f"--hp latent_scale=[{','.join(f'{s:g}' for s in chosen)}]"
        )


if __name__ == "__main__":
    main()
