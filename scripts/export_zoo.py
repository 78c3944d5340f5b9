"""Export a trained checkpoint as a compact zoo model: weights in fp16, no optimiser state.

A diffusion model ships its EMA weights as its backbone (``ema_decay`` set to 0 in the shipped
hyperparameters, so nothing averages them again); a GAN ships G and D (the refinement actions need D).
The recipe travels with it: the run's ``.hydra/config.yaml`` and ``overrides.yaml`` when they sit beside the
run, the epoch and step, and the source checkpoint's SHA-256. ``--hp KEY=VALUE`` sets a hyperparameter of
the shipped model (a sampling option such as ``sampling_precision=bf16``), recorded in its ``zoo`` block.

    python scripts/export_zoo.py outputs/<date>/<time>/checkpoints/last.ckpt --name ddpm --out src/artdirector/zoo
"""

from __future__ import annotations

import argparse
import inspect
from pathlib import Path

import torch
import yaml

from artdirector.errors import ConfigError, report_user_errors
from artdirector.io import file_sha256, write_json
from artdirector.models.checkpoint import KIND_KEY, checkpoint_kind, module_class, read_checkpoint


def export(ckpt_path: Path, name: str, out: Path, hp_overrides: dict | None = None) -> Path:
    ckpt = read_checkpoint(ckpt_path)
    hp = dict(ckpt["hyper_parameters"])
    # what the model's constructor takes (a checkpoint written before an option existed lacks it)
    known = set(hp) | set(inspect.signature(module_class(checkpoint_kind(ckpt))).parameters) - {"self"}
    unknown = sorted(set(hp_overrides or {}) - known)
    if unknown:
        raise ConfigError(
            f"--hp {', '.join(unknown)}: not a hyperparameter of {ckpt_path}; it takes {', '.join(sorted(known))}"
        )
    hp.update(hp_overrides or {})
    state = ckpt["state_dict"]
    if ckpt.get(KIND_KEY) == "diffusion" and any(k.startswith("ema.module.") for k in state):
        state = {
            "backbone." + k[len("ema.module.") :]: v for k, v in state.items() if k.startswith("ema.module.")
        }
        hp["ema_decay"] = 0.0
    state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    run = ckpt_path.parent.parent
    recipe = {}
    for f in ("config.yaml", "overrides.yaml"):
        p = run / ".hydra" / f
        if p.is_file():
            recipe[f.split(".")[0]] = yaml.safe_load(p.read_text())
    slim = {
        KIND_KEY: ckpt.get(KIND_KEY),
        "hyper_parameters": hp,
        "state_dict": state,
        "epoch": ckpt.get("epoch"),
        "global_step": ckpt.get("global_step"),
        "pytorch-lightning_version": ckpt.get("pytorch-lightning_version"),
        "zoo": {
            "name": name,
            "source": str(ckpt_path),
            "source_sha256": file_sha256(ckpt_path),
            "recipe": recipe,
            "hyper_parameters_set": dict(hp_overrides or {}),
        },
    }
    out.mkdir(parents=True, exist_ok=True)
    dest = out / f"{name}.ckpt"
    tmp = dest.with_suffix(".tmp")
    torch.save(slim, tmp)
    tmp.replace(dest)
    write_json(
        out / f"{name}.export.json",
        {
            "name": name,
            "sha256": file_sha256(dest),
            **slim["zoo"],
            "epoch": slim["epoch"],
            "global_step": slim["global_step"],
        },
    )
    return dest


def parse_hp(items: list[str]) -> dict:
    """``KEY=VALUE`` pairs, each value read as YAML (``bf16``, ``25``, ``2.0``, ``null``)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--hp {item!r} must be KEY=VALUE, e.g. --hp sampling_precision=bf16")
        out[key] = yaml.safe_load(value)
    return out


@report_user_errors
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ckpt", type=Path)
    p.add_argument("--name", required=True)
    p.add_argument("--out", type=Path, default=Path("src/artdirector/zoo"))
    p.add_argument(
        "--hp",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="hyperparameters the shipped model uses instead of the run's (e.g. sampling_precision=bf16)",
    )
    args = p.parse_args()
    dest = export(args.ckpt, args.name, args.out, parse_hp(args.hp))
    print(f"{dest}: {dest.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
