"""The ``guidance`` technique (diffusion): attribute guidance. During sampling the predicted clean image ``x0`` is
scored by a differentiable version of the attribute (:func:`soft_attribute`) and the noise prediction is shifted
by ``sqrt(1 - abar_t) * scale * d loss / d x_t``, with ``loss = (a(x0) - goal)^2 / 2`` and the gradient taken
through ``x0`` only (the network's Jacobian is left out: Bansal et al. 2023's forward guidance without its
backward pass). The same seeds and labels as the unedited samples, so each edit is paired. The scale is
calibrated on a probe batch (up a geometric ladder until the mean change reaches the request)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from artdirector.creators import sampling_options
from artdirector.editing.targets import StyleError, StyleTarget, measure_attribute


def soft_attribute(x: torch.Tensor, attribute: str, sharpness: float = 12.0) -> torch.Tensor:
    """A differentiable version of the attribute, per image: the hard ink mask ``v > 0.5`` becomes
    ``sigmoid(sharpness (v - 0.5))`` in the thickness and brightness formulas; slant's moments are already
    smooth. Agrees with the hard formula on clean binary strokes."""
    # no clamp: its gradient is zero at the bounds, where a clean image's pixels sit (x is in [-1, 1])
    v = (x.float().mean(1) + 1) / 2
    if attribute == "slant":
        n, h, w = v.shape
        ys = torch.arange(h, dtype=v.dtype, device=v.device).view(1, h, 1)
        xs = torch.arange(w, dtype=v.dtype, device=v.device).view(1, 1, w)
        mass = v.sum((1, 2)).clamp(min=1e-8)
        dy = ys - ((v * ys).sum((1, 2)) / mass).view(n, 1, 1)
        dx = xs - ((v * xs).sum((1, 2)) / mass).view(n, 1, 1)
        mu11, mu02 = (v * dx * dy).sum((1, 2)) / mass, (v * dy * dy).sum((1, 2)) / mass
        return torch.rad2deg(torch.atan(-mu11 / mu02.clamp(min=1e-8)))
    m = torch.sigmoid(sharpness * (v - 0.5))
    if attribute == "thickness":
        area = m.sum((1, 2))
        pad = F.pad(m, (1, 1, 1, 1))
        per = (pad[:, 1:, :] - pad[:, :-1, :]).abs().sum((1, 2)) + (pad[:, :, 1:] - pad[:, :, :-1]).abs().sum(
            (1, 2)
        )
        p4 = per / 4
        return p4 - (p4**2 - area).clamp(min=1e-6).sqrt()
    if attribute == "brightness":
        return (v * m).sum((1, 2)) / m.sum((1, 2)).clamp(min=1)
    raise StyleError(f"no differentiable {attribute} for guidance; use method=morpho or latent")


def attribute_guidance(attribute: str, goal: torch.Tensor, scale: float) -> Callable:
    """``fn(x0, rows) -> d loss / d x0`` for the diffusion sampler: ``loss = scale (a(x0) - goal)^2 / 2``
    summed over images (each image's gradient is its own); ``rows`` index the images of the batch."""

    def grad(x0: torch.Tensor, rows: slice) -> torch.Tensor:
        with torch.enable_grad():
            x = x0.detach().requires_grad_(True)
            a = soft_attribute(x, attribute)
            loss = 0.5 * scale * ((a - goal[rows].to(a)) ** 2).sum()
            (g,) = torch.autograd.grad(loss, x)
        return g

    return grad


def guided_sample(
    model: Any,
    labels: torch.Tensor | None,
    n: int,
    seed: int,
    options: dict[str, Any],
    target: StyleTarget,
    current: torch.Tensor,
    scales: tuple[float, ...] = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0),
    probe: int = 16,
    refine: int = 2,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """The same seeds, labels and sampling options as the unedited samples, drawn again under attribute
    guidance. The scale is calibrated on the first ``probe`` images: up the geometric ladder ``scales`` until
    the mean change reaches 85 % of the request, then ``refine`` bisections (in log scale) between the last
    two rungs; the scale whose achieved/requested ratio is closest to 1 is used for all ``n``."""
    goal = target.goal(current)
    opts = sampling_options(options)
    m = min(probe, n)
    req = float((goal[:m] - current[:m]).mean())
    tried: list[dict[str, float]] = []

    def ratio(s: float) -> float:
        out = model.sample(
            n=m,
            labels=None if labels is None else labels[:m],
            seed=seed,
            x0_grad=attribute_guidance(target.attribute, goal[:m], s),
            **opts,
        )
        a = measure_attribute(out, target.attribute)
        r = float((a - current[:m]).mean()) / req if abs(req) > 1e-9 else 1.0
        tried.append({"scale": s, "achieved_over_requested": r})
        return r

    low = None
    for s in scales:
        r = ratio(s)
        if r >= 0.85:
            high = s
            for _ in range(refine if low is not None and r > 1.25 else 0):
                mid = math.sqrt(low * high)
                if ratio(mid) >= 0.85:
                    high = mid
                else:
                    low = mid
            break
        low = s
    scale = min(tried, key=lambda t: abs(t["achieved_over_requested"] - 1))["scale"]
    images = model.sample(
        n=n, labels=labels, seed=seed, x0_grad=attribute_guidance(target.attribute, goal, scale), **opts
    )
    return images, {"scale": scale, "probe": m, "calibration": tried}
