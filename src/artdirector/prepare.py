"""The Data Agent: ``python scripts/prepare.py data=<any data config>``.

Looks at the data before any model does and writes its card (:mod:`artdirector.data.card`):
``data_card.json`` and ``data_card.md`` (a section for reports) into the run directory, with the grid of
the closest near-duplicate pairs, and a cached copy under ``card_dir`` (``${paths.cache_dir}/data_card``)
that :func:`artdirector.data.card.load_or_build_card` reuses while the data's content is unchanged.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from artdirector.data.card import load_or_build_card
from artdirector.data.card_files import CARD_JSON, CARD_MD, NEAR_GRID
from artdirector.errors import at_least, check_settings, report_user_errors
from artdirector.io import atomic_write, write_json
from artdirector.runtime import CONFIG_DIR, resolve_device, versions

log = logging.getLogger(__name__)


def prepare(cfg: DictConfig) -> dict[str, Any]:
    start = time.perf_counter()
    check_settings(
        cfg,
        {
            "card.near_ratio": (lambda r: 0 < r < 1, "a number in (0, 1)"),
            "card.near_k": (at_least(1), "an integer >= 1"),
            "card.max_listed": (at_least(0), "an integer >= 0"),
            "card.grid_pairs": (at_least(1), "an integer >= 1"),
            "card.floor_draws": (at_least(1), "an integer >= 1"),
        },
    )
    device = resolve_device(cfg.device)
    datamodule = instantiate(cfg.data)
    evaluator = instantiate(cfg.evaluator).to(device)
    settings = OmegaConf.to_container(cfg.card, resolve=True)
    card = load_or_build_card(
        datamodule, cfg.card_dir, evaluator, rebuild=cfg.rebuild, progress=True, **settings
    )
    cached = Path(card.pop("card_dir"))
    from_cache = card.pop("from_cache")
    out = Path(cfg.paths.output_dir)
    write_json(out / CARD_JSON, card)
    atomic_write(out / CARD_MD, lambda p: shutil.copyfile(cached / CARD_MD, p))
    if (cached / NEAR_GRID).is_file():
        atomic_write(out / NEAR_GRID, lambda p: shutil.copyfile(cached / NEAR_GRID, p))
    write_json(
        out / "prepare.json",
        {
            "card": str(out / CARD_JSON),
            "cached_card": str(cached / CARD_JSON),
            "from_cache": from_cache,
            "wall_time_s": round(time.perf_counter() - start, 2),
            "device": str(device),
            "versions": versions(),
        },
    )
    ex, near, floor = card["exact_duplicates"], card["near_duplicates"], card["fid_floor"]
    log.info(
        "%s: %d images, %d unreadable, %d exact-duplicate groups, %d near-duplicate pairs, FID floor %s%s -> %s",
        card["dataset"],
        card["n_images"],
        card["n_corrupt"],
        ex["n_groups"],
        near["n_pairs"],
        f"{floor['mean']:.3f} +- {floor['sd']:.3f} at n={floor['n']}" if "mean" in floor else "skipped",
        " (cached card)" if from_cache else "",
        out / CARD_JSON,
    )
    for w in card["warnings"]:
        log.warning("data card: %s", w)
    return card


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="prepare")
@report_user_errors
def main(cfg: DictConfig) -> None:
    prepare(cfg)
