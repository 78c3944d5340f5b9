"""The ``latent`` technique (GANs): InterFaceGAN (Shen et al. 2020). The attribute of ``G(z, y)`` is fitted by
least squares as linear in ``z`` (with a per-class offset for a conditional GAN) on fresh draws; each latent is
moved along the unit normal ``n = w / |w|`` by ``alpha_i = (goal_i - value_i) / |w|`` (the fitted slope),
clipped to ``|alpha| <= max_alpha`` so the latent stays where the generator was trained. The label is
unchanged, so the class is kept as far as the direction is disentangled from it (what is measured)."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from artdirector.editing.targets import measure_attribute


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


_DIRECTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> {attribute: Direction}


def direction_for(creator: Any, attribute: str, n: int = 2000) -> Direction:
    """The creator's fitted InterFaceGAN direction for ``attribute`` (fitted once per model object)."""
    fitted = _DIRECTIONS.setdefault(creator.model, {})
    if attribute not in fitted:
        fitted[attribute] = fit_direction(
            creator.from_latents, creator.latent_dim, attribute, creator.num_classes or None, n=n
        )
    return fitted[attribute]
