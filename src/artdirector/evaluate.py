"""``python scripts/evaluate.py ckpt=PATH``: metrics of a generator checkpoint, written beside it as JSON."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from artdirector.errors import at_least, check_settings, report_user_errors
from artdirector.evaluation import Evaluator
from artdirector.io import file_sha256, write_json
from artdirector.models.checkpoint import read_checkpoint
from artdirector.models.gan import GANModule
from artdirector.runtime import CONFIG_DIR, resolve_device, versions

log = logging.getLogger(__name__)


def metrics_path(ckpt: Path, evaluator: str, n: int) -> Path:
    return ckpt.with_name(f"{ckpt.stem}.{evaluator}-{n}.metrics.json")


@torch.no_grad()
def generate(
    model: GANModule, n: int, seed: int, batch_size: int = 500, progress: bool = False
) -> torch.Tensor:
    """``n`` images from latents drawn with ``seed`` (a private generator: the global RNG is untouched)."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    z = torch.randn(n, model.latent_dim, generator=gen)
    chunks = z.split(batch_size)
    if progress:
        from rich.progress import track

        chunks = track(chunks, description=f"sampling {n} images")
    return torch.cat([model.sample(z=c).cpu() for c in chunks])


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    start = time.perf_counter()
    check_settings(
        cfg,
        {
            "n_samples": (at_least(2), "an integer >= 2 (FID needs two samples)"),
            "n_real": (at_least(2), "an integer >= 2"),
        },
    )
    device = resolve_device(cfg.device)
    ckpt_path = Path(cfg.ckpt).expanduser().resolve()
    ckpt = read_checkpoint(ckpt_path)
    model = GANModule.from_loaded(ckpt, ckpt_path, map_location=device)
    trained_on = (ckpt.get("datamodule_hyper_parameters") or {}).get("data_used")
    evaluator: Evaluator = instantiate(cfg.evaluator).to(device)
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    if trained_on and trained_on != datamodule.describe():
        log.warning(
            "the checkpoint was trained on %r but is evaluated against %r", trained_on, datamodule.describe()
        )
    evaluator.set_reference_from(datamodule, cfg.split, cfg.n_real, progress=True)
    images = generate(model, cfg.n_samples, cfg.seed, progress=True)
    report = evaluator.evaluate(images, progress=True)
    result = {
        "checkpoint": str(ckpt_path),
        "checkpoint_sha256": file_sha256(ckpt_path),
        "epoch": ckpt.get("epoch"),
        "global_step": ckpt.get("global_step"),
        "trained_on": trained_on,
        "metrics": {
            "fid": report.fid,
            "fid_se": report.fid_se,
            "kid": report.kid,
            "kid_std": report.kid_std,
            "precision": report.precision,
            "recall": report.recall,
            "mean_realism": float(report.realism.mean()),
            "mean_confidence": float(report.confidence.mean()) if report.confidence is not None else None,
        },
        "n_samples": report.n_fake,
        "n_real": report.n_real,
        "reference": evaluator.reference_key,
        "evaluator": evaluator.name,
        "feature_network": evaluator.identity,
        "seed": cfg.seed,
        "device": str(device),
        "wall_time_s": round(time.perf_counter() - start, 2),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": versions(),
    }
    out = write_json(metrics_path(ckpt_path, evaluator.name, report.n_fake), result)
    log.info(
        "FID %.3f  KID %.5f  precision %.3f  recall %.3f  -> %s",
        report.fid,
        report.kid,
        report.precision,
        report.recall,
        out,
    )
    return result


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="evaluate")
@report_user_errors
def main(cfg: DictConfig) -> float:
    return evaluate(cfg)["metrics"]["fid"]
