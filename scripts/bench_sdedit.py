"""SDEdit (Meng et al. 2022) with a diffusion creator: the realism / faithfulness trade-off over strength,
and class translation ("make this 3 look like an 8").

    python scripts/bench_sdedit.py <ddpm>.ckpt --n 200 --plot docs/images/sdedit_tradeoff.png

Two sets of inputs, each ``--n`` images:

- **rough**: samples of a weak creator (``--rough``, the zoo's seed DCGAN by default; seed 0), edited
  unconditionally (the null class): SDEdit as a refiner. Realism is the FID (LeNet features) of the outputs
  against the report split (n = 10,000 reference) with its bootstrap SE, beside the real-vs-real floor at
  ``--n``; faithfulness is the mean per-image L2 (MSE in [-1, 1]) and SSIM (torchmetrics) to the input.
- **translate**: real digits of the **train** split (so neither reference split is an input), each denoised
  under the class ``(c + 1) mod 10``: the share the independent judge (``evaluation.judge``) reads as the
  target class (and as the source class), and the L2/SSIM to the input.

Strengths ``--strengths`` (0 returns the input; 1 ignores it); the sampler, steps and guidance are the
model's defaults unless given. Prints Markdown tables; ``--plot`` draws both panels; ``--json`` keeps all.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch
from torchmetrics.functional.image import structural_similarity_index_measure

from artdirector.creators import load_creator
from artdirector.data import TorchvisionDataModule
from artdirector.evaluation import Evaluator, LeNetFeatures, floor_pair
from artdirector.evaluation.judge import load_judge
from artdirector.io import atomic_write, save_grid, write_json
from artdirector.models.checkpoint import load_module


def faithfulness(out: torch.Tensor, inp: torch.Tensor) -> tuple[float, float]:
    l2 = float((out - inp).pow(2).flatten(1).mean(1).mean())
    ssim = float(structural_similarity_index_measure(out, inp, data_range=2.0))
    return l2, ssim


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ckpt", help="a diffusion checkpoint (model=ddpm/dit, or a zoo export)")
    ap.add_argument("--rough", default="src/artdirector/zoo/dcgan.ckpt")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--strengths", nargs="+", type=float, default=[0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ap.add_argument("--sampler", default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--guidance", type=float, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-root", default="data")
    ap.add_argument("--plot", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--grids", type=Path, default=Path("outputs/bench_sdedit"))
    args = ap.parse_args()
    torch.set_grad_enabled(False)

    model = load_module(args.ckpt, kinds=("diffusion",)).eval()
    opts = {"sampler": args.sampler, "steps": args.steps, "guidance": args.guidance}
    dm = TorchvisionDataModule("mnist", root=args.data_root, fallback_to_bundled=False)
    lenet = LeNetFeatures("mnist")
    ev = Evaluator(lenet, name="lenet", cache_dir="outputs/cache/reference")
    ev.set_reference_from(dm, "report", 10000)
    floor = floor_pair(ev.floor_from(dm, args.n))

    judge = load_judge("mnist")  # the class verdict comes from a net apart from the FID's features

    def classify(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([judge.logits(b).argmax(1) for b in x.split(500)])

    rough = load_creator(args.rough)
    labels = torch.arange(args.n) % rough.num_classes if rough.num_classes else None
    rough_x = rough.sample(args.n, condition=labels, seed=args.seed).images
    train_x, train_y = dm.labelled("train", 4 * args.n)
    pick = torch.randperm(train_y.shape[0], generator=torch.Generator().manual_seed(args.seed))[: args.n]
    real_x, real_y = train_x[pick], train_y[pick]
    target_y = (real_y + 1) % 10

    rows_rough, rows_tr = [], []
    for s in args.strengths:
        t0 = time.perf_counter()
        out = model.sdedit(rough_x, None, strength=s, seed=args.seed, **opts)
        sec = time.perf_counter() - t0
        r = ev.evaluate(out)
        l2, ssim = faithfulness(out, rough_x)
        rows_rough.append(
            {"strength": s, "fid": r.fid, "fid_se": r.fid_se, "l2": l2, "ssim": ssim, "seconds": sec}
        )
        save_grid(out[:64], args.grids / f"rough_s{s:.1f}.png")
        out = model.sdedit(real_x, target_y, strength=s, seed=args.seed, **opts)
        pred = classify(out)
        l2, ssim = faithfulness(out, real_x)
        rows_tr.append(
            {
                "strength": s,
                "target": float((pred == target_y).float().mean()),
                "source": float((pred == real_y).float().mean()),
                "l2": l2,
                "ssim": ssim,
            }
        )
        save_grid(out[:64], args.grids / f"translate_s{s:.1f}.png")
        print(rows_rough[-1], rows_tr[-1], flush=True)
    save_grid(rough_x[:64], args.grids / "rough_input.png")
    save_grid(real_x[:64], args.grids / "translate_input.png")

    o = dict(model.defaults) | {k: v for k, v in opts.items() if v is not None}
    print(
        f"\nSDEdit with {args.ckpt} ({o['sampler']}, {o['steps']} steps, guidance {o['guidance']}); n = {args.n}, "
        f"seed {args.seed}; LeNet features ({ev.identity}); real-vs-real floor {floor[0]:.1f} ± {floor[1]:.1f}\n"
    )
    print(f"Rough inputs ({args.rough} samples), unconditional; FID against the report split:\n")
    print("| strength | FID ± SE | L2 to input | SSIM to input | seconds |")
    print("|---:|---:|---:|---:|---:|")
    for r in rows_rough:
        print(
            f"| {r['strength']:.1f} | {r['fid']:.1f} ± {r['fid_se']:.1f} | {r['l2']:.3f} | {r['ssim']:.3f} | "
            f"{r['seconds']:.0f} |"
        )
    print("\nTranslation of train-split digits to class (c + 1) mod 10 (the independent judge's verdict):\n")
    print("| strength | target class | source class | L2 to input | SSIM to input |")
    print("|---:|---:|---:|---:|---:|")
    for r in rows_tr:
        print(
            f"| {r['strength']:.1f} | {r['target'] * 100:.1f} % | {r['source'] * 100:.1f} % | {r['l2']:.3f} | "
            f"{r['ssim']:.3f} |"
        )
    print(
        f"\n{platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    if args.json:
        write_json(
            args.json, {"rough": rows_rough, "translate": rows_tr, "floor": floor, "n": args.n, "options": o}
        )
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
        st = [r["strength"] for r in rows_rough]
        a.errorbar(
            st, [r["fid"] for r in rows_rough], [r["fid_se"] for r in rows_rough], marker="o", label="FID"
        )
        a.axhline(floor[0], ls=":", c="grey", label=f"real-vs-real floor (n={args.n})")
        a.set_xlabel("SDEdit strength")
        a.set_ylabel("FID vs report split (LeNet)")
        a.set_yscale("log")
        a2 = a.twinx()
        a2.plot(st, [r["ssim"] for r in rows_rough], "s--", c="C1", label="SSIM to input")
        a2.set_ylabel("SSIM to the input")
        a.set_title(f"rough inputs ({Path(args.rough).stem} samples), n={args.n}")
        a.legend(loc="upper center", fontsize=8)
        a2.legend(loc="lower left", fontsize=8)
        b.plot(st, [r["target"] * 100 for r in rows_tr], "o-", label="target class (c+1)")
        b.plot(st, [r["source"] * 100 for r in rows_tr], "s-", label="source class c")
        b.plot(st, [r["ssim"] * 100 for r in rows_tr], "^--", label="SSIM to input x100")
        b.set_xlabel("SDEdit strength")
        b.set_ylabel("% of images (judge)")
        b.set_title(f"class translation, train-split digits, n={args.n}")
        b.legend(fontsize=8)
        fig.tight_layout()
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(args.plot, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
