"""``python scripts/evaluate.py ckpt=PATH``: metrics of a generator checkpoint, written beside it as JSON.

Besides FID & co., the JSON's ``copy_rate`` says whether the samples are copies of training images
(:mod:`artdirector.evaluation.copying`): the share of samples nearer to a training image than the 1st
percentile of held-out (report split) real images are, with its uncertainty, threshold, the number of
training images searched, and a PNG grid of the closest sample/train pairs beside the checkpoint.
"""

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

from artdirector.creators import ADAPTERS, wrap
from artdirector.errors import ConfigError, at_least, check_settings, report_user_errors
from artdirector.evaluation import Evaluator
from artdirector.evaluation.copying import copy_check
from artdirector.io import file_sha256, write_json
from artdirector.models.checkpoint import CheckpointError, checkpoint_kind, module_class, read_checkpoint
from artdirector.runtime import CONFIG_DIR, resolve_device, versions

log = logging.getLogger(__name__)


def metrics_path(ckpt: Path, evaluator: str, n: int) -> Path:
    return ckpt.with_name(f"{ckpt.stem}.{evaluator}-{n}.metrics.json")


def copies_path(ckpt: Path, evaluator: str, n: int) -> Path:
    return ckpt.with_name(f"{ckpt.stem}.{evaluator}-{n}.copies.png")


@torch.no_grad()
def generate(creator, n: int, seed: int) -> tuple:
    """``n`` images of any creator drawn with ``seed`` (private generators: the global RNG is untouched; a
    GAN's latents are one N(0, I) draw of n, as ever); a conditional creator draws the classes in turn.
    Returns (images, the labels asked for, seconds)."""
    from artdirector.models.base import balanced_labels

    labels = balanced_labels(n, creator.num_classes) if creator.num_classes else None
    t0 = time.perf_counter()
    images = creator.sample(n, labels, seed=seed).images
    if creator.device.type == "cuda":
        torch.cuda.synchronize(creator.device)
    return images, labels, time.perf_counter() - t0


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    start = time.perf_counter()
    check_settings(
        cfg,
        {
            "n_samples": (at_least(2), "an integer >= 2 (FID needs two samples)"),
            "n_real": (at_least(2), "an integer >= 2"),
            "copying.quantile": (lambda q: 0 < q < 1, "a number in (0, 1)"),
            "copying.k_pairs": (at_least(1), "an integer >= 1"),
        },
    )
    device = resolve_device(cfg.device)
    ckpt_path = Path(cfg.ckpt).expanduser().resolve()
    ckpt = read_checkpoint(ckpt_path)
    kind = checkpoint_kind(ckpt)
    if kind not in ADAPTERS:
        raise CheckpointError(
            f"{ckpt_path} holds a '{kind}' model, not a creator; pass a checkpoint from "
            "`python scripts/train.py model=dcgan` (or cdcgan, ddpm, dit)"
        )
    creator = wrap(module_class(kind).from_loaded(ckpt, ckpt_path, map_location=device), ckpt_path)
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
    images, labels, seconds = generate(creator, cfg.n_samples, cfg.seed)
    report = evaluator.evaluate(images, progress=True)
    conformance = None
    if labels is not None and report.labels is not None:  # the share drawn as the class they were asked to be
        hit = report.labels.cpu() == labels
        conformance = {
            "overall": float(hit.float().mean()),
            "per_class": {str(c): float(hit[labels == c].float().mean()) for c in labels.unique().tolist()},
        }
    copying = None
    if cfg.copying.enabled:
        if cfg.copying.n_train is not None and not (
            isinstance(cfg.copying.n_train, int) and cfg.copying.n_train >= 1
        ):
            raise ConfigError(
                f"copying.n_train={cfg.copying.n_train} is not allowed: it must be null (all) or >= 1"
            )
        copying = copy_check(
            evaluator,
            datamodule,
            images,
            report.features,
            copies_path(ckpt_path, evaluator.name, report.n_fake),
            n_train=cfg.copying.n_train,
            quantile=cfg.copying.quantile,
            k_pairs=cfg.copying.k_pairs,
            seed=cfg.seed,
            progress=True,
        )
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
        "copy_rate": copying,
        "creator": creator.describe(),
        "conformance": conformance,
        "seconds_per_image": seconds / len(images),
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
    if copying is not None:
        log.info(
            "copy rate %.2f%% +- %.2f%% (%d samples against %d training images, threshold %.4g) -> %s",
            100 * copying["copy_rate"],
            100 * copying["se"],
            copying["n_samples"],
            copying["n_train"],
            copying["threshold"],
            copying["pairs_grid"],
        )
    return result


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="evaluate")
@report_user_errors
def main(cfg: DictConfig) -> float:
    return evaluate(cfg)["metrics"]["fid"]
