"""How sure the independent judge is that a run's samples are digits (or garments): a creator checkpoint or a
run directory in, one JSON line out.

Draws ``--n`` samples (seed ``--seed``; a class-conditional creator is asked for the classes in turn, n/10
each) and reads them with the shipped judge (:mod:`artdirector.evaluation.judge`), which took no part in
training them:

- ``confidence``: the mean over the samples of the judge's largest softmax probability (1: every sample is
  read as some class without doubt; 0.1: the judge cannot tell them from noise).
- ``confident_share``: the share of samples whose largest probability is at least ``--threshold``.
- ``read_as_entropy``: the entropy of the classes the judge reads, over log(classes) (1: every class equally
  often; 0: one class only). The judge is sure of noise too (uniform noise and flat grey read as 8 with
  probability ~1.0), so ``confidence`` means digits only beside a high ``read_as_entropy`` or conformance.
- for a conditional creator, ``conformance``: the share read as the class that was asked for, overall and
  per class (its minimum and that class too).

    python scripts/judge_run.py outputs/<date>/<time>              # the run's checkpoints/last.ckpt
    python scripts/judge_run.py src/artdirector/zoo/cgan.ckpt --n 1000 --seed 0
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import torch

from artdirector.creators import Creator, load_creator
from artdirector.errors import InputError, report_user_errors
from artdirector.evaluation.judge import Judge, load_judge
from artdirector.io import atomic_write


def checkpoint_of(path: Path) -> Path:
    """A checkpoint file as given, or a run directory's ``checkpoints/last.ckpt``."""
    if path.is_dir():
        last = path / "checkpoints" / "last.ckpt"
        if not last.is_file():
            raise InputError(f"{path} has no checkpoints/last.ckpt: give a run directory or a .ckpt file")
        return last
    if not path.is_file():
        raise InputError(f"{path} does not exist: give a run directory or a .ckpt file")
    return path


def judge_creator(
    creator: Creator, judge: Judge, n: int = 1000, seed: int = 0, threshold: float = 0.8
) -> dict[str, Any]:
    """The judge's reading of ``n`` samples of ``creator`` (seed ``seed``); see the module's docstring."""
    if n < 1:
        raise InputError(f"--n must be at least 1, got {n}")
    drawn = creator.sample(n, seed=seed)
    probs = judge.logits(drawn.images).softmax(dim=1)
    top, pred = probs.max(dim=1)
    counts = torch.bincount(pred, minlength=judge.num_classes)
    share = counts[counts > 0].double() / n
    out: dict[str, Any] = {
        "judge": judge.identity,
        "n": n,
        "seed": seed,
        "confidence": float(top.mean()),
        "confident_share": float((top >= threshold).float().mean()),
        "threshold": threshold,
        "read_as": counts.tolist(),
        "read_as_entropy": float((share * share.log()).sum().neg() / math.log(judge.num_classes)) + 0.0,
    }
    if drawn.labels is not None:
        conf = judge.conformance_per_class(drawn.images, drawn.labels, pred=pred)
        out["conformance"] = conf["overall"]
        out["conformance_min"] = conf["min"]
        out["conformance_min_class"] = conf["min_class"]
        out["conformance_per_class"] = conf["per_class"]
    return out


@report_user_errors
def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("path", type=Path, help="a run directory (its checkpoints/last.ckpt) or a creator .ckpt")
    p.add_argument("--dataset", default="mnist", choices=["mnist", "fashion_mnist"], help="whose judge")
    p.add_argument("--n", type=int, default=1000, help="samples to judge")
    p.add_argument("--seed", type=int, default=0, help="seed of the samples' latents")
    p.add_argument("--threshold", type=float, default=0.8, help="confidence counted in confident_share")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = p.parse_args(argv)
    ckpt = checkpoint_of(args.path)
    torch.manual_seed(args.seed)
    result = {
        "checkpoint": str(ckpt),
        **judge_creator(load_creator(ckpt), load_judge(args.dataset), args.n, args.seed, args.threshold),
    }
    text = json.dumps(result)
    if args.out is not None:
        atomic_write(args.out, lambda tmp: tmp.write_text(text + "\n"))
    print(text)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
