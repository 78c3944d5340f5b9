"""The data checks behind a data card (:mod:`artdirector.data.card`), each one section of it: where the images
came from, labels and class balance, exact duplicates (identical pixels), near duplicates (in a feature
space) and the train split's pixel statistics. Each takes tensors already loaded and returns its section
and any warnings; none loads data or writes a file."""

from __future__ import annotations

import hashlib
import math
from typing import Any

import torch

from artdirector.data.datamodules import SPLITS


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


def image_sources(datamodule, every: torch.Tensor) -> tuple[dict[str, list[str]], dict[str, int], str]:
    """Where the images came from: pixel hash -> file paths (an image folder; empty otherwise), the source
    resolutions with a note on what they are."""
    paths_by_hash: dict[str, list[str]] = {}
    if hasattr(datamodule, "readable_files"):
        names = datamodule.readable_files()
        raw = datamodule._load()[0]
        if len(names) == raw.shape[0]:
            for name, h in zip(names, pixel_hashes(raw), strict=True):
                paths_by_hash.setdefault(h, []).append(name)
        note = "the files' own sizes, before resizing and centre-cropping"
        return paths_by_hash, datamodule.source_resolutions(), note
    shape = "x".join(str(v) for v in every.shape[-2:])
    return paths_by_hash, {shape: int(every.shape[0])}, "as the data set stores them"


def datamodule_has_labels(datamodule) -> bool:
    # an image folder knows (subfolders or not); the torchvision, bundled and fake modules carry labels
    return bool(datamodule.classes) if hasattr(datamodule, "classes") else True


def _class_names(datamodule, n_classes: int) -> list[str]:
    names = list(getattr(datamodule, "classes", None) or [])
    return names if len(names) >= n_classes else [str(c) for c in range(n_classes)]


def class_counts(datamodule, labels: dict[str, torch.Tensor]) -> tuple[dict[str, Any], list[str]]:
    """``has_labels``, ``n_per_class`` (overall and ``_by_split``) and ``class_imbalance`` (the largest
    class count over the smallest; None when a class has no readable image, which is a warning)."""
    has_labels = datamodule_has_labels(datamodule)
    n_per_class: dict[str, int] | None = None
    by_split: dict[str, dict[str, int]] | None = None
    imbalance = None
    warnings: list[str] = []
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
    section = {
        "has_labels": has_labels,
        "n_per_class": n_per_class,
        "n_per_class_by_split": by_split,
        "class_imbalance": imbalance,
    }
    return section, warnings


def exact_duplicates(
    hashes: list[str], member: list[str], split_of: list[str], paths_by_hash: dict[str, list[str]]
) -> tuple[dict[str, Any], list[str]]:
    """Groups of identical images (``member`` and ``split_of`` name each image), and whether a group
    crosses splits (a training image that is also a report image inflates every score: a warning)."""
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
    warnings = []
    if any(g["crosses_splits"] for g in groups):
        warnings.append(
            f"{sum(g['crosses_splits'] for g in groups)} groups of identical images span more than one "
            "split: the selection/report numbers partly score training images"
        )
    section = {
        "rule": "identical uint8 pixels at the training resolution (SHA-256 of the bytes)",
        "n_groups": len(groups),
        "n_redundant": sum(g["count"] - 1 for g in groups),
        "n_cross_split": sum(g["crosses_splits"] for g in groups),
        "groups": groups,
    }
    return section, warnings


def near_duplicates(
    feats: torch.Tensor,
    space: str,
    hashes: list[str],
    member: list[str],
    split_of: list[str],
    paths_by_hash: dict[str, list[str]],
    ratio: float,
    k: int,
    max_listed: int,
) -> tuple[dict[str, Any], list[tuple[int, int, float]]]:
    """The near-duplicates section (its first ``max_listed`` pairs; ``grid`` None until one is written)
    and every pair found, closest first."""
    near = near_duplicate_pairs(feats, ratio, k=k, same=hashes)
    pairs = near["pairs"]
    section: dict[str, Any] = {
        "feature_space": space,
        "threshold": near["threshold"],
        "rule": f"distance <= {ratio} x the median nearest-neighbour distance "
        f"({near['median_nn_distance']:.4g}); identical images are left to exact_duplicates",
        "ratio": ratio,
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
    return section, pairs


def pixel_statistics(train_images: torch.Tensor) -> dict[str, Any]:
    """Per-channel pixel mean and std of the train split in [0, 1] (the usual normalisation constants)."""
    unit = train_images.add(1).div(2).double()
    return {
        "split": "train",
        "range": "[0, 1]",
        "mean": unit.mean(dim=(0, 2, 3)).tolist(),
        "std": unit.std(dim=(0, 2, 3)).tolist(),
    }
