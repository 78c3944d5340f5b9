"""The Data Agent's part in a run (training or directing): the data card before anything trains or draws (the full
card, cached by content, or a quick one), what run.json and traces keep of it, and the decisions a run takes
from it: a class-conditional model needs labelled data, and ``model.diffaugment=auto`` is decided from the
train split's size."""

from __future__ import annotations

import logging
import random
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from artdirector.data.card import CARD_VERSION, load_or_build_card
from artdirector.data.card_checks import datamodule_has_labels
from artdirector.errors import ConfigError, at_least, check_settings
from artdirector.runtime import resolve_device

log = logging.getLogger(__name__)


def quick_card(datamodule) -> dict[str, Any]:
    """The part of the data card that costs no feature pass (``prepare_mode=quick``, as ``debug=fdr``
    sets): the splits' n and content hash, the labels and the image shape. Exact and near duplicates and the
    FID floor are skipped, and the card says so; ``python scripts/prepare.py`` builds the full card."""
    datamodule.prepare_data()
    datamodule.setup("fit")
    splits = datamodule.split_info()
    has_labels = datamodule_has_labels(datamodule)
    classes = list(getattr(datamodule, "classes", None) or [])
    n_classes = len(classes) if classes else None
    if has_labels and n_classes is None:
        labels = torch.cat([datamodule.real_labels(s) for s in splits])
        n_classes = int(labels.max()) + 1 if labels.numel() else 0
    skipped = (
        "prepare_mode=quick (debug=fdr): exact and near duplicates and the FID floor were not computed; "
        "python scripts/prepare.py builds the full card"
    )
    return {
        "card_version": CARD_VERSION,
        "mode": "quick",
        "dataset": datamodule.describe(),
        "image_shape": list(datamodule.real_images("train", 1).shape[1:]),
        "n_images": sum(v["n"] for v in splits.values()),
        "has_labels": has_labels,
        "n_classes": n_classes,
        "corrupt_files": list(getattr(datamodule, "corrupt_files", [])),
        "splits": splits,
        "fid_floor": {"skipped": skipped},
        "skipped": skipped,
        "warnings": [skipped],
        "from_cache": False,
        "card_dir": None,
    }


def run_data_agent(cfg: DictConfig, datamodule, evaluator=None) -> dict[str, Any] | None:
    """The data card of ``datamodule`` before training or directing (``cfg.prepare``; None when off):
    the full card from ``load_or_build_card`` (cached by content, so cheap when fresh; the same key as
    ``scripts/prepare.py`` with the same ``card`` settings), or :func:`quick_card` with
    ``prepare_mode=quick``. Torch's, Python's and NumPy's RNG states are left exactly as they were, so a
    seeded run draws the same numbers with the card as without it."""
    if not cfg.get("prepare", False):
        return None
    mode = cfg.get("prepare_mode", "full")
    if mode not in ("full", "quick"):
        raise ConfigError(f"prepare_mode must be full or quick, got {mode!r}")
    py_state, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        if mode == "quick":
            card = quick_card(datamodule)
        else:
            check_settings(
                cfg,
                {
                    "card.near_ratio": (lambda r: 0 < r < 1, "a number in (0, 1)"),
                    "card.near_k": (at_least(1), "an integer >= 1"),
                    "card.floor_draws": (at_least(1), "an integer >= 1"),
                },
            )
            if evaluator is None:
                evaluator = instantiate(cfg.evaluator).to(resolve_device(cfg.get("device", "auto")))
            settings = OmegaConf.to_container(cfg.card, resolve=True)
            card = load_or_build_card(datamodule, cfg.card_dir, evaluator, **settings)
            card["mode"] = "full"
    random.setstate(py_state)
    np.random.set_state(np_state)
    floor = card["fid_floor"]
    log.info(
        "data card (%s%s): %s, n train/selection/report %s, labels: %s, FID floor %s",
        card["mode"],
        ", cached" if card["from_cache"] else "",
        card["dataset"],
        "/".join(str(v["n"]) for v in card["splits"].values()),
        "yes" if card["has_labels"] else "no",
        f"{floor['mean']:.3g} ± {floor['sd']:.2g} at n={floor['n']}" if "mean" in floor else "skipped",
    )
    for w in card.get("warnings", []):
        log.warning("data card: %s", w)
    return card


def card_summary(card: dict[str, Any] | None) -> dict[str, Any] | None:
    """What run.json and the director's trace keep of a card: n per split, labels, the floor, warnings."""
    if card is None:
        return None
    return {
        "mode": card.get("mode", "full"),
        "dataset": card["dataset"],
        "n_per_split": {s: v["n"] for s, v in card["splits"].items()},
        "split_sha256": {s: v["sha256"] for s, v in card["splits"].items()},
        "has_labels": card["has_labels"],
        "fid_floor": card["fid_floor"],
        "warnings": list(card.get("warnings", [])),
        "card_dir": card.get("card_dir"),
        "from_cache": card.get("from_cache"),
    }


def _card_classes(card: dict[str, Any]) -> int | None:
    if card.get("n_per_class"):
        return len(card["n_per_class"])
    return card.get("n_classes")


def check_conditional(model_classes: int, card: dict[str, Any] | None, model_name: str) -> None:
    """A class-conditional model needs labelled data with no more classes than it embeds."""
    if not model_classes or card is None:
        return
    if not card["has_labels"]:
        raise ConfigError(
            f"{model_name} is class-conditional ({model_classes} classes) but {card['dataset']} has no "
            "labels (a flat image folder): put the images in one subfolder per class, or train an "
            "unconditional model (model=dcgan)"
        )
    n_classes = _card_classes(card)
    if n_classes and n_classes > model_classes:
        raise ConfigError(
            f"{model_name} embeds {model_classes} classes but {card['dataset']} has {n_classes}: set "
            f"model.generator.num_classes and model.discriminator.num_classes to {n_classes}"
        )


def decide_diffaugment(cfg: DictConfig, card: dict[str, Any] | None) -> dict[str, Any] | None:
    """``model.diffaugment``: a policy as given, or ``auto``: on (``diffaugment_policy``) when the data
    card's train split has fewer than ``diffaugment_below`` images, off otherwise; with the reason.
    None for models without the option."""
    setting = cfg.model.get("diffaugment")
    if setting is None:
        return None
    if setting != "auto":
        policy = str(setting)
        return {
            "setting": setting,
            "policy": policy,
            "on": bool(policy),
            "reason": f"model.diffaugment={policy!r} in the config" if policy else "off in the config",
        }
    policy = str(cfg.get("diffaugment_policy", "color,translation,cutout"))
    below = cfg.get("diffaugment_below")
    if card is None:
        return {
            "setting": "auto",
            "policy": "",
            "on": False,
            "reason": "auto without a data card (prepare=false): off",
        }
    if below is None or not isinstance(below, int) or below < 0:
        raise ConfigError(f"diffaugment_below must be an integer >= 0 (images), got {below!r}")
    n = int(card["splits"]["train"]["n"])
    on = n < below
    return {
        "setting": "auto",
        "policy": policy if on else "",
        "on": on,
        "train_images": n,
        "threshold": below,
        "reason": (
            f"the train split has {n:,} images, fewer than diffaugment_below={below:,}: DiffAugment "
            f"{policy} on real and fake images before D (Zhao et al. 2020)"
            if on
            else f"the train split has {n:,} images, at least diffaugment_below={below:,}: DiffAugment off"
        ),
    }
