"""Export a trained judge (``experiment=judge_<dataset>``) as the shipped ``weights/judge_<dataset>.pt``.

Takes the checkpoint chosen on the selection split (``best.ckpt``: the best val/acc), measures its accuracy
overall and per class on the selection and the report (test) split, and writes the net's state dict, its
config and those numbers (plain tensors, numbers and strings: loadable with ``weights_only=True``); then
prints the numbers and the file's SHA-256.

    python scripts/export_judge.py /work/runs/judge_mnist/checkpoints/best.ckpt --dataset mnist
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import yaml

from artdirector.data import TorchvisionDataModule
from artdirector.errors import ConfigError, report_user_errors
from artdirector.evaluation.features import WEIGHTS_DIR
from artdirector.io import atomic_write, file_sha256
from artdirector.models.checkpoint import load_module


@torch.no_grad()
def accuracy(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, classes: int) -> dict:
    pred = torch.cat([net(c).argmax(1) for c in x.split(1000)])
    hit = pred == y
    return {
        "acc": float(hit.float().mean()),
        "per_class": [float(hit[y == c].float().mean()) for c in range(classes)],
        "n_per_class": [int((y == c).sum()) for c in range(classes)],
        "n": len(y),
    }


def max_epochs(ckpt: Path) -> int | None:
    """The run's trainer.max_epochs, from the Hydra config beside its checkpoints/ folder (if there)."""
    config = ckpt.resolve().parent.parent / ".hydra" / "config.yaml"
    if not config.is_file():
        return None
    return (yaml.safe_load(config.read_text()).get("trainer") or {}).get("max_epochs")


@report_user_errors
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ckpt", type=Path, help="the run's checkpoints/best.ckpt")
    p.add_argument("--dataset", required=True, choices=["mnist", "fashion_mnist"])
    p.add_argument("--data-root", default="data")
    p.add_argument("--out", type=Path, default=None, help="default: artdirector/weights/judge_<dataset>.pt")
    p.add_argument("--train-seconds", type=float, default=None, help="the run's wall time, to record")
    args = p.parse_args()
    module = load_module(args.ckpt, kinds=["classifier"])
    spec = dict(module.hparams["net"])
    if not str(spec.get("_target_", "")).endswith("JudgeNet"):
        raise ConfigError(
            f"{args.ckpt} holds a {spec.get('_target_')}, not a JudgeNet: train experiment=judge_*"
        )
    net = module.net.float().eval()
    dm = TorchvisionDataModule(args.dataset, root=args.data_root, fallback_to_bundled=False)
    classes = net.head.out_features
    sel = accuracy(net, dm.real_images("selection"), dm.real_labels("selection"), classes)
    rep = accuracy(net, dm.real_images("report"), dm.real_labels("report"), classes)
    ckpt = torch.load(args.ckpt, map_location="cpu", weights_only=True)
    payload = {
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()},
        "net": spec,
        "dataset": args.dataset,
        "selection_acc": sel["acc"],
        "selection_acc_per_class": sel["per_class"],
        "report_acc": rep["acc"],
        "report_acc_per_class": rep["per_class"],
        "report_n_per_class": rep["n_per_class"],
        "selected_epoch": ckpt["epoch"] + 1,  # Lightning counts epochs from 0
        "epochs": max_epochs(args.ckpt),
        "global_step": ckpt.get("global_step"),
        "train_seconds": args.train_seconds,
        "recipe": f"python scripts/train.py experiment=judge_{args.dataset}; "
        f"python scripts/export_judge.py <run dir>/checkpoints/best.ckpt --dataset {args.dataset}",
        "source_sha256": file_sha256(args.ckpt),
    }
    out = args.out or WEIGHTS_DIR / f"judge_{args.dataset}.pt"
    atomic_write(out, lambda path: torch.save(payload, path))
    print(
        json.dumps(
            {
                "out": str(out),
                "sha256": file_sha256(out),
                "bytes": out.stat().st_size,
                "selected_epoch": payload["selected_epoch"],
                "epochs": payload["epochs"],
                "selection": sel,
                "report": rep,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
