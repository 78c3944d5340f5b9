"""Style adjustment: move one measurable attribute of generated images by a requested amount while keeping
their class. One technique per file, chosen here for a creator (:func:`candidates`, :func:`edit`):

- :mod:`artdirector.editing.targets`: what a request is (an attribute and an amount, and the prompt words);
- :mod:`artdirector.editing.latent`: ``latent`` (GANs), InterFaceGAN directions;
- :mod:`artdirector.editing.guidance`: ``guidance`` (diffusion), attribute guidance while sampling;
- :mod:`artdirector.editing.morpho`: ``morpho`` (any image), Morpho-MNIST's pixel perturbations;
- :mod:`artdirector.editing.measure`: whether an edit moved the attribute as asked and kept the class.
"""

from __future__ import annotations

from typing import Any

import torch

from artdirector.editing.guidance import guided_sample
from artdirector.editing.latent import direction_for, latent_edit
from artdirector.editing.morpho import morpho_edit
from artdirector.editing.targets import EDITABLE, StyleError, StyleTarget, measure_attribute

METHODS = ("latent", "guidance", "morpho")
# attributes each technique can move (guidance needs a differentiable attribute; size has none here)
METHOD_ATTRIBUTES = {
    "latent": frozenset(EDITABLE),
    "guidance": frozenset({"thickness", "slant", "brightness"}),
    "morpho": frozenset(EDITABLE),
}


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
