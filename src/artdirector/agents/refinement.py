"""The Refinement Agent: applies a refinement action (a technique of :mod:`artdirector.agents.refiners`) to
samples, within the run's budget."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from artdirector.agents.generation import GenerationAgent
from artdirector.agents.refiners import finishing_refiner, refiner
from artdirector.agents.types import Action, Candidate, Samples

if TYPE_CHECKING:
    import lightning as L

log = logging.getLogger(__name__)


class RefinementAgent:
    """Applies an :class:`Action` to samples and returns a :class:`Candidate`; inputs (samples, checkpoints,
    the Generation Agent's model) are never changed: the Director decides whether to keep the candidate.
    It is the techniques' :class:`~artdirector.agents.refiners.Context`.

    Args:
        generation: the Generation Agent (its model, latent sampler and seed).
        real_images: held-out real images in [-1, 1] (DRS logit calibration).
        real_labels: their classes (a class-conditional critic judges an image with its class).
        classify: images -> predicted class (the evaluator's LeNet): ``style`` chooses a technique that keeps it.
        datamodule: the data to continue training on (``finetune``).
        output_dir: where ``finetune`` writes its new checkpoints.
        defaults: per-action default parameters (overridden by an action's own).
    """

    def __init__(
        self,
        generation: GenerationAgent,
        real_images: torch.Tensor | None = None,
        datamodule: L.LightningDataModule | None = None,
        output_dir: str | Path = ".",
        defaults: dict[str, dict[str, Any]] | None = None,
        real_labels: torch.Tensor | None = None,
        classify: Any = None,
    ) -> None:
        self.gen = generation
        # images -> predicted classes (the evaluator's classifier): a style edit must keep the class
        self.classify = classify
        self.real_images = real_images
        self.real_labels = real_labels
        self.datamodule = datamodule
        self.output_dir = Path(output_dir)
        self.defaults = {k: dict(v) for k, v in (defaults or {}).items()}
        # what a technique keeps between calls on this agent (DRS's calibration per model, the finetune count)
        self.state: dict[str, Any] = {}
        # the run's budget: a time.perf_counter() value (None: no limit). Long actions look at the clock
        # between their steps and stop there with what they have; ``cut`` then says how far they got.
        self.deadline: float | None = None
        self.cut: str | None = None

    def out_of_time(self) -> bool:
        """Has the run's budget (``deadline``) been spent?"""
        return self.deadline is not None and time.perf_counter() >= self.deadline

    def stopped(self, done: int, of: int, unit: str) -> str:
        """Record that the budget stopped the action in flight after ``done`` of ``of`` ``unit``."""
        self.cut = f"stopped at the budget after {done} of {of} {unit}"
        log.warning("%s", self.cut)
        return self.cut

    def what(self, action: str) -> str:
        """The history entry of an action, ``"name(params"`` closed here, with the budget's cut if any."""
        return f"{action}{'; ' + self.cut if self.cut else ''})"

    def params(self, action: Action) -> dict[str, Any]:
        return {**self.defaults.get(action.name, {}), **action.params}

    def refine(self, samples: Samples, action: Action) -> Candidate:
        r = refiner(action.name)
        missing = r.requires - set(self.gen.capabilities)
        if missing:
            raise ValueError(
                f"{action.name} needs {', '.join(sorted(missing))}, which {self.gen.creator.name} "
                f"({self.gen.creator.kind}) does not have"
            )
        self.cut = None
        return r.apply(samples, self, **self.params(action))

    def output_tag(self, action: Action) -> str:
        """A short name for a finishing action's outputs (``grid_<tag>.png``): ``x4`` for ``upscale``."""
        return refiner(action.name).tag(self.params(action))

    def check(
        self,
        action: Action,
        before: Samples,
        after: Samples,
        before_report: Any,
        after_report: Any,
        evaluator: Any = None,
    ) -> dict[str, Any]:
        """The check of a finishing action (:meth:`~artdirector.agents.refiners.Refiner.check`) on ``before``
        and ``after`` (the action applied to ``before``), with this agent's parameters for it; the result
        names the action and its parameters."""
        r = finishing_refiner(action.name)
        out = r.check(before, after, before_report, after_report, evaluator, **self.params(action))
        if not isinstance(out.get("met"), bool) or not isinstance(out.get("summary"), str):
            raise TypeError(f"{action.name}'s check must return a dict with 'met' (bool) and 'summary' (str)")
        return {"action": action.name, "params": self.params(action), **out}
