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
network and the settings) still matches, and rebuilds it when anything changed. :func:`card_markdown`
renders a card as a Markdown section for reports.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import re
from pathlib import Path
from typing import Any

import torch

from artdirector.data.datamodules import SPLITS
from artdirector.evaluation.copying import save_pairs_grid
from artdirector.evaluation.evaluator import FLOOR_DRAWS
from artdirector.io import write_json, write_text

log = logging.getLogger(__name__)

CARD_VERSION = 2  # a cached card of another version is rebuilt
CARD_JSON, CARD_MD, NEAR_GRID = "data_card.json", "data_card.md", "near_duplicates.png"


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] back to the uint8 pixels they were made from (as ``split_info`` hashes them)."""
    return images.mul(127.5).add(127.5).round().clamp(0, 255).to(torch.uint8)


def pixel_hashes(images_uint8: torch.Tensor) -> list[str]:
    """A SHA-256 (first 16 hex digits) of each image's bytes: equal hashes, identical pixels."""
    return [hashlib.sha256(x.contiguous().numpy().tobytes()).hexdigest()[:16] for x in images_uint8]


def exact_duplicate_groups(hashes: list[str]) -> list[list[int]]:
    """Indices that share a hash, one list per group of two or more, in order of first appearance."""
    groups: dict[str, list[int]] = {}
    for i, h in enumerate(hashes):
        groups.setdefault(h, []).append(i)
    return [g for g in groups.values() if len(g) > 1]


@torch.no_grad()
def near_duplicate_pairs(
    features: torch.Tensor, ratio: float, k: int = 16, chunk: int = 512, same: list[str] | None = None
) -> dict[str, Any]:
    """Pairs (i < j) whose feature distance is at most ``ratio`` times the median nearest-neighbour
    distance, from each image's ``k`` nearest neighbours (``torch.cdist``, ``chunk`` rows at a time).
    Pairs with the same entry in ``same`` (identical pixels: already exact duplicates) are left out.
    Returns the threshold, the median, and the pairs sorted by distance."""
    n = features.shape[0]
    if n < 2:
        return {"threshold": math.nan, "median_nn_distance": math.nan, "pairs": [], "saturated": 0}
    k = min(k, n - 1)
    features = features.float()
    dist = torch.empty(n, k)
    index = torch.empty(n, k, dtype=torch.long)
    for i in range(0, n, chunk):
        d = torch.cdist(features[i : i + chunk], features)
        rows = torch.arange(d.shape[0])
        d[rows, rows + i] = math.inf  # not its own neighbour
        v, j = d.topk(k, dim=1, largest=False)
        dist[i : i + d.shape[0]], index[i : i + d.shape[0]] = v.clamp_min(0), j
    median = float(dist[:, 0].median())
    threshold = ratio * median
    pairs: dict[tuple[int, int], float] = {}
    for i, j in (dist <= threshold).nonzero().tolist():
        a, b = sorted((i, int(index[i, j])))
        if same is None or same[a] != same[b]:
            pairs[(a, b)] = float(dist[i, j])
    saturated = int((dist[:, -1] <= threshold).sum())  # rows whose k neighbours are all near: "at least"
    ordered = sorted(pairs.items(), key=lambda kv: kv[1])
    return {
        "threshold": threshold,
        "median_nn_distance": median,
        "pairs": [(a, b, d) for (a, b), d in ordered],
        "saturated": saturated,
    }


def _class_names(datamodule, n_classes: int) -> list[str]:
    names = list(getattr(datamodule, "classes", None) or [])
    return names if len(names) >= n_classes else [str(c) for c in range(n_classes)]


def datamodule_has_labels(datamodule) -> bool:
    # an image folder knows (subfolders or not); the torchvision, bundled and fake modules carry labels
    return bool(datamodule.classes) if hasattr(datamodule, "classes") else True


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
    warnings: list[str] = []

    # where each image came from (an image folder): pixel hash -> file paths
    paths_by_hash: dict[str, list[str]] = {}
    source_resolutions: dict[str, int]
    if hasattr(datamodule, "readable_files"):
        names = datamodule.readable_files()
        raw = datamodule._load()[0]
        if len(names) == raw.shape[0]:
            for name, h in zip(names, pixel_hashes(raw), strict=True):
                paths_by_hash.setdefault(h, []).append(name)
        source_resolutions = datamodule.source_resolutions()
        resolution_note = "the files' own sizes, before resizing and centre-cropping"
    else:
        shape = "x".join(str(v) for v in every.shape[-2:])
        source_resolutions = {shape: int(every.shape[0])}
        resolution_note = "as the data set stores them"

    # labels
    has_labels = datamodule_has_labels(datamodule)
    n_per_class: dict[str, int] | None = None
    by_split: dict[str, dict[str, int]] | None = None
    imbalance = None
    if has_labels:
        n_classes = int(max(int(labels[s].max()) + 1 for s in SPLITS if labels[s].numel()))
        n_classes = max(n_classes, len(getattr(datamodule, "classes", None) or []))
        names_c = _class_names(datamodule, n_classes)
        counts = {s: torch.bincount(labels[s], minlength=n_classes).tolist() for s in SPLITS}
        total = [sum(counts[s][c] for s in SPLITS) for c in range(n_classes)]
        n_per_class = dict(zip(names_c, total, strict=True))
        by_split = {s: dict(zip(names_c, counts[s], strict=True)) for s in SPLITS}
        if min(total) > 0:
            imbalance = max(total) / min(total)
        else:
            warnings.append(
                "some classes have no readable image: "
                + ", ".join(n for n, c in n_per_class.items() if c == 0)
            )

    # exact duplicates
    groups = []
    for g in exact_duplicate_groups(hashes):
        group_splits = sorted({split_of[i] for i in g}, key=SPLITS.index)
        entry = {
            "sha256": hashes[g[0]],
            "count": len(g),
            "members": [member[i] for i in g],
            "splits": group_splits,
            "crosses_splits": len(group_splits) > 1,
        }
        if paths_by_hash:
            entry["paths"] = paths_by_hash.get(hashes[g[0]], [])
        groups.append(entry)
    if any(g["crosses_splits"] for g in groups):
        warnings.append(
            f"{sum(g['crosses_splits'] for g in groups)} groups of identical images span more than one "
            "split: the selection/report numbers partly score training images"
        )

    # features: the evaluator's (cached per split) or pixels
    reason = _feature_net_usable(evaluator, every)
    if reason is None:
        feats = torch.cat([evaluator.split_features(datamodule, s, progress=progress)[0] for s in SPLITS])
        space = evaluator.identity
    else:
        feats = every.flatten(1)
        space = "pixels in [-1, 1]"
        warnings.append(f"near duplicates in pixel space, no FID floor: {reason}")

    near = near_duplicate_pairs(feats, near_ratio, k=near_k, same=hashes)
    pairs = near["pairs"]
    near_card: dict[str, Any] = {
        "feature_space": space,
        "threshold": near["threshold"],
        "rule": f"distance <= {near_ratio} x the median nearest-neighbour distance "
        f"({near['median_nn_distance']:.4g}); identical images are left to exact_duplicates",
        "ratio": near_ratio,
        "median_nn_distance": near["median_nn_distance"],
        "n_pairs": len(pairs),
        "n_pairs_is_lower_bound": near["saturated"] > 0,
        "n_cross_split": sum(split_of[a] != split_of[b] for a, b, _ in pairs),
        "pairs": [
            {"a": member[a], "b": member[b], "distance": d}
            | (
                {"paths": [paths_by_hash.get(hashes[a], ["?"])[0], paths_by_hash.get(hashes[b], ["?"])[0]]}
                if paths_by_hash
                else {}
            )
            for a, b, d in pairs[:max_listed]
        ],
        "grid": None,
    }
    if out_dir is not None and pairs:
        shown = pairs[:grid_pairs]
        save_pairs_grid(
            every[[a for a, _, _ in shown]], every[[b for _, b, _ in shown]], Path(out_dir) / NEAR_GRID
        )
        near_card["grid"] = NEAR_GRID

    # pixel statistics of the train split, in [0, 1]
    unit = images["train"].add(1).div(2).double()
    pixel = {
        "split": "train",
        "range": "[0, 1]",
        "mean": unit.mean(dim=(0, 2, 3)).tolist(),
        "std": unit.std(dim=(0, 2, 3)).tolist(),
    }

    # the FID floor: draws of train images against the whole report split (Evaluator.floor_features)
    n_report = splits["report"]["n"]
    floor: dict[str, Any]
    if reason is not None:
        floor = {"skipped": reason}
    elif n_report < 2:
        floor = {"skipped": f"the report split has {n_report} image(s); FID needs 2"}
    else:
        train_feats = feats[offsets["train"] : offsets["train"] + splits["train"]["n"]]
        n = min(n_report, train_feats.shape[0])
        ref = copy.copy(evaluator)  # the report split's features are at hand: no second pass
        report_feats = feats[offsets["report"] : offsets["report"] + n_report]
        ref._use_reference(report_feats, {"dataset": datamodule.describe(), "split": "report", "n": n_report})
        floor = ref.floor_features(train_feats, n, draws=floor_draws, seed=seed, drawn_from="train split")
        if n < n_report:
            warnings.append(
                f"the FID floor is at n={n} (the train split's size), not the report's {n_report}"
            )
    if n_report < 1000:
        warnings.append(
            f"the report split has {n_report} images: FID there is strongly biased upwards "
            "and noisy; compare any FID with fid_floor, at the same n"
        )

    n_images = int(every.shape[0])
    corrupt = list(getattr(datamodule, "corrupt_files", []))
    return {
        "card_version": CARD_VERSION,
        "dataset": datamodule.describe(),
        "image_shape": list(every.shape[1:]),
        "n_images": n_images,
        "n_images_note": "readable images in the three splits as the data module serves them"
        + (f" (limit_train={datamodule.limit_train})" if getattr(datamodule, "limit_train", None) else ""),
        "has_labels": has_labels,
        "n_per_class": n_per_class,
        "n_per_class_by_split": by_split,
        "class_imbalance": imbalance,
        "corrupt_files": corrupt,
        "n_corrupt": len(corrupt),
        "exact_duplicates": {
            "rule": "identical uint8 pixels at the training resolution (SHA-256 of the bytes)",
            "n_groups": len(groups),
            "n_redundant": sum(g["count"] - 1 for g in groups),
            "n_cross_split": sum(g["crosses_splits"] for g in groups),
            "groups": groups,
        },
        "near_duplicates": near_card,
        "pixel": pixel,
        "source_resolutions": source_resolutions,
        "source_resolutions_note": resolution_note,
        "splits": splits,
        "fid_floor": floor,
        "warnings": warnings,
    }


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float):
        return "nan" if math.isnan(x) else f"{x:.{digits}g}" if abs(x) < 1000 else f"{x:,.0f}"
    if isinstance(x, int):
        return f"{x:,}"
    return str(x)


def card_markdown(card: dict[str, Any], title: str | None = None) -> str:
    """A data card as a Markdown section (a level-2 heading, a table, the warnings)."""
    ex, near, floor = card["exact_duplicates"], card["near_duplicates"], card["fid_floor"]
    splits = ", ".join(f"{s} {_fmt(v['n'])} (`{v['sha256']}`)" for s, v in card["splits"].items())
    if "skipped" in floor:
        floor_txt = f"skipped: {floor['skipped']}"
    else:
        floor_txt = (
            f"{_fmt(floor['mean'])} ± {_fmt(floor['sd'])} (sd over {floor['draws']} "
            f"{'disjoint' if floor['disjoint'] else 'overlapping'} draws of {_fmt(floor['n'])} "
            f"{floor['drawn_from']} images against the {floor['reference']['n']} "
            f"{floor['reference']['split']} images; {floor['feature_network']})"
        )
    classes = (
        ", ".join(f"{k}: {_fmt(v)}" for k, v in card["n_per_class"].items())
        if card["n_per_class"]
        else "no labels"
    )
    res = ", ".join(f"{k}: {_fmt(v)}" for k, v in list(card["source_resolutions"].items())[:5])
    mean = ", ".join(f"{v:.4f}" for v in card["pixel"]["mean"])
    std = ", ".join(f"{v:.4f}" for v in card["pixel"]["std"])
    rows = [
        ("Data set", f"`{card['dataset']}`, images {'x'.join(map(str, card['image_shape']))} (C x H x W)"),
        ("Readable images", _fmt(card["n_images"])),
        (
            "Unreadable files",
            f"{card['n_corrupt']}"
            + (
                ": " + ", ".join(card["corrupt_files"][:5]) + (" ..." if card["n_corrupt"] > 5 else "")
                if card["n_corrupt"]
                else ""
            ),
        ),
        ("Splits (n, content hash)", splits),
        ("Images per class", classes),
        ("Class imbalance (max/min)", _fmt(card["class_imbalance"])),
        (
            "Exact duplicates",
            f"{ex['n_groups']} groups, {ex['n_redundant']} redundant images, "
            f"{ex['n_cross_split']} groups across splits",
        ),
        (
            "Near duplicates",
            f"{_fmt(near['n_pairs'])}{'+' if near['n_pairs_is_lower_bound'] else ''} pairs "
            f"({near['n_cross_split']} across splits) at distance <= {_fmt(near['threshold'])} "
            f"({near['ratio']} x the median nearest-neighbour distance) in {near['feature_space']}",
        ),
        ("Pixel mean / std (train, [0, 1])", f"{mean} / {std}"),
        (f"Source resolutions ({card['source_resolutions_note']})", res),
        ("Real-vs-real FID floor", floor_txt),
    ]
    lines = [f"## {title or 'Data card: ' + card['dataset']}", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    if near.get("grid"):
        lines += ["", f"Closest near-duplicate pairs (each row above its partners): `{near['grid']}`"]
    if card["warnings"]:
        lines += ["", *[f"- **Warning:** {w}" for w in card["warnings"]]]
    return "\n".join(lines) + "\n"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")[:60] or "data"


def write_card(card: dict[str, Any], out_dir: str | Path) -> Path:
    """``data_card.json`` and ``data_card.md`` into ``out_dir`` (atomically); returns the JSON's path."""
    out_dir = Path(out_dir)
    write_text(out_dir / CARD_MD, card_markdown(card))
    return write_json(out_dir / CARD_JSON, card)


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
