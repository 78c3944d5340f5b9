"""Style edits, judged: does each technique move the attribute by the requested amount and keep the class?

    python scripts/bench_style.py                                   # real train digits and the zoo's GANs
    python scripts/bench_style.py --creators real src/artdirector/zoo/cgan.ckpt src/artdirector/zoo/ddpm.ckpt

For each creator (``real``: digits of the train split, the reference for the pixel edit; or a checkpoint:
``--n`` samples of seed ``--seed``, classes 0-9 in turn for a conditional creator), each target (prompt words:
thick, thin, slanted, upright, small, large; ``artdirector.editing.targets.WORDS``) and each technique that can
serve it (``latent``: InterFaceGAN for a GAN; ``guidance``: attribute guidance for a diffusion model, calibrated
on 16 probe images; ``morpho``: the Morpho-MNIST pixel edit):

- *steered by*: the formula of ``editing/attributes.py`` the edit aims at (``editing.measure.measure_edit``),
  before and after, and the achieved change against the requested one. The edits optimise it, so it says
  what the edit aimed at, not whether it got there;
- *judge*: the style judge (``evaluation/style_judge.py``), which the edits do not optimise: Morpho-MNIST's
  estimators and a CNN regressor trained on real digits, each before and after, with the request taken in
  its own values (``+50 %`` of its thickness, ``+15`` of its slant, ``= 0``);
- the class conformance before and after by the shipped MNIST LeNet (to the asked classes; for an
  unconditional creator, agreement with each unedited image's predicted class), and the FID (LeNet
  features) of the images before and after against the report split (n = 10,000 reference), with its
  bootstrap SE and the real-vs-real floor at the same n.

*Met* is the judge's verdict: by both of its readings the mean change within 25 % of the mean request, and
conformance down by at most 1 point. Prints a Markdown table; ``--json`` writes every number.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from artdirector.creators import load_creator
from artdirector.data import TorchvisionDataModule
from artdirector.editing.measure import measure_edit
from artdirector.editing.style import candidates, edit
from artdirector.editing.targets import target_for_word
from artdirector.evaluation import Evaluator, LeNetFeatures, floor_pair
from artdirector.evaluation.style_judge import load_style_judge
from artdirector.io import save_grid, write_json
from artdirector.models.base import balanced_labels

WORDS = ("thick", "thin", "slanted", "upright", "small", "large")


def _reading(r: dict, sd: bool = False) -> str:
    ach = r["achieved_change"]
    return (
        f"{r['before']['mean']:.3g} -> {r['after']['mean']:.3g}; "
        f"{r['requested_change']['mean']:+.3g} / {ach['mean']:+.3g}" + (f" ({ach['sd']:.2g})" if sd else "")
    )


def verdict(row: dict) -> str:
    """The judge's verdict on a row, with what failed: the attribute (by the judge) or the class."""
    failed = [
        w for w, ok in (("attribute", row["judge"]["met"]), ("class", row["measure"]["class_kept"])) if not ok
    ]
    return "yes" if not failed else f"no ({', '.join(failed)})"


def table(rows: list[dict]) -> list[str]:
    """The Markdown table of the rows: the steering formula (reached or missed by its own check), the judge's
    two readings, conformance, FID and the judge's verdict."""
    lines = [
        "| creator | word (target) | technique | n | steered by (formula): before -> after; asked / achieved | "
        "judge, Morpho: before -> after; asked / achieved (sd) | judge, CNN: before -> after; asked / achieved | "
        "conformance before -> after | FID before -> after (floor) | met (judge) |",
        "|---|---|---|---:|---|---|---|---|---|---|",
    ]
    for r in rows:
        m, f, j = r["measure"], r["fid"], r["judge"]
        c = m.get("conformance", {})
        lines.append(
            f"| {r['creator']} | {r['word']} ({m['target']}) | {r['method']} | {r['n']} | "
            f"{_reading(m)} ({'reached' if m['moved'] else 'missed'}) | {_reading(j['morpho'], sd=True)} | "
            f"{_reading(j['cnn'])} | "
            f"{c.get('before', float('nan')) * 100:.1f} -> {c.get('after', float('nan')) * 100:.1f} % | "
            f"{f['before']:.1f} -> {f['after']:.1f} ± {f['after_se']:.1f} ({r['floor'][0]:.1f}) | {verdict(r)} |"
        )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--creators",
        nargs="+",
        default=["real", "src/artdirector/zoo/cgan.ckpt", "src/artdirector/zoo/dcgan.ckpt"],
    )
    ap.add_argument("--words", nargs="+", default=list(WORDS))
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--n-diffusion", type=int, default=100, help="images per diffusion creator (CPU cost)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-root", default="data")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--grids", type=Path, default=Path("outputs/bench_style"))
    args = ap.parse_args()

    dm = TorchvisionDataModule("mnist", root=args.data_root, fallback_to_bundled=False)
    lenet = LeNetFeatures("mnist")
    judge = load_style_judge()
    ev = Evaluator(lenet, name="lenet", cache_dir="outputs/cache/reference")
    ev.set_reference_from(dm, "report", 10000)
    floors = {}

    def floor(n: int) -> tuple[float, float]:
        if n not in floors:
            floors[n] = floor_pair(ev.floor_from(dm, n))
        return floors[n]

    def classify(images: torch.Tensor) -> torch.Tensor:
        return torch.cat([lenet.logits_from_features(lenet(b)).argmax(1) for b in images.split(500)])

    train_x, train_y = dm.labelled("train", 4 * args.n)
    rows = []
    for spec in args.creators:
        if spec == "real":
            # train-split digits: images of neither reference split (the FID's reference is the report split)
            g = torch.Generator().manual_seed(args.seed)
            pick = torch.randperm(len(train_y), generator=g)[: args.n]
            images, labels, creator, latents, seed, options = (
                train_x[pick],
                train_y[pick],
                None,
                None,
                None,
                {},
            )
            caps, name, conditional = set(), "real (train split)", True
        else:
            creator = load_creator(spec)
            n = args.n_diffusion if creator.kind == "diffusion" else args.n
            labels = balanced_labels(n, creator.num_classes) if creator.num_classes else None
            drawn = creator.sample(n, condition=labels, seed=args.seed)
            images, latents, seed, options = drawn.images, drawn.latents, drawn.seed, drawn.options
            caps, name, conditional = set(creator.capabilities), creator.name, labels is not None
        n = images.shape[0]
        base = ev.evaluate(images)
        read_before = judge.read(images)
        save_grid(images[:64], args.grids / f"{Path(name.split()[0]).stem}_unedited.png")
        for word in args.words:
            target = target_for_word(word)
            methods = candidates(caps, target.attribute) if caps else ["morpho"]
            for method in methods:
                t0 = time.perf_counter()
                out, _, info = edit(
                    creator,
                    images,
                    target,
                    method,
                    latents=latents,
                    labels=labels,
                    seed=seed,
                    options=options,
                )
                seconds = time.perf_counter() - t0
                m = measure_edit(images, out, target, classify, labels if conditional else None)
                j = judge.judge_change(read_before, judge.read(out), target, tolerance=m["tolerance"])
                r = ev.evaluate(out)
                save_grid(out[:64], args.grids / f"{Path(name.split()[0]).stem}_{word}_{method}.png")
                rows.append(
                    {
                        "creator": name,
                        "word": word,
                        "method": method,
                        "n": n,
                        "measure": m,
                        "judge": j,
                        "met": j["met"] and m["class_kept"],
                        "fid": {
                            "before": base.fid,
                            "before_se": base.fid_se,
                            "after": r.fid,
                            "after_se": r.fid_se,
                        },
                        "floor": floor(n),
                        "info": {k: v for k, v in info.items() if k != "method"},
                        "seconds": seconds,
                    }
                )
                print(
                    m["summary"],
                    f"| judge: Morpho {j['morpho']['achieved_change']['mean']:+.3g}, "
                    f"CNN {j['cnn']['achieved_change']['mean']:+.3g}: {'met' if rows[-1]['met'] else 'not met'}",
                    f"[{name}, {method}, {seconds:.0f} s]",
                    flush=True,
                )

    print(
        f"\nseed {args.seed}; style judge {judge.identity}; conformance by the MNIST LeNet; FID: report split, "
        f"LeNet features ({ev.identity}); met (judge) = by both of the judge's readings the mean change within "
        "25 % of the request, and conformance down <= 1 point\n"
    )
    print("\n".join(table(rows)))
    print(
        f"\n{platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    if args.json:
        write_json(
            args.json,
            {"rows": rows, "feature_net": ev.identity, "style_judge": judge.identity, "seed": args.seed},
        )


if __name__ == "__main__":
    main()
