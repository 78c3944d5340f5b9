"""A diffusion creator's sampling settings: classifier-free guidance and the number of sampler steps. Both
draw the same seeds and labels again with another setting, so the output is paired with the input."""

from __future__ import annotations

from artdirector.agents.refiners.base import Context, SamplesRefiner
from artdirector.agents.types import Samples


class Guidance(SamplesRefiner):
    """Classifier-free guidance (Ho & Salimans 2022), stronger or weaker: the same seeds and labels drawn
    again at guidance ``scale`` (or the current scale times ``factor``). Higher scales trade diversity
    (recall) for fidelity and class conformance."""

    name = "guidance"
    requires = frozenset({"guidance"})

    def refined(
        self, samples: Samples, ctx: Context, factor: float = 1.5, scale: float | None = None
    ) -> Samples:
        current = float(samples.options.get("guidance", 1.0))
        new = float(scale) if scale is not None else current * factor
        return ctx.gen.resample(samples, f"guidance({current:g} -> {new:g})", guidance=new)


class Steps(SamplesRefiner):
    """More (or fewer) sampler steps: the same seeds and labels drawn again with ``steps`` (or the current
    number times ``factor``); fewer solver steps discretise the reverse process more coarsely."""

    name = "steps"
    requires = frozenset({"steps"})

    def refined(
        self, samples: Samples, ctx: Context, factor: float = 2.0, steps: int | None = None
    ) -> Samples:
        current = int(samples.options.get("steps", 25))
        new = int(steps) if steps is not None else max(1, round(current * factor))
        return ctx.gen.resample(samples, f"steps({current} -> {new})", steps=new)
