"""What a refinement technique is: a :class:`Refiner`, and the :class:`Context` it works in."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Protocol

import torch

from artdirector.agents.types import Candidate, Samples


class Context(Protocol):
    """What a technique may use besides its samples (the Refinement Agent is one): the Generation Agent
    (its model, latent sampler and seed), the data, the run's budget, and a ``state`` kept between calls."""

    gen: Any  # the Generation Agent
    real_images: torch.Tensor | None  # held-out real images in [-1, 1] (DRS calibration)
    real_labels: torch.Tensor | None  # their classes
    classify: Any  # images -> predicted classes (the evaluator's classifier)
    datamodule: Any  # the data to continue training on (finetune)
    output_dir: Path  # where new checkpoints go
    deadline: float | None  # the run's budget, a time.perf_counter() value; None: no limit
    cut: str | None  # how far the budget let the action in flight get; None: all the way
    state: dict[str, Any]  # what a technique keeps between calls (DRS's calibration, the finetune count)

    def out_of_time(self) -> bool: ...

    def stopped(self, done: int, of: int, unit: str) -> str: ...

    def what(self, action: str) -> str: ...


class Refiner(ABC):
    """One refinement technique. A subclass sets:

    - ``name``: the action's name (``Action(name, params)``);
    - ``requires``: the creator's capabilities it needs (:mod:`artdirector.creators`); policies offer only the
      refiners the creator in use can apply;
    - ``paired``: output sample i is input sample i refined (same latent, or same seed and label), so that its
      FID difference is bootstrapped with shared indices;
    - ``finishing``: asked for by the request, applied once after the FID loop (``Director(finish=...)``),
      kept whatever its FID and judged by its own :meth:`check`, not by FID gain;

    and implements :meth:`apply` (:class:`SamplesRefiner`: :meth:`~SamplesRefiner.refined`, when it only makes
    new samples); a finishing one is a :class:`FinishingRefiner`, with a :meth:`~FinishingRefiner.check`."""

    name: ClassVar[str] = ""
    requires: ClassVar[frozenset[str]] = frozenset()
    paired: ClassVar[bool] = True
    finishing: ClassVar[bool] = False

    @abstractmethod
    def apply(self, samples: Samples, ctx: Context, **params: Any) -> Candidate:
        """The technique applied to ``samples`` with ``params``; inputs are never changed."""

    def tag(self, params: dict[str, Any]) -> str:
        """A short name for a finishing action's outputs (``grid_<tag>.png``)."""
        return self.name


class SamplesRefiner(Refiner):
    """A technique that only makes new samples (the model is unchanged): it implements :meth:`refined`."""

    def apply(self, samples: Samples, ctx: Context, **params: Any) -> Candidate:
        return Candidate(self.refined(samples, ctx, **params), paired=self.paired)

    @abstractmethod
    def refined(self, samples: Samples, ctx: Context, **params: Any) -> Samples:
        """The refined samples."""


class FinishingRefiner(SamplesRefiner):
    """A finishing technique: applied once after the FID loop and judged by its own :meth:`check`."""

    finishing: ClassVar[bool] = True

    @abstractmethod
    def check(
        self,
        before: Samples,
        after: Samples,
        before_report: Any,
        after_report: Any,
        evaluator: Any,
        **params: Any,
    ) -> dict[str, Any]:
        """Did ``after`` (the technique applied to ``before``) do what the request asked without spoiling the
        images? ``before_report`` and ``after_report`` are their
        :class:`~artdirector.agents.evaluation.AgentReport` on one split and ``evaluator`` the
        :class:`~artdirector.evaluation.Evaluator` of that split. Returns a JSON-ready dict with at least
        ``met`` (bool) and ``summary`` (one sentence with the numbers), plus the numbers."""


def need_latents(samples: Samples, ctx: Context, action: str) -> torch.Tensor:
    """The samples' latents on the model's device, for a technique that moves them."""
    if samples.latents is None:
        raise ValueError(f"{action} refines latents; these samples have none (invert them first)")
    return samples.latents.to(ctx.gen.creator.device)
