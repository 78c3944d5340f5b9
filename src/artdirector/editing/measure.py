"""Did a style edit do what was asked? Per image, the achieved change against the requested change (mean and
sd over images), and class conformance before and after (to the asked labels, or for an unconditional creator
agreement with each unedited image's predicted class). The edit is *met* when the mean achieved change is
within ``tolerance`` (25 %) of the mean requested change and conformance drops by at most
``max_conformance_drop`` (1 point). This is the edit's own check, on the formula it steers by; the
benchmark's judge is :mod:`artdirector.evaluation.style_judge`."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from artdirector.editing.targets import StyleTarget, measure_attribute


def measure_edit(
    before: torch.Tensor,
    after: torch.Tensor,
    target: StyleTarget,
    classify: Callable[[torch.Tensor], torch.Tensor] | None = None,
    labels: torch.Tensor | None = None,
    tolerance: float = 0.25,
    max_conformance_drop: float = 0.01,
    predicted: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> dict[str, Any]:
    """Did the attribute move by the requested amount, and was the class kept? (see the module doc). The
    classes come from ``classify``, or ``predicted`` (before, after) when they are already known."""
    a0 = measure_attribute(before, target.attribute)
    a1 = measure_attribute(after, target.attribute)
    requested = target.goal(a0) - a0
    achieved = a1 - a0
    req_mean, ach_mean = float(requested.mean()), float(achieved.mean())
    out: dict[str, Any] = {
        "attribute": target.attribute,
        "target": target.describe(),
        "n": int(before.shape[0]),
        "before": {"mean": float(a0.mean()), "sd": float(a0.std())},
        "after": {"mean": float(a1.mean()), "sd": float(a1.std())},
        "requested_change": {"mean": req_mean, "sd": float(requested.std())},
        "achieved_change": {"mean": ach_mean, "sd": float(achieved.std())},
        "achieved_over_requested": ach_mean / req_mean if abs(req_mean) > 1e-9 else math.nan,
        "tolerance": tolerance,
    }
    moved = abs(ach_mean - req_mean) <= tolerance * abs(req_mean) if abs(req_mean) > 1e-9 else True
    kept = True
    if predicted is None and classify is not None:
        predicted = classify(before), classify(after)
    if predicted is not None:
        p0, p1 = predicted
        if labels is not None:
            # in float64: a drop of exactly the limit (5 of 500 images) must not read as 0.0100000501
            c0 = float((p0 == labels).double().mean())
            c1 = float((p1 == labels).double().mean())
            what = "conformance to the asked classes"
        else:
            c0, c1 = 1.0, float((p1 == p0).double().mean())
            what = "agreement with each unedited image's predicted class"
        out["conformance"] = {"before": c0, "after": c1, "what": what, "max_drop": max_conformance_drop}
        kept = c0 - c1 <= max_conformance_drop + 1e-9
    out["moved"], out["class_kept"], out["met"] = moved, kept, moved and kept
    out["summary"] = (
        f"{target.describe()}: {target.attribute} {out['before']['mean']:.3g} -> {out['after']['mean']:.3g} "
        f"(change {ach_mean:+.3g} ± {out['achieved_change']['sd']:.2g} sd against {req_mean:+.3g} asked"
        + (
            f"; {out['conformance']['what']} {out['conformance']['before'] * 100:.1f}% -> "
            f"{out['conformance']['after'] * 100:.1f}%"
            if "conformance" in out
            else ""
        )
        + f", n={out['n']}): {'met' if out['met'] else 'not met'}"
    )
    return out
