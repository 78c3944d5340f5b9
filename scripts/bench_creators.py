"""Each creator measured alike: the evidence its card holds and the Generation Agent chooses from.

For every checkpoint given (any kind: a GAN, a conditional GAN, a diffusion model): parameters; n samples
with the classes in turn (n / 10 of each) for a conditional creator; LeNet FID (+ bootstrap SE), KID (+ std),
precision/recall against the report split (the MNIST test set) next to the real-vs-real floor at the same n;
class conformance (the share of samples the project's classifier assigns to the requested class), per class
and overall; seconds per image on this device. For diffusion also: sampling images/s at 10/25/50/250 steps
and FID at ``--steps-n`` samples for 25 against 250 steps (DPM-Solver++ and DDPM ancestral).

Routing evidence: a second draw (seed + 1) of ``--selection-n`` samples against the **selection** split
(what the Generation Agent decides from: routing is a decision), stored as the card's ``selection`` block
with the LeNet's and the judge's conformance of that draw.
Per-class FIDs on the report split for conditional creators (each class's samples against the report
images of that class).

Independent evidence (``judge``, ``variety``, ``recall_equal_n``; ``inception`` with ``--inception``):

- ``judge``: class conformance read by the judge (:mod:`artdirector.evaluation.judge`), a classifier of
  another architecture trained apart from the LeNet whose features select creators: per requested class,
  with min and mean, beside the judge's own accuracy on real report images of the class (``relative``:
  conformance / that). For an unconditional creator: the share of samples in each class the judge reads.
- ``variety``: per class, the mean pairwise pixel L2 of ``--variety-n`` generated images over that of as
  many real report images of the class (min and mean, bootstrap SE); classes are the requested ones, or
  the judge's reading for an unconditional creator.
- ``recall_equal_n``: precision and recall (k = 3, LeNet features) with as many generated as real images
  (the larger side subsampled, seeded).
- ``inception``: Inception FID of ``--inception-n`` samples against as many report images, and the
  seconds it took (the reference's features are cached after their first pass). Training images/s: ``--train-steps`` optimiser steps on random batches of
``--train-batch`` on this device, after two warm-up steps.

Then the **routing regret** over a set of requests (one unconditional, one per class): the creator the
agent's router picks from the selection-split evidence against the best creator measured after the fact on
the report split (overall FID; per-class FID for a class request); regret = (chosen - best) / best.

Writes ``<ckpt stem>.card.json`` beside each checkpoint (or into ``--out``), merged into an existing card
(its recipe and notes are kept; its ``sha256`` is the measured file's), and prints the tables.

    python scripts/bench_creators.py src/artdirector/zoo/*.ckpt --n 10000        # on a GPU
    python scripts/bench_creators.py a.ckpt --n 500 --steps-n 100 --steps 2 4     # a quick CPU check
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from artdirector.creators import ADAPTERS
from artdirector.creators.routing import read_evidence, route
from artdirector.data import TorchvisionDataModule
from artdirector.evaluation import Evaluator, InceptionFeatures, LeNetFeatures, floor_pair
from artdirector.evaluation.copying import copy_check
from artdirector.evaluation.judge import load_judge, within_class_variety
from artdirector.io import file_sha256, save_grid, write_json
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


class _StepTimer(L.Callback):
    """Wall time of the training batches after ``warmup`` (kernels, allocator and caches warm)."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.t0, self.seconds = warmup, None, None

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if batch_idx == self.warmup:
            sync(module.device)
            self.t0 = time.perf_counter()

    def on_train_end(self, trainer, module) -> None:
        sync(module.device)
        self.seconds = time.perf_counter() - self.t0


def train_images_per_s(kind: str, hparams: dict, device: torch.device, steps: int, batch: int) -> float:
    """Optimiser steps of the creator's own training_step on random labelled batches, timed after 2."""
    model = module_class(kind)(**hparams)
    shape = tuple(model.image_shape)
    n = batch * (steps + 2)
    data = TensorDataset(torch.rand(n, *shape) * 2 - 1, torch.randint(0, 10, (n,)))
    timer = _StepTimer(warmup=2)
    trainer = L.Trainer(
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=1,
        max_steps=steps + 2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    trainer.fit(model, DataLoader(data, batch_size=batch, drop_last=True))
    return steps * batch / timer.seconds


def per_class_fids(ev: Evaluator, images, labels, real_x, real_y) -> dict[str, float]:
    """Each class's samples against the real images of that class (equal n per class where possible)."""
    out = {}
    for c in labels.unique().tolist():
        ev_c = copy.copy(ev)
        ev_c.set_reference(
            real_x[real_y == c],
            dataset=f"{ev.reference_key['dataset']}[class {c}]",
            split=ev.reference_key["split"],
        )
        out[str(c)] = ev_c.frechet(ev_c.features(images[labels == c]))
    return out


def recall_equal_n(ev: Evaluator, r, seed: int) -> dict:
    """Precision/recall with as many generated as real features: the evaluator draws a subset of its
    reference when that is larger; a larger generated set is subsampled here (seeded)."""
    fake, n_real = r.features, ev.real_features.shape[0]
    n = min(fake.shape[0], n_real)
    if fake.shape[0] > n:
        keep = torch.randperm(fake.shape[0], generator=torch.Generator().manual_seed(seed))[:n]
        r = ev.evaluate_features(fake[keep])
    return {
        "precision": r.precision,
        "recall": r.recall,
        "n": n,
        "n_generated": int(fake.shape[0]),
        "n_real": int(n_real),
        "k": ev.pr_k,
        "features": ev.identity,
    }


def judge_evidence(images, labels, classes: int, report_xy, args) -> tuple[dict, dict]:
    """The judge's conformance (or class shares) and the within-class variety of the samples."""
    judge = load_judge(args.dataset)
    pred = judge.predict(images)
    if classes:
        judged = judge.conformance_per_class(images, labels, pred=pred)
        by = labels
    else:
        counts = torch.bincount(pred, minlength=judge.num_classes)
        judged = {
            "judge": judge.identity,
            "class_shares": {str(c): float(v) / len(pred) for c, v in enumerate(counts.tolist())},
        }
        by = pred
    variety = within_class_variety(
        images, by, report_xy.x, report_xy.y, n_per_class=args.variety_n, seed=args.seed
    )
    variety["classes_from"] = "requested" if classes else f"the judge's reading ({judge.identity})"
    return judged, variety


def inception_fid(creator, images, labels, ev_inc: Evaluator, args, device, opts) -> dict:
    """Inception FID of --inception-n samples (the main draw when it has that many) against the report split."""
    m, sample_seconds = args.inception_n, None
    if images.shape[0] != m:
        lab = balanced_labels(m, creator.num_classes) if creator.num_classes else None
        images, sample_seconds = timed(creator, lab, m, args.seed, device, **opts)
    sync(device)
    t0 = time.perf_counter()
    rep = ev_inc.evaluate(images)
    sync(device)
    return {
        "fid": rep.fid,
        "fid_se": rep.fid_se,
        "n": m,
        "n_real": rep.n_real,
        "split": "report",
        "features": ev_inc.identity,
        "seed": args.seed,
        "seconds": time.perf_counter() - t0,
        "seconds_note": "the generated images' Inception features and the metrics; the reference's "
        "features were cached (reference_seconds: their first pass)",
        "reference_seconds": args.inception_reference_seconds,
        "sampling_seconds": sample_seconds,
    }


def card_for(
    path: Path,
    ev: Evaluator,
    ev_steps: Evaluator,
    ev_sel: Evaluator,
    report_xy,
    floor: tuple[float, float],
    args,
    device: torch.device,
    ev_inc: Evaluator | None = None,
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
    save_grid(images[:100], args.grids / f"{path.stem}.grid.png", nrow=10)
    r = ev.evaluate(images)
    card = {
        "checkpoint": path.name,  # the card sits beside it
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
        else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "torch": torch.__version__,
    }
    # are the samples copies of training images? (Meehan et al. 2020; the Evaluation Agent's copy rate)
    card["copy_rate"] = copy_check(
        ev, report_xy.datamodule, images, r.features, grid=args.grids / f"{path.stem}.copies.png"
    )
    if classes:
        card["conformance"] = conformance(r.labels, labels, classes)
        card["per_class_fid"] = per_class_fids(ev, images, labels, report_xy.x, report_xy.y)
    card["judge"], card["variety"] = judge_evidence(images.cpu(), labels, classes, report_xy, args)
    card["recall_equal_n"] = recall_equal_n(ev, r, args.seed)
    if ev_inc is not None:
        card["inception"] = inception_fid(creator, images, labels, ev_inc, args, device, opts)
    # routing evidence: a fresh draw against the selection split
    m = args.selection_n
    sel_labels = balanced_labels(m, classes) if classes else None
    sel_images, _ = timed(creator, sel_labels, m, args.seed + 1, device, **opts)
    rs = ev_sel.evaluate(sel_images)
    card["selection"] = {
        "n": m,
        "split": "selection",
        "features": ev_sel.identity,
        "reference": ev_sel.reference_key,
        "seed": args.seed + 1,
        "metrics": {k: getattr(rs, k) for k in ("fid", "fid_se", "kid", "kid_std", "precision", "recall")},
        **({"conformance": conformance(rs.labels, sel_labels, classes)} if classes else {}),
        # the judge's reading of the routing draw, for a router that should not trust the LeNet's
        **(
            {"judge": load_judge(args.dataset).conformance_per_class(sel_images.cpu(), sel_labels)}
            if classes
            else {}
        ),
    }
    if args.train_steps:
        card["train_images_per_s"] = train_images_per_s(
            kind, dict(ckpt["hyper_parameters"]), device, args.train_steps, args.train_batch
        )
        card["train_batch"] = args.train_batch
    if kind == "diffusion":
        card["sampler"] = {**model.defaults, "precision": model.sampling_precision, **opts}
        card["sampling"] = sampling_sweep(creator, ev_steps, args, device)
    return card


def sampling_sweep(creator, ev: Evaluator, args, device: torch.device) -> list[dict]:
    """images/s per sampler and step count (timed on --time-n images); FID at --steps-n for 25 vs 250."""
    rows = []
    m = args.steps_n
    labels = balanced_labels(m, creator.num_classes)
    for sampler in args.samplers:
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
    p.add_argument(
        "--samplers",
        nargs="+",
        default=["dpm++", "ddpm"],
        choices=["dpm++", "ddpm", "ddim"],
        help="of the sweep",
    )
    p.add_argument("--time-n", type=int, default=500, help="samples per timing in the step sweep")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--sample-steps",
        type=int,
        default=None,
        help="diffusion: steps of the main draw (default: the model's)",
    )
    p.add_argument("--selection-n", type=int, default=1000, help="samples of the routing evidence")
    p.add_argument("--train-steps", type=int, default=20, help="timed training steps (0: skip)")
    p.add_argument("--train-batch", type=int, default=128)
    p.add_argument(
        "--variety-n", type=int, default=200, help="images per class (generated and real) for the variety"
    )
    p.add_argument(
        "--inception", action="store_true", help="also the Inception FID (slow without a GPU) and its seconds"
    )
    p.add_argument("--inception-n", type=int, default=10_000, help="samples of the Inception FID")
    p.add_argument("--skip-regret", action="store_true")
    p.add_argument(
        "--regret-only", action="store_true", help="measure nothing: the regret table from the cards there"
    )
    p.add_argument("--data-root", default="data")
    p.add_argument(
        "--dataset",
        default="mnist",
        choices=["mnist", "fashion_mnist"],
        help="what the creators were trained on: the references and the LeNet features (and classifier) of it",
    )
    p.add_argument(
        "--grids", type=Path, default=Path("outputs/bench_creators"), help="sample and copy-pair grids"
    )
    p.add_argument(
        "--out", type=Path, default=None, help="where the cards go (default: beside each checkpoint)"
    )
    args = p.parse_args()
    if args.regret_only:
        cards = [
            json.loads((args.out or c.parent).joinpath(f"{c.stem}.card.json").read_text()) for c in args.ckpts
        ]
        for path, card in zip(args.ckpts, cards, strict=True):
            card["checkpoint"] = str(path)
        args.selection_n = cards[0]["selection"]["n"]
        regret_table(args, cards)
        return
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = (
        True  # tf32 tensor cores for sampling (cuDNN convs use them already)
    )
    dm = TorchvisionDataModule(args.dataset, root=args.data_root, fallback_to_bundled=False)
    ev = Evaluator(LeNetFeatures(args.dataset), name="lenet", cache_dir="outputs/cache/reference").to(device)
    ev.set_reference_from(dm, "report", args.n)
    floor = floor_pair(ev.floor_from(dm, args.n))
    ev_steps = Evaluator(LeNetFeatures(args.dataset), name="lenet", cache_dir="outputs/cache/reference").to(
        device
    )
    ev_steps.set_reference_from(dm, "report", args.steps_n)
    ev_sel = Evaluator(LeNetFeatures(args.dataset), name="lenet", cache_dir="outputs/cache/reference").to(
        device
    )
    ev_sel.set_reference_from(dm, "selection", args.selection_n)
    sel_floor = floor_pair(ev_sel.floor_from(dm, args.selection_n))
    x, y = dm.labelled("report")
    report_xy = SimpleNamespace(x=x, y=y, datamodule=dm)
    ev_inc = None
    if args.inception:
        ev_inc = Evaluator(InceptionFeatures(), name="inception", cache_dir="outputs/cache/reference").to(
            device
        )
        sync(device)
        t0 = time.perf_counter()
        ev_inc.set_reference_from(dm, "report", args.inception_n)
        sync(device)
        args.inception_reference_seconds = time.perf_counter() - t0
    args.grids.mkdir(parents=True, exist_ok=True)
    cards = []
    for path in args.ckpts:
        card = card_for(path, ev, ev_steps, ev_sel, report_xy, floor, args, device, ev_inc)
        card["selection"]["floor"] = {"fid": sel_floor[0], "sd": sel_floor[1], "n": args.selection_n}
        out = (args.out or path.parent) / f"{path.stem}.card.json"
        old = json.loads(out.read_text()) if out.is_file() else {}
        card["sha256"] = file_sha256(path)  # the file this evidence was measured on
        if old.get("sha256") not in (None, card["sha256"]):
            print(
                f"warning: {out} described another file (sha256 {old['sha256'][:12]}, now "
                f"{card['sha256'][:12]}): its recipe and notes are kept, check them",
                file=sys.stderr,
            )
        card = {**old, **card}  # the evidence is new; the recipe and notes of an exported card stay
        write_json(out, card)
        cards.append(card)
        print(json.dumps({k: card[k] for k in ("checkpoint", "metrics", "seconds_per_image")}), flush=True)
    print(
        f"\nreport split, n = {args.n}, LeNet features ({ev.identity}); real-vs-real floor {floor[0]:.1f} ± {floor[1]:.1f}\n"
    )
    print(
        "| creator | kind | parameters | train images/s | sampling images/s | FID ± SE | KID | precision | "
        "recall | conformance | copy rate | selection FID (n, routing) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for c in cards:
        m, sm = c["metrics"], c["selection"]["metrics"]
        conf = f"{100 * c['conformance']['overall']:.1f} %" if "conformance" in c else "n/a"
        tr = f"{c['train_images_per_s']:.0f}" if c.get("train_images_per_s") else "-"
        cr = c.get("copy_rate")
        copies = f"{100 * cr['copy_rate']:.1f} ± {100 * cr['se']:.1f} %" if cr else "-"
        print(
            f"| {Path(c['checkpoint']).stem} | {c['kind']} | {c['parameters'] / 1e6:.2f} M | {tr} | "
            f"{1 / c['seconds_per_image']:.0f} | {m['fid']:.1f} ± {m['fid_se']:.1f} | {m['kid']:.1f} | "
            f"{m['precision']:.3f} | {m['recall']:.3f} | {conf} | {copies} | {sm['fid']:.1f} ± {sm['fid_se']:.1f} "
            f"({c['selection']['n']}) |"
        )
    print(
        f"\nindependent evidence: judge conformance (requested classes; min, mean, and min relative to the "
        f"judge on real images), variety (generated / real mean pairwise pixel L2, {args.variety_n} per "
        "class), recall at equal n, copy rate"
    )
    print(
        "| creator | judge min | judge mean | judge min / real | variety min | variety mean | "
        "recall (n) | copy rate | Inception FID (n, s) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for c in cards:
        j, v, rq, cr, inc = (
            c.get(k) or {} for k in ("judge", "variety", "recall_equal_n", "copy_rate", "inception")
        )
        judged = (
            (
                f"{j['min']:.3f} ({j['min_class']})",
                f"{j['mean']:.3f}",
                f"{j.get('relative_min', float('nan')):.3f}",
            )
            if "min" in j
            else ("n/a",) * 3
        )
        print(
            f"| {Path(c['checkpoint']).stem} | {' | '.join(judged)} | "
            f"{v.get('min', float('nan')):.3f} ({v.get('min_class')}) | {v.get('mean', float('nan')):.3f} | "
            f"{rq.get('recall', float('nan')):.3f} ({rq.get('n')}) | "
            + (f"{100 * cr['copy_rate']:.1f} %" if cr else "-")
            + " | "
            + (f"{inc['fid']:.2f} ({inc['n']}, {inc['seconds']:.0f} s)" if inc else "-")
            + " |"
        )
    for c in cards:
        for row in c.get("sampling", []):
            print(json.dumps({"creator": Path(c["checkpoint"]).stem, **row}))
    if not args.skip_regret:
        regret_table(args, cards)


def regret_table(args, cards: list[dict]) -> None:
    """Route each request from the selection-split evidence; score it by what the report split says after.
    FID is biased upward at small n, so cards measured at different n (or routed from evidence at different n)
    are refused rather than compared."""
    for what, get in (("report n", lambda c: c["n"]), ("selection n", lambda c: c["selection"]["n"])):
        ns = {Path(c["checkpoint"]).stem: get(c) for c in cards}
        if len(set(ns.values())) > 1:
            print(
                f"error: the cards' {what} differ ({', '.join(f'{k} {v}' for k, v in ns.items())}); FIDs at "
                "different n are not comparable: measure every creator with the same --n and --selection-n "
                "(--out DIR keeps those cards apart from the zoo's) and pass --regret-only --out DIR",
                file=sys.stderr,
            )
            raise SystemExit(2)
    creators = [
        SimpleNamespace(
            name=Path(c["checkpoint"]).stem,
            path=Path(c["checkpoint"]),
            accepts=frozenset({"nothing", "class"} if c["conditional"] else {"nothing"}),
            card=c,
        )
        for c in cards
    ]
    evidence = [read_evidence(c) for c in creators]
    requests = [("any", None)] + [(f"class {k}", (k,)) for k in range(10)]
    print(
        f"\nrouting regret (chosen from the selection split, n={args.selection_n}; judged on the report split)"
    )
    print("| request | chosen | best after the fact | chosen FID | best FID | regret |")
    print("|---|---|---|---:|---:|---:|")
    regrets = []
    for name, classes in requests:
        needs = frozenset({"class"}) if classes else frozenset()
        r = route(evidence, needs, classes, min_conformance=0.9 if classes else 0.0)
        able = [i for i, c in enumerate(creators) if needs <= c.accepts]
        if r.chosen < 0 or not able:
            print(f"| {name} | none can serve it | - | - | - | - |")
            continue

        def truth(i: int, classes=classes) -> float:
            c = cards[i]
            return c["per_class_fid"][str(classes[0])] if classes else c["metrics"]["fid"]

        best = min(able, key=truth)
        regret = (truth(r.chosen) - truth(best)) / truth(best)
        regrets.append(regret)
        print(
            f"| {name} | {creators[r.chosen].name} | {creators[best].name} | {truth(r.chosen):.1f} | "
            f"{truth(best):.1f} | {100 * regret:.1f} % |"
        )
    if regrets:
        print(f"\nmean routing regret {100 * sum(regrets) / len(regrets):.1f} % over {len(regrets)} requests")


if __name__ == "__main__":
    main()
