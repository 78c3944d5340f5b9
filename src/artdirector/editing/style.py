"""Style adjustment: move one measurable attribute of generated images by a requested amount while keeping
their class, and measure whether it moved.

**Targets.** A :class:`StyleTarget` is an attribute of :mod:`artdirector.evaluation.style` and an amount:
``"+50%"`` (each image's value times 1.5), ``"+15"`` (plus 15 of the attribute's unit: pixels, degrees, a
fraction of the frame) or ``"=0"`` (every image to that value). Prompt words map to targets (:data:`WORDS`):
"thick"/"bold" thickness +50 %, "thin" thickness -33 %, "slanted"/"italic" slant +15 degrees, "upright"
slant = 0, "small" size -25 %, "large" size +25 %.

**Techniques**, one per kind of creator (what :func:`pick_method` chooses):

- ``latent`` (GANs): InterFaceGAN (Shen et al. 2020). The attribute of ``G(z, y)`` is fitted by least
  squares as linear in ``z`` (with a per-class offset for a conditional GAN) on fresh draws; each latent is
  moved along the unit normal ``n = w / |w|`` by ``alpha_i = (goal_i - value_i) / |w|`` (the fitted slope),
  clipped to ``|alpha| <= max_alpha`` so the latent stays where the generator was trained. The label is
  unchanged, so the class is kept as far as the direction is disentangled from it (what is measured).
- ``guidance`` (diffusion): attribute guidance. During sampling the predicted clean image ``x0`` is scored
  by a differentiable version of the attribute (:func:`soft_attribute`) and the noise prediction is shifted
  by ``sqrt(1 - abar_t) * scale * d loss / d x_t``, with ``loss = (a(x0) - goal)^2 / 2`` and the gradient
  taken through ``x0`` only (the network's Jacobian is left out: Bansal et al. 2023's forward guidance
  without its backward pass). The same seeds and labels as the unedited samples, so each edit is paired.
  The scale is calibrated on a probe batch (doubling until the mean change reaches the request).
- ``morpho`` (any image, scenes and real images too): Morpho-MNIST's perturbations (Castro et al. 2019):
  grey-level dilation or erosion by a disk (an octagon) at 4x resolution (thickness), a shear about the ink's centre of
  mass (slant), a scaling about it (size), an intensity gain on the ink (brightness). Exact, but a pixel
  edit: the result is off the creator's manifold, which FID sees.

**Measured** (:func:`measure_edit`): per image, the achieved change against the requested change (mean and
sd over images), and class conformance before and after (to the asked labels, or for an unconditional
creator agreement with each unedited image's predicted class). The edit is *met* when the mean achieved
change is within ``tolerance`` (25 %) of the mean requested change and conformance drops by at most
``max_conformance_drop`` (1 point).
"""

from __future__ import annotations

import math
import re
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from artdirector.errors import UserError
from artdirector.evaluation import style as formulas

EDITABLE = ("thickness", "slant", "size", "brightness")
UNITS = {"thickness": "px", "slant": "deg", "size": "of the frame", "brightness": ""}
METHODS = ("latent", "guidance", "morpho")
# attributes each technique can move (guidance needs a differentiable attribute; size has none here)
METHOD_ATTRIBUTES = {
    "latent": frozenset(EDITABLE),
    "guidance": frozenset({"thickness", "slant", "brightness"}),
    "morpho": frozenset(EDITABLE),
}


class StyleError(UserError, ValueError):
    """A style request the editor cannot act on (unknown attribute, malformed amount, unsupported method)."""


_AMOUNT = re.compile(r"^\s*([+-]\s*\d+(?:\.\d+)?)\s*(%?)\s*$|^\s*=\s*(-?\d+(?:\.\d+)?)\s*$")


@dataclass(frozen=True)
class StyleTarget:
    attribute: str
    kind: str  # "relative" (x (1 + amount)), "delta" (+ amount) or "value" (= amount)
    amount: float

    @classmethod
    def parse(cls, attribute: str, amount: Any) -> StyleTarget:
        """``("thickness", "+50%")``, ``("slant", "+15")``, ``("slant", "=0")``; a bare number is a delta."""
        if attribute not in EDITABLE:
            raise StyleError(
                f"cannot edit style attribute {attribute!r}: editable are {', '.join(EDITABLE)} "
                "(e.g. style={thickness: '+50%'})"
            )
        if isinstance(amount, int | float) and not isinstance(amount, bool):
            return cls(attribute, "delta", float(amount))
        m = _AMOUNT.match(str(amount))
        if m is None:
            raise StyleError(
                f"cannot read the amount {amount!r} for {attribute}: write '+50%' or '-30%' (relative), "
                "'+15' (in the attribute's unit) or '=0' (a value)"
            )
        if m.group(3) is not None:
            return cls(attribute, "value", float(m.group(3)))
        value = float(m.group(1).replace(" ", ""))
        if m.group(2):
            if value <= -100:
                raise StyleError(
                    f"{attribute} cannot shrink by {-value:g} %: the amount must be above -100 %"
                )
            return cls(attribute, "relative", value / 100)
        return cls(attribute, "delta", value)

    def goal(self, current: torch.Tensor) -> torch.Tensor:
        """Each image's target value, from its current value."""
        if self.kind == "relative":
            return current * (1 + self.amount)
        if self.kind == "delta":
            return current + self.amount
        return torch.full_like(current, self.amount)

    def spec(self) -> str:
        """The amount as :meth:`parse` reads it: ``"+50%"``, ``"+15"``, ``"=0"``."""
        if self.kind == "relative":
            return f"{self.amount * 100:+g}%"
        return f"={self.amount:g}" if self.kind == "value" else f"{self.amount:+g}"

    def describe(self) -> str:
        unit = UNITS[self.attribute]
        if self.kind == "relative":
            return f"{self.attribute} {self.amount * 100:+.0f}%"
        if self.kind == "delta":
            return f"{self.attribute} {self.amount:+g}{(' ' + unit) if unit else ''}"
        return f"{self.attribute} = {self.amount:g}{(' ' + unit) if unit else ''}"


# prompt words -> targets ("a thick 7", "slanted threes")
WORDS: dict[str, tuple[str, str]] = {
    "thick": ("thickness", "+50%"),
    "bold": ("thickness", "+50%"),
    "heavy": ("thickness", "+50%"),
    "thin": ("thickness", "-33%"),
    "slanted": ("slant", "+15"),
    "italic": ("slant", "+15"),
    "slanting": ("slant", "+15"),
    "upright": ("slant", "=0"),
    "straight": ("slant", "=0"),
    "small": ("size", "-25%"),
    "large": ("size", "+25%"),
    "bright": ("brightness", "+15%"),
    "dim": ("brightness", "-30%"),
}


def target_for_word(word: str) -> StyleTarget:
    attribute, amount = WORDS[word.lower()]
    return StyleTarget.parse(attribute, amount)


def targets_from_config(spec: Any) -> list[StyleTarget]:
    """``{thickness: '+50%', slant: '+10'}`` (a mapping) -> targets, in order."""
    if spec is None:
        return []
    if not hasattr(spec, "items"):
        raise StyleError(
            f"style must be a mapping of attribute to amount, e.g. {{thickness: '+50%'}}, got {spec!r}"
        )
    return [StyleTarget.parse(str(k), v) for k, v in spec.items()]


def measure_attribute(images: torch.Tensor, attribute: str) -> torch.Tensor:
    return formulas.measure(images)[attribute]


def pick_method(capabilities: frozenset[str] | set[str], attribute: str, method: str = "auto") -> str:
    """The technique for a creator: its latents (GAN), guided sampling (diffusion), else a pixel edit."""
    if method != "auto":
        if method not in METHODS:
            raise StyleError(f"style method must be one of auto, {', '.join(METHODS)}; got {method!r}")
        if attribute not in METHOD_ATTRIBUTES[method]:
            raise StyleError(
                f"the {method} technique cannot move {attribute} (it moves "
                f"{', '.join(sorted(METHOD_ATTRIBUTES[method]))}); use method=morpho"
            )
        return method
    if "latent" in capabilities:
        return "latent"
    if "guidance" in capabilities and attribute in METHOD_ATTRIBUTES["guidance"]:
        return "guidance"
    return "morpho"


# ---- latent directions (InterFaceGAN) -----------------------------------------------------------------
@dataclass
class Direction:
    """The attribute as a linear function of the latent: ``a = w . z + b_y``; ``normal = w / |w|``."""

    attribute: str
    normal: torch.Tensor  # (D,)
    slope: float  # |w|: attribute units per unit step along the normal
    r2: float  # variance of the attribute explained by the fit
    n: int

    def describe(self) -> dict[str, Any]:
        return {"attribute": self.attribute, "slope": self.slope, "r2": self.r2, "n": self.n}


def fit_direction(
    render: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
    latent_dim: int,
    attribute: str,
    num_classes: int | None = None,
    n: int = 2000,
    seed: int = 12345,
) -> Direction:
    """Least squares of the attribute of ``render(z, y)`` on ``z`` (plus a per-class intercept) over ``n``
    fresh latents of ``seed`` (classes in turn for a conditional creator)."""
    z = torch.randn(n, latent_dim, generator=torch.Generator().manual_seed(seed))
    labels = torch.arange(n) % num_classes if num_classes else None
    with torch.no_grad():
        a = torch.cat(
            [
                measure_attribute(
                    render(z[i : i + 500], None if labels is None else labels[i : i + 500]), attribute
                )
                for i in range(0, n, 500)
            ]
        ).double()
    design = [z.double()]
    design.append(
        F.one_hot(labels, num_classes).double() if labels is not None else torch.ones(n, 1).double()
    )
    X = torch.cat(design, 1)
    coef = torch.linalg.lstsq(X, a.unsqueeze(1)).solution.squeeze(1)
    w = coef[:latent_dim]
    resid = a - X @ coef
    r2 = 1 - float(resid.var() / a.var().clamp(min=1e-12))
    slope = float(w.norm())
    normal = (w / w.norm().clamp(min=1e-12)).float()
    return Direction(attribute, normal, slope, r2, n)


def latent_edit(
    z: torch.Tensor, current: torch.Tensor, goal: torch.Tensor, direction: Direction, max_alpha: float = 3.0
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Each latent moved along the normal by the step the fit says reaches its goal, clipped."""
    alpha = (goal - current) / max(direction.slope, 1e-12)
    clipped = alpha.abs() > max_alpha
    alpha = alpha.clamp(-max_alpha, max_alpha)
    z_new = z + alpha.unsqueeze(1) * direction.normal.to(z)
    return z_new, {
        "alpha_mean": float(alpha.mean()),
        "alpha_abs_max": float(alpha.abs().max()) if alpha.numel() else 0.0,
        "clipped": float(clipped.float().mean()) if alpha.numel() else 0.0,
        "max_alpha": max_alpha,
    }


# ---- differentiable attributes (attribute guidance) ---------------------------------------------------
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


# ---- pixel edits (Morpho-MNIST) -----------------------------------------------------------------------
def _morph_step(v: torch.Tensor, step: int, dilate: bool) -> torch.Tensor:
    """One grey-level dilation (max) or erosion (min) by radius 1, alternating a 3x3 square (even steps)
    and a cross (odd steps): ``r`` steps are a dilation by an octagon of radius ``r``, the usual fast
    approximation of a disk."""
    x = v if dilate else -v
    if step % 2 == 0:
        out = F.max_pool2d(x, 3, stride=1, padding=1)
    else:
        p = F.pad(x, (1, 1, 1, 1), value=-1e4)
        out = torch.stack([x, p[..., :-2, 1:-1], p[..., 2:, 1:-1], p[..., 1:-1, :-2], p[..., 1:-1, 2:]]).amax(
            0
        )
    return out if dilate else -out


def _centre(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    _, _, h, w = v.shape
    mass = v.sum((1, 2, 3)).clamp(min=1e-8)
    ys = torch.arange(h, dtype=v.dtype).view(1, 1, h, 1)
    xs = torch.arange(w, dtype=v.dtype).view(1, 1, 1, w)
    return (v * ys).sum((1, 2, 3)) / mass, (v * xs).sum((1, 2, 3)) / mass


def _affine(v: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Resample ``v`` with per-image affine maps ``a`` (N, 2, 3) from output pixel (x, y) to input (x, y)."""
    n, _, h, w = v.shape
    # pixel -> normalised coordinates (align_corners=False)
    to_norm = torch.tensor([[2 / w, 0, 1 / w - 1], [0, 2 / h, 1 / h - 1], [0, 0, 1]], dtype=v.dtype)
    from_norm = torch.linalg.inv(to_norm)
    full = torch.cat([a, torch.tensor([0, 0, 1.0], dtype=v.dtype).expand(n, 1, 3)], 1)
    theta = (to_norm @ full @ from_norm)[:, :2]
    grid = F.affine_grid(theta, list(v.shape), align_corners=False)
    return F.grid_sample(v, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def morpho_edit(images: torch.Tensor, target: StyleTarget) -> tuple[torch.Tensor, dict[str, Any]]:
    """The Morpho-MNIST perturbation that moves ``target.attribute`` of each image to its goal."""
    x = images.float()
    current = measure_attribute(x, target.attribute)
    goal = target.goal(current)
    v = (x + 1) / 2  # ink in [0, 1]
    n = x.shape[0]
    if target.attribute == "thickness":
        # at 4x resolution a disk of radius r adds about 2r/4 px of width at 28 px; each image takes the
        # radius (searched in the direction asked, up to 10 at 4x) whose measured thickness is closest to
        # its goal, since the hard 0.5 threshold makes the rule of thumb inexact for thin strokes
        big = F.interpolate(v, scale_factor=4, mode="bicubic", align_corners=False).clamp(0, 1)
        sign = 1 if float((goal - current).mean()) >= 0 else -1
        best = v.clone()
        best_err = (current - goal).abs()
        radii = torch.zeros(n)
        grown, previous = big, v
        for r in range(1, 11):
            grown = _morph_step(grown, r - 1, dilate=sign > 0)
            cand = F.interpolate(grown, size=x.shape[-2:], mode="area")
            # whole radii move the width in steps of about 0.5 px; blends of consecutive radii fill between
            for t in (0.25, 0.5, 0.75, 1.0):
                mix = previous + t * (cand - previous)
                err = (formulas.thickness(mix * 2 - 1) - goal).abs()
                better = err < best_err
                best[better], best_err[better], radii[better] = mix[better], err[better], sign * (r - 1 + t)
            previous = cand
        v = best.clamp(0, 1)
        info = {"radius_at_4x_mean": float(radii.mean())}
    elif target.attribute in ("slant", "size"):
        cy, cx = _centre(v)
        a = torch.zeros(n, 2, 3, dtype=v.dtype)
        if target.attribute == "slant":
            # output x = input x + k (cy - y): input x = output x - k (cy - y); k = tan(goal) - tan(now)
            k = torch.tan(torch.deg2rad(goal.clamp(-60, 60))) - torch.tan(torch.deg2rad(current))
            a[:, 0, 0], a[:, 0, 1], a[:, 0, 2] = 1, k, -k * cy
            a[:, 1, 1] = 1
            info = {"shear_mean": float(k.mean())}
        else:
            s = (goal / current.clamp(min=1e-3)).clamp(0.2, 3.0)  # output = s (input - c) + c
            a[:, 0, 0], a[:, 0, 2] = 1 / s, cx * (1 - 1 / s)
            a[:, 1, 1], a[:, 1, 2] = 1 / s, cy * (1 - 1 / s)
            info = {"scale_mean": float(s.mean())}
        v = _affine(v, a).clamp(0, 1)
    elif target.attribute == "brightness":
        mask = (v > 0.5).float()
        gain = (goal / current.clamp(min=1e-3)).view(-1, 1, 1, 1)
        v = torch.where(mask.bool(), (v * gain).clamp(0, 1), v)
        info = {"gain_mean": float(gain.mean())}
    else:  # pragma: no cover - EDITABLE is checked by StyleTarget.parse
        raise StyleError(f"no pixel edit for {target.attribute}")
    return (v * 2 - 1).to(images.dtype), info


# ---- measurement --------------------------------------------------------------------------------------
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


# ---- the edit, for a creator ---------------------------------------------------------------------------
_DIRECTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> {attribute: Direction}


def direction_for(creator: Any, attribute: str, n: int = 2000) -> Direction:
    """The creator's fitted InterFaceGAN direction for ``attribute`` (fitted once per model object)."""
    fitted = _DIRECTIONS.setdefault(creator.model, {})
    if attribute not in fitted:
        fitted[attribute] = fit_direction(
            creator.from_latents, creator.latent_dim, attribute, creator.num_classes or None, n=n
        )
    return fitted[attribute]


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
    from artdirector.creators import sampling_options

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


def edit(
    creator: Any,
    images: torch.Tensor,
    target: StyleTarget,
    method: str,
    latents: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
    seed: int | None = None,
    options: dict[str, Any] | None = None,
    max_alpha: float = 3.0,
) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, Any]]:
    """``images`` (drawn by ``creator``) edited by one technique: (images, latents, what was done)."""
    current = measure_attribute(images, target.attribute)
    if method == "latent":
        if latents is None:
            raise StyleError("the latent technique needs the samples' latents (a GAN's own samples)")
        d = direction_for(creator, target.attribute)
        z, info = latent_edit(latents, current, target.goal(current), d, max_alpha)
        return creator.from_latents(z, labels), z, {"method": "latent", "direction": d.describe(), **info}
    if method == "guidance":
        if seed is None:
            raise StyleError("the guidance technique redraws the samples and needs their seed")
        out, info = guided_sample(
            creator.model, labels, images.shape[0], seed, options or {}, target, current
        )
        return out, None, {"method": "guidance", **info}
    if method == "morpho":
        out, info = morpho_edit(images, target)
        return out, None, {"method": "morpho", **info}
    raise StyleError(f"style method must be one of {', '.join(METHODS)}; got {method!r}")


def candidates(capabilities: frozenset[str] | set[str], attribute: str, method: str = "auto") -> list[str]:
    """The techniques to try in order: the creator's own (latent directions, guidance), then the pixel
    edit, which always applies; or just the one asked for."""
    if method != "auto":
        return [pick_method(capabilities, attribute, method)]
    first = pick_method(capabilities, attribute)
    return [first] if first == "morpho" else [first, "morpho"]
