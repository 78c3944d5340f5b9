"""A data card's FID floor: the real-vs-real FID at the report split's n, so that every later FID can stand
beside the number no generator can be expected to beat at that n (draws of train images against the whole
report split; :func:`artdirector.evaluation.floor.real_floor` computes it)."""

from __future__ import annotations

import copy
from typing import Any

import torch

from artdirector.evaluation.floor import FLOOR_DRAWS


def card_floor(
    evaluator,
    feats: torch.Tensor,
    offsets: dict[str, int],
    splits: dict[str, dict[str, Any]],
    dataset: str,
    skipped: str | None,
    draws: int = FLOOR_DRAWS,
    seed: int = 0,
) -> tuple[dict[str, Any], list[str]]:
    """The ``fid_floor`` section and its warnings. ``feats`` holds every split's features in ``SPLITS``
    order, split ``s`` from row ``offsets[s]``; ``skipped`` is why there is no usable feature space (None:
    there is one)."""
    warnings: list[str] = []
    n_report = splits["report"]["n"]
    floor: dict[str, Any]
    if skipped is not None:
        floor = {"skipped": skipped}
    elif n_report < 2:
        floor = {"skipped": f"the report split has {n_report} image(s); FID needs 2"}
    else:
        train_feats = feats[offsets["train"] : offsets["train"] + splits["train"]["n"]]
        n = min(n_report, train_feats.shape[0])
        ref = copy.copy(evaluator)  # the report split's features are at hand: no second pass
        report_feats = feats[offsets["report"] : offsets["report"] + n_report]
        ref._use_reference(report_feats, {"dataset": dataset, "split": "report", "n": n_report})
        floor = ref.floor_features(train_feats, n, draws=draws, seed=seed, drawn_from="train split")
        if n < n_report:
            warnings.append(
                f"the FID floor is at n={n} (the train split's size), not the report's {n_report}"
            )
    if n_report < 1000:
        warnings.append(
            f"the report split has {n_report} images: FID there is strongly biased upwards "
            "and noisy; compare any FID with fid_floor, at the same n"
        )
    return floor, warnings
