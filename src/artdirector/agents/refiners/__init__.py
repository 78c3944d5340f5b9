"""The refinement techniques, one per module, and the registry that names them.

A new technique is a subclass in its own module (its name, what it requires of a creator, paired or not):
a :class:`SamplesRefiner` with ``refined`` when it only makes new samples, a :class:`FinishingRefiner` with
``refined`` and ``check`` when the request asks for it once at the end, a :class:`Refiner` with ``apply``
otherwise (finetune makes a new model); and one entry in
``REFINERS``; the Refinement Agent, the policies and the Director ask the registry about it.
"""

from __future__ import annotations

from artdirector.agents.refiners.base import (
    Context,
    FinishingRefiner,
    Refiner,
    SamplesRefiner,
    need_latents,
)
from artdirector.agents.refiners.drs import DRS
from artdirector.agents.refiners.finetune import Finetune
from artdirector.agents.refiners.latent import DOT, Langevin
from artdirector.agents.refiners.sampler import Guidance, Steps
from artdirector.agents.refiners.style import Style
from artdirector.agents.refiners.truncation import Truncation
from artdirector.agents.refiners.upscale import Upscale

# every action by name, in the order error messages list them
REFINERS: dict[str, Refiner] = {
    r.name: r
    for r in (DRS(), Langevin(), DOT(), Truncation(), Finetune(), Guidance(), Steps(), Upscale(), Style())
}


def refiner(name: str) -> Refiner:
    """The refiner called ``name``; an unknown name is an error that lists the known ones."""
    if name not in REFINERS:
        raise ValueError(f"unknown refinement action {name!r}; known: {', '.join(REFINERS)}")
    return REFINERS[name]


def finishing_refiner(name: str) -> FinishingRefiner:
    """The finishing refiner called ``name``; any other name is an error that lists the finishing ones."""
    r = REFINERS.get(name)
    if not isinstance(r, FinishingRefiner):
        finishing = ", ".join(n for n, f in REFINERS.items() if f.finishing)
        raise ValueError(f"{name!r} is not a finishing action; finishing actions: {finishing}")
    return r


__all__ = [
    "DOT",
    "DRS",
    "REFINERS",
    "Context",
    "Finetune",
    "FinishingRefiner",
    "Guidance",
    "Langevin",
    "Refiner",
    "SamplesRefiner",
    "Steps",
    "Style",
    "Truncation",
    "Upscale",
    "finishing_refiner",
    "need_latents",
    "refiner",
]
