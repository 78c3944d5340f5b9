"""The data card: what the Data Agent finds in a data set before any model sees it.

:func:`build_card` inspects a data module's three splits (train / selection / report, as the module
serves them) and returns a JSON-ready dict:

- ``n_images`` (readable), ``has_labels``, ``n_per_class`` (overall and per split) and ``class_imbalance``
  (the largest class count over the smallest);
- ``corrupt_files``: files an image folder could not decode (skipped, never a crash);
- ``exact_duplicates``: groups of images with identical pixels (a SHA-256 of each image's uint8 bytes at the
  training resolution), with their file paths for an image folder, and whether a group crosses splits (a
  training image that is also a report image inflates every score);
- ``near_duplicates``: pairs closer than ``near_ratio`` times the median nearest-neighbour distance in the
  evaluator's feature space (the absolute threshold is recorded), with a PNG grid of the closest pairs;
- pixel mean/std per channel on the train split, in [0, 1] units (the usual normalisation constants);
- ``source_resolutions``: the files' own sizes for an image folder, the stored size otherwise;
- ``splits``: each split's n and content hash (``split_info()``);
- ``fid_floor``: the real-vs-real FID at the report split's n (draws from the train split against the
  report split, mean and sd over the draws, each draw's FID; :meth:`Evaluator.floor_features`), so that
  every later FID can stand beside the number no generator can be expected to beat at that n.

:func:`load_or_build_card` is the entry point for training and the director: it returns the cached card
when its key (the card version, the data set, every split's content hash, the skipped files, the feature
network and the settings) still matches, and rebuilds it when anything changed. The checks are in
:mod:`artdirector.data.card_checks`, the floor in :mod:`artdirector.data.card_floor`, and the card's files
(``card_markdown`` renders a card as a Markdown section for reports) in :mod:`artdirector.data.card_files`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path
from typing import Any

import torch

from artdirector.data.card_checks import (
    class_counts,
    exact_duplicates,
    image_sources,
    near_duplicates,
    pixel_hashes,
    pixel_statistics,
    to_uint8,
)
from artdirector.data.card_files import CARD_JSON, write_card, write_near_grid
from artdirector.data.card_floor import card_floor
from artdirector.data.datamodules import SPLITS
from artdirector.evaluation.floor import FLOOR_DRAWS

log = logging.getLogger(__name__)

CARD_VERSION = 2  # a cached card of another version is rebuilt


def _feature_net_usable(evaluator, images: torch.Tensor) -> str | None:
    """None if the evaluator can extract features of these images, else why not."""
    if evaluator is None:
        return "no evaluator given"
    try:
        evaluator.features(images[:2])
    except ValueError as err:
        return f"{evaluator.identity} cannot read these images ({err})"
    return None


def card_key(datamodule, evaluator=None, **settings: Any) -> str:
    """What a card depends on, hashed: its version, the data set, each split's n and content hash, the
    skipped files, the feature network and the settings. A different key: a stale card."""
    blob = {
        "card_version": CARD_VERSION,
        "dataset": datamodule.describe(),
        "splits": datamodule.split_info(),
        "corrupt_files": list(getattr(datamodule, "corrupt_files", [])),
        "feature_net": evaluator.identity if evaluator is not None else None,
        "settings": settings,
    }
    return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()[:16]


@torch.no_grad()
def build_card(
    datamodule,
    evaluator=None,
    out_dir: str | Path | None = None,
    near_ratio: float = 0.2,
    near_k: int = 16,
    max_listed: int = 100,
    grid_pairs: int = 16,
    floor_draws: int = FLOOR_DRAWS,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """Inspect ``datamodule`` and return its card (see the module docstring); the near-duplicate grid is
    written to ``out_dir/near_duplicates.png`` when ``out_dir`` is given. ``evaluator`` supplies the
    feature space (near duplicates, the FID floor); without one, or when its network cannot read the
    images, near duplicates are found in pixel space and the floor is skipped, with the reason recorded."""
    if not 0 < near_ratio < 1:
        raise ValueError(f"near_ratio must be in (0, 1), got {near_ratio}")
    datamodule.prepare_data()
    datamodule.setup("fit")
    splits = datamodule.split_info()
    images = {s: datamodule.real_images(s) for s in SPLITS}
    labels = {s: datamodule.real_labels(s) for s in SPLITS}
    offsets, start = {}, 0
    for s in SPLITS:
        offsets[s], start = start, start + images[s].shape[0]
    every = torch.cat([images[s] for s in SPLITS])
    member = [f"{s}[{i}]" for s in SPLITS for i in range(images[s].shape[0])]
    split_of = [s for s in SPLITS for _ in range(images[s].shape[0])]
    hashes = pixel_hashes(to_uint8(every))

    paths_by_hash, source_resolutions, resolution_note = image_sources(datamodule, every)
    labelled, warnings = class_counts(datamodule, labels)
    exact, more = exact_duplicates(hashes, member, split_of, paths_by_hash)
    warnings += more

    # features: the evaluator's (cached per split) or pixels
    reason = _feature_net_usable(evaluator, every)
    if reason is None:
        feats = torch.cat([evaluator.split_features(datamodule, s, progress=progress)[0] for s in SPLITS])
        space = evaluator.identity
    else:
        feats = every.flatten(1)
        space = "pixels in [-1, 1]"
        warnings.append(f"near duplicates in pixel space, no FID floor: {reason}")
    near, pairs = near_duplicates(
        feats, space, hashes, member, split_of, paths_by_hash, near_ratio, near_k, max_listed
    )
    if out_dir is not None and pairs:
        near["grid"] = write_near_grid(every, pairs[:grid_pairs], out_dir)

    floor, more = card_floor(
        evaluator, feats, offsets, splits, datamodule.describe(), reason, draws=floor_draws, seed=seed
    )
    warnings += more

    n_images = int(every.shape[0])
    corrupt = list(getattr(datamodule, "corrupt_files", []))
    return {
        "card_version": CARD_VERSION,
        "dataset": datamodule.describe(),
        "image_shape": list(every.shape[1:]),
        "n_images": n_images,
        "n_images_note": "readable images in the three splits as the data module serves them"
        + (f" (limit_train={datamodule.limit_train})" if getattr(datamodule, "limit_train", None) else ""),
        **labelled,
        "corrupt_files": corrupt,
        "n_corrupt": len(corrupt),
        "exact_duplicates": exact,
        "near_duplicates": near,
        "pixel": pixel_statistics(images["train"]),
        "source_resolutions": source_resolutions,
        "source_resolutions_note": resolution_note,
        "splits": splits,
        "fid_floor": floor,
        "warnings": warnings,
    }


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")[:60] or "data"


def load_or_build_card(
    datamodule,
    cache_dir: str | Path,
    evaluator=None,
    rebuild: bool = False,
    progress: bool = False,
    **settings: Any,
) -> dict[str, Any]:
    """The data card of ``datamodule``, from ``cache_dir`` when it is fresh, else built and cached.

    For training and the director, before they use the data::

        card = load_or_build_card(datamodule, cfg.paths.cache_dir + "/data_card", evaluator)
        if not card["has_labels"]: ...            # no conditional creators
        floor = card["fid_floor"]                 # stands beside every FID at n = floor["n"]

    Fresh means the key of :func:`card_key` (the card version, the data set, each split's n and content
    hash, the skipped files, the evaluator's feature network and ``settings``) matches the cached card's:
    a changed, added or removed image changes a split hash, and so rebuilds the card. The card lives in
    ``cache_dir/<data set>_<key>/`` (``data_card.json``, ``data_card.md``, ``near_duplicates.png``);
    cards of the same data set with another key are removed. ``settings`` go to :func:`build_card`
    (``near_ratio``, ``near_k``, ``max_listed``, ``grid_pairs``, ``floor_draws``, ``seed``). The returned
    dict has ``card_dir`` (where its files are) and ``from_cache`` added.
    """
    datamodule.prepare_data()
    datamodule.setup("fit")
    key = card_key(datamodule, evaluator, **settings)
    slug = _slug(datamodule.describe())
    root = Path(cache_dir)
    card_dir = root / f"{slug}_{key}"
    path = card_dir / CARD_JSON
    if path.is_file() and not rebuild:
        try:
            card = json.loads(path.read_text())
            if card.get("key") == key:
                log.info("data card of %s from the cache %s", datamodule.describe(), path)
                return {**card, "card_dir": str(card_dir), "from_cache": True}
        except (OSError, ValueError) as err:
            log.warning("data card %s is unusable (%s); rebuilding it", path, err)
    log.info("building the data card of %s", datamodule.describe())
    card = {"key": key, **build_card(datamodule, evaluator, out_dir=card_dir, progress=progress, **settings)}
    write_card(card, card_dir)
    if root.is_dir():  # stale cards of the same data set
        for old in root.glob(f"{slug}_*"):
            if (
                old.is_dir()
                and old != card_dir
                and re.fullmatch(rf"{re.escape(slug)}_[0-9a-f]{{16}}", old.name)
            ):
                for f in old.iterdir():
                    f.unlink(missing_ok=True)
                old.rmdir()
    return {**card, "card_dir": str(card_dir), "from_cache": False}
